"""Recognized text quads -> PageText: words and lines here, reading order shared.

Each detected quad is a run of text on one line: a :class:`~ocrbatch.model.Line` whose
words are the space-separated runs of its text, their boxes from the time steps of
their first and last characters; quads turned by more than 2 degrees keep polygons (the
PageText contract: polygons where text is rotated). Reading order and blocks are those
of every line-detecting engine (:mod:`ocrbatch.engines.layout`, shared with RapidOCR):
columns of running text, rows of receipts and forms read left to right.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ...model import Box, Line, PageText, Word
from ..layout import page_blocks, page_text
from .ctc import Decoded

__all__ = ["TextQuad", "assemble_page"]


@dataclass(frozen=True, slots=True)
class TextQuad:
    """One recognized quad, corners tl, tr, br, bl in original page pixels; ``columns``
    is the fraction of the recogniser's input the crop filled (the rest is padding)."""

    corners: np.ndarray
    decoded: Decoded
    columns: float


# Plain Python floats below, not numpy: a page has hundreds of words and numpy's
# per-call overhead on 4-point arrays made this the slowest step of a GPU batch.
Point = tuple[float, float]


def _box(pts: Sequence[Point], width: int, height: int) -> Box:
    xs = [p[0] for p in pts]
    ys = [p[1] for p in pts]
    x0, y0 = math.floor(min(xs)), math.floor(min(ys))
    x1, y1 = math.ceil(max(xs)), math.ceil(max(ys))
    return (max(0, x0), max(0, y0), min(width, max(x1, x0 + 1)), min(height, max(y1, y0 + 1)))


def _lerp(a: Point, b: Point, f: float) -> Point:
    return (a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f)


def _words(q: TextQuad, width: int, height: int) -> list[Word]:
    d = q.decoded
    tl, tr, br, bl = (tuple(p) for p in q.corners.tolist())
    step = 1.0 / max(d.length * q.columns, 1e-6)  # one time step as a fraction of the quad
    rotated = abs(math.degrees(math.atan2(tr[1] - tl[1], tr[0] - tl[0]))) > 2.0
    probs = d.probs.tolist()
    steps = d.steps.tolist()
    words: list[Word] = []
    run: list[int] = []

    def flush() -> None:
        if not run:
            return
        f0 = max(0.0, steps[run[0]] * step)
        f1 = min(1.0, (steps[run[-1]] + 1) * step)
        poly = [_lerp(tl, tr, f0), _lerp(tl, tr, f1), _lerp(bl, br, f1), _lerp(bl, br, f0)]
        polygon = tuple((round(x), round(y)) for x, y in poly) if rotated else None
        conf = round(sum(probs[k] for k in run) / len(run), 4)
        text = "".join(d.text[k] for k in run)
        words.append(Word(text, _box(poly, width, height), conf, polygon))
        run.clear()

    for k, ch in enumerate(d.text):
        if ch.isspace():
            flush()
        else:
            run.append(k)
    flush()
    return words


def assemble_page(
    quads: Sequence[TextQuad], width: int, height: int, dpi: float | None
) -> PageText:
    """Build the page from its recognized quads (any order)."""
    items = [(q, _words(q, width, height)) for q in quads]
    items = [(q, ws) for q, ws in items if ws]
    if not items:
        return PageText(text="", confidence=0.0, width=width, height=height, dpi=dpi)
    blocks = page_blocks([_line(q, ws, width, height) for q, ws in items])
    total = sum(float(q.decoded.probs.sum()) for q, _ in items)
    count = sum(len(q.decoded.probs) for q, _ in items)
    return PageText(
        text=page_text(blocks),
        confidence=round(total / max(1, count), 4),
        width=width,
        height=height,
        blocks=blocks,
        dpi=dpi,
    )


def _line(q: TextQuad, words: list[Word], width: int, height: int) -> Line:
    pts = [(float(x), float(y)) for x, y in q.corners.tolist()]
    conf = float(q.decoded.probs.sum()) / max(1, len(q.decoded.probs))
    return Line(tuple(words), _box(pts, width, height), round(conf, 4))
