"""Recognized text quads -> PageText: words, lines, blocks, reading order.

Each detected quad is a run of text on one line. Reading order is a recursive XY-cut
over the quads (column gutters first, then wide vertical gaps), whose leaves are the
blocks; inside a block, quads whose vertical centres lie within half a line height form
a row, read left to right, and a row breaks into separate lines where the horizontal
gap exceeds 1.5 line heights (form fields, table cells).
Words are the space-separated runs of a quad's text; their boxes come from the time
steps of their first and last characters. Quads turned by more than 2 degrees keep
polygons (the PageText contract: polygons where text is rotated).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ...model import Block, Box, Line, PageText, Word
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


@dataclass(frozen=True, slots=True)
class _Boxes:
    """Axis-aligned extents of the page's quads, as plain lists (indexed like the quads)."""

    left: list[float]
    right: list[float]
    top: list[float]
    bottom: list[float]
    centre: list[float]
    height: list[float]


def _xy_cut(idx: list[int], b: _Boxes, h: float) -> list[list[int]]:
    """Recursive XY-cut: the quads in reading order, as leaves (blocks).

    A column gutter (a vertical gap no quad crosses over the whole band, at least 0.3
    line heights wide: the boxes are already grown by the unclip distance, so gutters
    look narrow) is cut first, the widest one, left before right; else the band is cut
    at vertical gaps of at least 1.2 line heights, top to bottom; a band with neither is
    a leaf. Cutting gutters first keeps two-column pages column by column. One box
    that crosses a gutter (a caption, two lines merged by the detector) defeats the cut:
    that band is then read row by row.
    """
    if len(idx) <= 1:
        return [idx] if idx else []
    for lo, hi, min_gap in ((b.left, b.right, 0.3 * h), (b.top, b.bottom, 1.2 * h)):
        order = sorted(idx, key=lo.__getitem__)
        reach = hi[order[0]]
        cuts: list[int] = []
        widest, gap_at = 0.0, 0
        for k in range(1, len(order)):
            gap = lo[order[k]] - reach
            if gap >= min_gap:
                cuts.append(k)
                if gap > widest:
                    widest, gap_at = gap, k
            reach = max(reach, hi[order[k]])
        if not cuts:
            continue
        if lo is b.left:
            cuts = [gap_at]  # one gutter at a time: the widest
        parts = [order[i:j] for i, j in zip([0, *cuts], [*cuts, len(order)], strict=True)]
        return [leaf for part in parts for leaf in _xy_cut(part, b, h)]
    return [idx]


def _rows(leaf: list[int], b: _Boxes) -> list[list[int]]:
    """Quads of a leaf grouped into rows (vertical centres within half a line height),
    top to bottom, each left to right."""
    rows: list[list[int]] = []
    row_y: list[float] = []
    row_h: list[float] = []
    for i in sorted(leaf, key=b.centre.__getitem__):
        if rows and abs(b.centre[i] - row_y[-1]) < 0.5 * row_h[-1]:
            rows[-1].append(i)
            row_y[-1] = sum(b.centre[k] for k in rows[-1]) / len(rows[-1])
            row_h[-1] = statistics.median(b.height[k] for k in rows[-1])
        else:
            rows.append([i])
            row_y.append(b.centre[i])
            row_h.append(b.height[i])
    for row in rows:
        row.sort(key=b.left.__getitem__)
    return rows


def assemble_page(
    quads: Sequence[TextQuad], width: int, height: int, dpi: float | None
) -> PageText:
    """Build the page from its recognized quads (any order)."""
    items = [(q, _words(q, width, height)) for q in quads]
    items = [(q, ws) for q, ws in items if ws]
    if not items:
        return PageText(text="", confidence=0.0, width=width, height=height, dpi=dpi)
    corners = [q.corners.tolist() for q, _ in items]
    b = _Boxes(
        left=[min(p[0] for p in c) for c in corners],
        right=[max(p[0] for p in c) for c in corners],
        top=[min(p[1] for p in c) for c in corners],
        bottom=[max(p[1] for p in c) for c in corners],
        centre=[sum(p[1] for p in c) / 4 for c in corners],
        height=[max(1.0, math.dist(c[3], c[0])) for c in corners],
    )
    h = statistics.median(b.height)
    blocks: list[Block] = []
    for leaf in _xy_cut(list(range(len(items))), b, h):
        lines: list[Line] = []
        for row in _rows(leaf, b):
            segment: list[int] = []
            for i in row:
                # Quads far apart on one row (form fields, table cells) are separate lines.
                if segment and b.left[i] - b.right[segment[-1]] > 1.5 * h:
                    lines.append(_line([items[k] for k in segment], width, height))
                    segment = []
                segment.append(i)
            lines.append(_line([items[k] for k in segment], width, height))
        blocks.append(_block(lines))
    all_lines = [ln for blk in blocks for ln in blk.lines]
    total = sum(float(q.decoded.probs.sum()) for q, _ in items)
    count = sum(len(q.decoded.probs) for q, _ in items)
    text = "\n".join(ln.text for ln in all_lines) + "\n"
    return PageText(
        text=text,
        confidence=round(total / max(1, count), 4),
        width=width,
        height=height,
        blocks=tuple(blocks),
        dpi=dpi,
    )


def _line(parts: Sequence[tuple[TextQuad, list[Word]]], width: int, height: int) -> Line:
    words = tuple(w for _, ws in parts for w in ws)
    pts = [tuple(p) for q, _ in parts for p in q.corners.tolist()]
    total = sum(float(q.decoded.probs.sum()) for q, _ in parts)
    count = sum(len(q.decoded.probs) for q, _ in parts)
    return Line(words, _box(pts, width, height), round(total / max(1, count), 4))


def _block(lines: Sequence[Line]) -> Block:
    box = (
        min(ln.box[0] for ln in lines),
        min(ln.box[1] for ln in lines),
        max(ln.box[2] for ln in lines),
        max(ln.box[3] for ln in lines),
    )
    return Block(tuple(lines), box)
