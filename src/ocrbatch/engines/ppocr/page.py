"""CPU side of a page: PIL image -> the uint8 pixel array the models read.

Torch-free on purpose: CPU preparation workers import this and never load torch or the
models. The result is plain, picklable data (principle 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["PreparedPage", "prepare_page"]


@dataclass(frozen=True, slots=True)
class PreparedPage:
    """A page ready for the GPU: ``pixels`` is uint8, HxW (grey) or HxWx3 (BGR, the
    channel order PaddleOCR models were trained on), at most ``max_side`` pixels long;
    ``scale`` is work pixels per original pixel (boxes are mapped back with it)."""

    pixels: np.ndarray
    scale: float
    width: int
    height: int
    dpi: float | None = None


def prepare_page(image: Any, max_side: int) -> PreparedPage:
    """Decode-side work for one page: mode, size cap, channel order.

    Grey and bilevel pages stay one channel (a third of the bytes to ship to the GPU);
    the detector and recogniser get the channel repeated on the device.
    """
    from PIL import Image

    width, height = image.size
    dpi = image.info.get("dpi")
    dpi_value = float(dpi[0] if isinstance(dpi, tuple) else dpi) if dpi else None
    if dpi_value is not None and not 70 <= dpi_value <= 2400:
        dpi_value = None  # files often say 1 or 72 dpi for a 300-dpi scan
    scale = 1.0
    if max(width, height) > max_side:
        scale = max_side / max(width, height)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        # Downscale 1-bit pages in grey: resizing bilevel art makes jagged strokes.
        src = image.convert("L") if image.mode == "1" else image
        image = src.resize(size, Image.Resampling.BILINEAR, reducing_gap=3.0)
    if image.mode in ("1", "L"):
        pixels = np.array(image.convert("L"), dtype=np.uint8)  # writable, for torch
    else:
        rgb = np.asarray(image.convert("RGB"), dtype=np.uint8)
        pixels = np.ascontiguousarray(rgb[:, :, ::-1])
    return PreparedPage(pixels, scale, width, height, dpi_value)
