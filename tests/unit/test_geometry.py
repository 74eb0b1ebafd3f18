"""Words read on a preprocessed page map back onto the page as decoded."""

from __future__ import annotations

import numpy as np
import pytest

from ocrbatch.model import Block, Line, PageText, Word
from ocrbatch.preprocess import steps as st
from ocrbatch.preprocess.geometry import to_original

# A dark "word" at x 120..300, y 80..110 on a 400 x 300 white page.
WORD = (120, 80, 300, 110)


def _page() -> np.ndarray:
    g = np.full((300, 400), 255, np.uint8)
    x0, y0, x1, y1 = WORD
    g[y0:y1, x0:x1] = 0
    return g


def _ink_box(g: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(g < 128)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


@pytest.mark.parametrize(
    "chain",
    [
        [("orientation", 90)],
        [("orientation", 180)],
        [("orientation", 270)],
        [("deskew", 4.0)],
        [("upscale", 1.5)],
        [("orientation", 90), ("deskew", -3.0), ("upscale", 2.0)],
    ],
)
def test_boxes_found_on_the_preprocessed_page_land_on_the_original(
    chain: list[tuple[str, float]],
) -> None:
    g = _page()
    info: dict[str, object] = {"steps": [name for name, _ in chain]}
    for name, value in chain:
        if name == "orientation":
            g = st.rotate_quarter(g, int(value))
            info["orientation"] = int(value)
        elif name == "deskew":
            g, done = st.deskew(g, value)
            info.update(done)
        else:
            g, done = st.upscale(g, value)
            info.update(done)
    seen = _ink_box(g)  # where the engine would find the word
    w = Word("word", seen, 0.9)
    page = PageText("word", 0.9, g.shape[1], g.shape[0], (Block((Line((w,), seen, 0.9),), seen),))
    back = to_original(page, (400, 300), info)
    assert (back.width, back.height) == (400, 300)
    (word,) = back.words
    x0, y0, x1, y1 = (word.polygon and _bbox(word.polygon)) or word.box
    tol = 6 if any(n == "deskew" for n, _ in chain) else 2
    if any(n == "deskew" for n, _ in chain):
        # the box of a turned word is a little bigger than the word: compare centres
        cx, cy = (word.box[0] + word.box[2]) / 2, (word.box[1] + word.box[3]) / 2
        assert abs(cx - 210) <= tol and abs(cy - 95) <= tol, word
    else:
        assert all(abs(a - b) <= tol for a, b in zip((x0, y0, x1, y1), WORD, strict=True)), word
    quarter = next((int(v) for n, v in chain if n == "orientation"), 0)
    assert (word.polygon is not None) == bool(quarter or any(n == "deskew" for n, _ in chain))


def _bbox(poly: tuple[tuple[int, int], ...]) -> tuple[int, int, int, int]:
    xs, ys = [p[0] for p in poly], [p[1] for p in poly]
    return min(xs), min(ys), max(xs), max(ys)


def test_no_geometric_step_leaves_the_page_as_it_is() -> None:
    page = PageText("x", 0.5, 10, 10)
    assert to_original(page, (10, 10), {"steps": ["crop", "denoise", "binarize"]}) is page
