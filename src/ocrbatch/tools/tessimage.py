"""A page image into a tesserocr API: its pixels and its resolution, and nothing else.

tesserocr's ``SetImage`` writes the PIL image to a file in memory,
``image.save(f, image.format or "BMP")``, and Leptonica decodes that file, so what
Tesseract got depended on where the image object came from, not only on its pixels: a
page made in memory (preprocessing, a PDF render, a decoded file once normalized) went as
BMP, whose header Pillow fills with 96 dpi when the image has none; the same pixels
decoded from a PNG file (the page cache) went as PNG without a resolution, and Tesseract
then guesses one from the text; an image still marked JPEG would be re-encoded, lossy.
Tesseract's layout analysis depends on the resolution, so the same page read differently
from the page cache than fresh (issue 10). Here the raw pixels go in (``SetImageBytes``)
and the resolution is always set, from the image's dpi or :data:`UNKNOWN_DPI`.
"""

from __future__ import annotations

from typing import Any

from PIL import Image

from .images import image_dpi, normalize_mode

__all__ = ["UNKNOWN_DPI", "set_image", "tesseract_resolution"]

# The resolution Tesseract is told for a page whose file gives none (or an implausible
# one, see ``image_dpi``): 96, what such pages were always read at when they came through
# Pillow's BMP writer (the module docstring). Telling it nothing (it then estimates one
# from the text) read the dev corpus worse: pooled CER on the 58 pages without a dpi,
# after preprocessing, funsd 0.298 at 96 vs 0.330 estimated, sroie 0.126 vs 0.134,
# docbank 0.022 vs 0.057.
UNKNOWN_DPI = 96

# Tesseract's bytes_per_pixel for the modes it takes as they are (0: 1 bit, packed, MSB
# first, 1 = white: Pillow's own "1" layout); others are normalized first (alpha
# flattened onto white paper, palettes and 16 bits converted).
_BYTES_PER_PIXEL = {"1": 0, "L": 1, "RGB": 3}


def tesseract_resolution(image: Image.Image) -> int:
    """The resolution (ppi) Tesseract is told for ``image``."""
    dpi = image_dpi(image)
    return int(dpi) if dpi else UNKNOWN_DPI


def set_image(api: Any, image: Image.Image) -> int:
    """Give ``image`` to the tesserocr ``api`` (replacing its page) with its resolution;
    returns that resolution. The same pixels, mode and dpi always give Tesseract the same
    input, whatever the image's ``format`` or other ``info``."""
    if image.mode not in _BYTES_PER_PIXEL:
        image = normalize_mode(image)
    # Tesseract copies the pixels into its own Pix (ImageThresholder::SetImage), so
    # ``raw`` need not outlive this call.
    raw = image.tobytes()
    width, height = image.size
    api.SetImageBytes(raw, width, height, _BYTES_PER_PIXEL[image.mode], len(raw) // max(1, height))
    res = tesseract_resolution(image)
    api.SetSourceResolution(res)
    return res
