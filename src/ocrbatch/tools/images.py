"""Image decoding with Pillow: one page in, a normalized PIL image out.

Every foreign failure (missing file, truncated data, not an image, decompression bomb)
becomes a :class:`~ocrbatch.errors.DocumentError` with a one-line reason.
"""

from __future__ import annotations

import contextlib
import threading
import warnings
from collections.abc import Iterator
from typing import IO

from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import DocumentError, reason
from .files import open_file

__all__ = [
    "IMAGE_EXTENSIONS",
    "MULTIPAGE_EXTENSIONS",
    "frame_count",
    "frame_sizes",
    "image_dpi",
    "load_image",
    "normalize_mode",
    "open_file",
]

IMAGE_EXTENSIONS = frozenset(
    {
        ".png",
        ".jpg",
        ".jpeg",
        ".tif",
        ".tiff",
        ".bmp",
        ".gif",
        ".webp",
        ".jp2",
        ".j2k",
        ".pbm",
        ".pgm",
        ".ppm",
        ".pnm",
    }
)

# Formats whose frames are pages (an animated GIF or WebP is one picture, not pages).
MULTIPAGE_EXTENSIONS = frozenset({".tif", ".tiff"})
# A TIFF claiming more frames than this is treated as broken past that point.
_MAX_FRAMES = 100_000


# Pillow's bomb guard is one process-wide setting: discovery opens headers in several
# threads, so it is switched off and back under this lock, never by two at once.
_PILLOW_GUARD = threading.Lock()


def _open_image(f: IO[bytes], max_pixels: int) -> Image.Image:
    # Pillow's own bomb guard warns below 2x its limit and raises above; we check the
    # header's size against our per-job limit ourselves instead.
    with _PILLOW_GUARD, warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            im = Image.open(f)
        except UnidentifiedImageError:
            raise DocumentError("not a supported image (unrecognized file format)") from None
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
            why = reason(exc, 200, with_type=False)
            raise DocumentError(f"corrupt image header: {why}") from None
        finally:
            Image.MAX_IMAGE_PIXELS = saved
    w, h = im.size
    if w <= 0 or h <= 0:
        raise DocumentError(f"invalid image size {w}x{h}")
    if w * h > max_pixels:
        raise DocumentError(
            f"image too large: {w}x{h} = {w * h:,} pixels exceeds the limit of "
            f"{max_pixels:,} (decompression bomb guard; raise --max-pixels to allow)"
        )
    return im


def frame_count(path: str, max_pixels: int) -> int:
    """Number of frames (pages) of an image file: 1 for most, n for multi-page TIFF."""
    with open_file(path) as f:
        im = _open_image(f, max_pixels)
        return int(getattr(im, "n_frames", 1) or 1)


@contextlib.contextmanager
def _opened(source: str | IO[bytes]) -> Iterator[IO[bytes]]:
    if isinstance(source, str):
        with open_file(source) as f:
            yield f
    else:
        yield source


def frame_sizes(
    path: str | IO[bytes], max_pixels: int, *, multipage: bool
) -> list[tuple[int, int]]:
    """(width, height) of each page of an image file, from headers only (nothing decoded);
    ``path`` may be a file object (an object in a bucket, read by ranges).

    Single-page formats give one entry. In a multi-page TIFF whose frame chain breaks
    after k good frames, the broken frame is listed as (0, 0): it becomes a page task that
    fails with its own reason while the k good pages are still OCRed.
    """
    with _opened(path) as f:
        im = _open_image(f, max_pixels)
        sizes = [im.size]
        if not multipage:
            return sizes
        try:
            while len(sizes) < _MAX_FRAMES:
                im.seek(len(sizes))
                sizes.append(im.size)
        except EOFError:
            pass
        except Exception:  # any decoder error: the frame chain is broken here
            sizes.append((0, 0))
        return sizes


def load_image(path: str, frame: int = 0, *, max_pixels: int) -> Image.Image:
    """Decode frame ``frame`` of the image at ``path`` fully into memory, upright and in a
    mode every engine accepts (see :func:`normalize_mode`)."""
    with open_file(path) as f:
        im = _open_image(f, max_pixels)
        try:
            if frame:
                im.seek(frame)
                w, h = im.size
                if w * h > max_pixels:
                    raise DocumentError(
                        f"frame {frame + 1} too large: {w}x{h} = {w * h:,} pixels exceeds "
                        f"the limit of {max_pixels:,} (raise --max-pixels to allow)"
                    )
            im.load()
        except EOFError:
            raise DocumentError(f"frame {frame + 1} is missing (truncated file?)") from None
        except (OSError, SyntaxError, ValueError) as exc:
            why = reason(exc, 200, with_type=False)
            raise DocumentError(f"truncated or corrupt image data: {why}") from None
        except Image.DecompressionBombError as exc:
            why = reason(exc, 200, with_type=False)
            raise DocumentError(f"image too large: {why}") from None
        dpi = im.info.get("dpi")
        out = normalize_mode(ImageOps.exif_transpose(im) or im)
        if dpi:
            out.info["dpi"] = dpi
        return out


def normalize_mode(im: Image.Image) -> Image.Image:
    """1-bit stays 1-bit, grey-like becomes ``L``, anything with colour ``RGB``.

    Alpha is flattened onto white (transparent scans are white paper, not black), 16-bit
    and float images are scaled to 8 bits, CMYK and palette images are converted.
    """
    mode = im.mode
    if mode in ("1", "L", "RGB"):
        return im
    if mode == "P":
        im = im.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        rgba = im.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        bg.alpha_composite(rgba)
        return bg.convert("RGB")
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        import numpy as np

        arr = np.asarray(im, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        scale = 255.0 / (hi - lo) if hi > lo else 0.0
        return Image.fromarray(((arr - lo) * scale).astype(np.uint8), mode="L")
    return im.convert("RGB")


def image_dpi(image: Image.Image) -> float | None:
    """The image's resolution if it is plausible for a scan, else None.

    Files often say 1 or 72 dpi for a 300-dpi scan: outside 70..2400 it is ignored.
    """
    dpi = image.info.get("dpi")
    if not dpi:
        return None
    try:
        x = float(dpi[0] if isinstance(dpi, tuple) else dpi)
    except (TypeError, ValueError):
        return None
    return x if 70 <= x <= 2400 else None
