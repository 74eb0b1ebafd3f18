"""What Tesseract is given for a page: its pixels and resolution, never its file format
(issue 10: a page decoded from the cache's PNG read differently from the same pixels
made in memory)."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
from PIL import Image

from ocrbatch.tools.tessimage import UNKNOWN_DPI, set_image


class _Api:
    """Records what a tesserocr API is given."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def SetImageBytes(self, *args: Any) -> None:
        self.calls.append(("bytes", *args))

    def SetSourceResolution(self, ppi: int) -> None:
        self.calls.append(("res", ppi))

    def SetImage(self, image: Any) -> None:  # must not be used
        raise AssertionError("SetImage re-encodes the image in its format")


def _given(image: Image.Image) -> list[tuple[Any, ...]]:
    api = _Api()
    set_image(api, image)
    return api.calls


def _decoded(image: Image.Image, fmt: str, **kw: Any) -> Image.Image:
    buf = io.BytesIO()
    image.save(buf, fmt, **kw)
    buf.seek(0)
    out = Image.open(buf)
    out.load()
    return out


@pytest.mark.parametrize("mode", ["1", "L", "RGB"])
def test_same_pixels_and_dpi_give_tesseract_the_same_input(mode: str) -> None:
    rng = np.random.default_rng(2)
    page = Image.fromarray(rng.integers(0, 256, (21, 35, 3), np.uint8)).convert(mode)
    from_png = _decoded(page, "PNG")
    assert from_png.format == "PNG" and page.format is None
    assert _given(from_png) == _given(page)
    kind, raw, w, h, bpp, bpl = _given(page)[0]
    assert (kind, w, h, bpp) == ("bytes", 35, 21, {"1": 0, "L": 1, "RGB": 3}[mode])
    assert bpl == {"1": 5, "L": 35, "RGB": 105}[mode] and len(raw) == bpl * h
    # a page without a (credible) dpi is read at one stated resolution, whatever its file
    assert _given(page)[1] == ("res", UNKNOWN_DPI)
    page.info["dpi"] = (1, 1)
    assert _given(page)[1] == ("res", UNKNOWN_DPI)
    page.info["dpi"] = (300.0, 300.0)
    assert _given(page)[1] == ("res", 300)


def test_other_modes_are_normalized_first() -> None:
    rgba = Image.new("RGBA", (8, 4), (0, 0, 0, 0))  # transparent: white paper
    kind, raw, _w, _h, bpp, _bpl = _given(rgba)[0]
    assert (kind, bpp) == ("bytes", 3) and set(raw) == {255}
