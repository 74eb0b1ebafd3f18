"""Reading order and blocks for engines that detect text lines but no page layout.

Line detectors (RapidOCR/PP-OCR, and the GPU engine built on it) return loose text
lines. This module puts them in reading order and groups them into blocks, engine-free:

1. Recursive XY-cut on the lines' boxes. A region is split into columns at a vertical
   gutter that runs its full height when both sides hold running text (three or more
   lines each, typically eight line heights long); a few lines may cross the gutter: a
   line the detector merged across it (a wide gap between two of its words right there)
   is split in two, a box that only overhangs it goes to its side, and a heading over
   both columns cuts the region into bands read top to bottom. Without such a gutter the
   region is split in two at its widest horizontal gap; a region without gaps is one
   leaf. Preferring columns of running text keeps papers and magazines in column order,
   while the running-text test keeps the fields of a receipt or form row (label ...
   amount) on one line, as people read them.
2. Inside a leaf, lines are grouped into visual rows (vertical centres within half a
   line height of the row's centre) and read left to right.
3. Consecutive lines of one column, close in height, form a block (a paragraph).

The page text is the rows joined by newlines, blocks separated by a blank line.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Sequence

from ..model import Block, Box, Line, Word

__all__ = ["box_of", "order_lines", "page_blocks", "page_text", "word"]


def box_of(points: Sequence[Sequence[float]]) -> Box:
    """The axis-aligned box around a polygon."""
    xs = [float(p[0]) for p in points]
    ys = [float(p[1]) for p in points]
    return (round(min(xs)), round(min(ys)), round(max(xs)), round(max(ys)))


def _height(b: Box) -> int:
    return max(1, b[3] - b[1])


def _gaps(
    spans: list[tuple[int, int]], lo: int, hi: int, allowed: int = 0
) -> list[tuple[int, int]]:
    """Intervals strictly inside [lo, hi] covered by at most ``allowed`` spans."""
    events = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans])
    out = []
    depth = 0
    start: int | None = lo
    for pos, step in events:
        if depth <= allowed and start is not None and pos > start > lo:
            out.append((start, pos))
        depth += step
        start = pos if depth <= allowed else None
    return [g for g in out if g[1] < hi]


def _is_text_column(lines: Sequence[Line]) -> bool:
    """Running text: three or more lines, typically eight line heights long or more
    (the fields of a receipt or form row are shorter)."""
    if len(lines) < 3:
        return False
    widths = [ln.box[2] - ln.box[0] for ln in lines]
    heights = [_height(ln.box) for ln in lines]
    return statistics.median(widths) >= 8 * statistics.median(heights)


def _centre(ln: Line) -> tuple[float, float]:
    return (ln.box[0] + ln.box[2]) / 2, (ln.box[1] + ln.box[3]) / 2


def _split_at(ln: Line, mid: float) -> tuple[Line, Line] | None:
    """Two lines the detector merged across a gutter, split at ``mid``: where the words
    left of it and right of it are separated by a gap at least twice the line's usual
    word spacing (a heading over two columns has no such gap and stays whole)."""
    words = sorted(ln.words, key=lambda w: w.box[0])
    left = [w for w in words if (w.box[0] + w.box[2]) / 2 < mid]
    right = [w for w in words if (w.box[0] + w.box[2]) / 2 >= mid]
    if not left or not right:
        return None
    gap = right[0].box[0] - left[-1].box[2]
    spacing = [
        b.box[0] - a.box[2] for a, b in itertools.pairwise(words) if (a, b) != (left[-1], right[0])
    ]
    usual = statistics.median(spacing) if spacing else _height(ln.box) / 2
    if gap < 2 * max(usual, 1):
        return None

    def part(ws: list[Word]) -> Line:
        return Line(tuple(ws), _union([w.box for w in ws]), ln.confidence)

    return part(left), part(right)


def _columns(
    lines: list[Line], x0: int, x1: int
) -> tuple[list[Line], list[Line], list[Line]] | None:
    """(left, right, crossing) at the widest vertical gutter with running text on both
    sides. A gutter may be crossed by a few lines: a line the detector merged across it
    is split in two there; others (a heading over both columns) come back as
    ``crossing``."""
    spans = [(ln.box[0], ln.box[2]) for ln in lines]
    # Gutters are about an em; a detected line box is about 1.5 em high with its margin.
    min_gutter = 0.3 * statistics.median(_height(ln.box) for ln in lines)
    for allowed in (0, max(2, len(lines) // 20)):
        gaps = _gaps(spans, x0, x1, allowed)
        if allowed:
            gaps = [g for g in gaps if g[1] - g[0] >= min_gutter]
        for gx0, gx1 in sorted(gaps, key=lambda g: g[0] - g[1]):
            left = [ln for ln in lines if ln.box[2] <= gx0]
            right = [ln for ln in lines if ln.box[0] >= gx1]
            crossing = []
            mid = (gx0 + gx1) / 2
            for ln in lines:
                if ln.box[2] > gx0 and ln.box[0] < gx1:
                    width = max(1, ln.box[2] - ln.box[0])
                    parts = _split_at(ln, mid)
                    if parts is not None:
                        left.append(parts[0])
                        right.append(parts[1])
                    elif mid - ln.box[0] >= 0.9 * width:  # a box a little too wide
                        left.append(ln)
                    elif ln.box[2] - mid >= 0.9 * width:
                        right.append(ln)
                    else:
                        crossing.append(ln)
            if _is_text_column(left) and _is_text_column(right):
                return left, right, crossing
    return None


def _layout_change(lines: list[Line]) -> tuple[list[Line], list[Line]] | None:
    """(top, bottom) where the page changes from one set of columns to another, or None.

    Lines are taken top down by centre. Best: of the cuts where the two parts overlap
    least in height, one with columns of running text on both sides. Else: after the
    longest run from the top that still has columns (what lies below is read after it).
    """
    ordered = sorted(lines, key=lambda ln: _centre(ln)[1])
    n = len(ordered)
    if n < 12:
        return None

    def columnar(part: list[Line]) -> bool:
        x0 = min(ln.box[0] for ln in part)
        x1 = max(ln.box[2] for ln in part)
        return _columns(part, x0, x1) is not None

    bottom_of_top = list(itertools.accumulate((ln.box[3] for ln in ordered), max))
    top_of_rest = list(itertools.accumulate((ln.box[1] for ln in ordered[::-1]), min))[::-1]
    flattest = sorted(range(6, n - 5), key=lambda k: (bottom_of_top[k - 1] - top_of_rest[k], -k))
    for k in flattest[:12]:  # a few candidates: a page of 1,000 lines stays cheap
        if columnar(ordered[:k]) and columnar(ordered[k:]):
            return ordered[:k], ordered[k:]
    # Halving search for the longest columnar run from the top (columnar prefixes are
    # mostly contiguous from the top; this keeps it to a dozen checks).
    lo, hi = 6, n - 3
    if not columnar(ordered[:lo]):
        return None
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if columnar(ordered[:mid]):
            lo = mid
        else:
            hi = mid - 1
    return (ordered[:lo], ordered[lo:]) if lo < n - 3 else None


def _xy_cut(lines: list[Line], leaves: list[list[Line]]) -> None:
    if len(lines) <= 1:
        if lines:
            leaves.append(lines)
        return
    x0 = min(ln.box[0] for ln in lines)
    x1 = max(ln.box[2] for ln in lines)
    y0 = min(ln.box[1] for ln in lines)
    y1 = max(ln.box[3] for ln in lines)
    # Columns first: a vertical gutter with running text on both sides.
    cols = _columns(lines, x0, x1)
    if cols is not None:
        left, right, crossing = cols
        if not crossing:
            _xy_cut(left, leaves)
            _xy_cut(right, leaves)
            return
        # Lines across the gutter cut the region into bands, read top to bottom.
        rest = left + right
        top = float("-inf")
        for c in sorted(crossing, key=lambda ln: _centre(ln)[1]):
            cy = _centre(c)[1]
            _xy_cut([ln for ln in rest if top <= _centre(ln)[1] < cy], leaves)
            leaves.append([c])
            top = cy
        _xy_cut([ln for ln in rest if _centre(ln)[1] >= top], leaves)
        return
    hgaps = _gaps([(ln.box[1], ln.box[3]) for ln in lines], y0, y1)
    if not hgaps:
        # No gap across the region: columns whose lines are not level with each other.
        # Where the page changes layout (two columns above, three below), cut it there:
        # after the longest run of lines from the top that still has a gutter.
        split = _layout_change(lines)
        if split is not None:
            _xy_cut(split[0], leaves)
            _xy_cut(split[1], leaves)
            return
    if hgaps:
        gy0, gy1 = max(hgaps, key=lambda g: g[1] - g[0])
        mid = (gy0 + gy1) / 2
        _xy_cut([ln for ln in lines if ln.box[3] <= mid], leaves)
        _xy_cut([ln for ln in lines if ln.box[1] >= mid], leaves)
        return
    leaves.append(lines)


def _rows(lines: list[Line]) -> list[list[Line]]:
    """Visual rows, top to bottom, each left to right."""
    rows: list[tuple[float, float, list[Line]]] = []  # (centre, height, lines)
    for ln in sorted(lines, key=lambda ln: (ln.box[1] + ln.box[3]) / 2):
        c, h = (ln.box[1] + ln.box[3]) / 2, _height(ln.box)
        if rows and abs(c - rows[-1][0]) <= 0.5 * min(h, rows[-1][1]):
            rc, rh, members = rows[-1]
            members.append(ln)
            n = len(members)
            rows[-1] = ((rc * (n - 1) + c) / n, min(rh, h), members)
        else:
            rows.append((c, h, [ln]))
    return [sorted(m, key=lambda ln: ln.box[0]) for _, _, m in rows]


def order_lines(lines: Sequence[Line]) -> list[list[list[Line]]]:
    """Lines in reading order: a list of leaves (regions), each a list of visual rows."""
    leaves: list[list[Line]] = []
    _xy_cut(list(lines), leaves)
    return [_rows(leaf) for leaf in leaves]


def _union(boxes: Sequence[Box]) -> Box:
    return (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )


def page_blocks(lines: Sequence[Line]) -> tuple[Block, ...]:
    """Blocks (paragraphs) of lines in reading order: consecutive rows join a block
    unless the gap above the row exceeds one line height, the row goes back up the page
    (a new column), or it does not overlap the block horizontally."""
    blocks: list[Block] = []
    cur: list[Line] = []
    for row in (row for leaf in order_lines(lines) for row in leaf):
        rb = _union([ln.box for ln in row])
        if cur:
            bb = _union([ln.box for ln in cur])
            gap = rb[1] - bb[3]
            overlap = min(rb[2], bb[2]) - max(rb[0], bb[0])
            if gap > _height(rb) or rb[3] <= bb[3] - _height(rb) or overlap <= 0:
                blocks.append(Block(tuple(cur), bb))
                cur = []
        cur.extend(row)
    if cur:
        blocks.append(Block(tuple(cur), _union([ln.box for ln in cur])))
    return tuple(blocks)


def page_text(blocks: Sequence[Block]) -> str:
    """Rows joined by newlines (lines of one row by a space), blocks by a blank line."""
    parts = []
    for b in blocks:
        rows = _rows(list(b.lines))
        parts.append("\n".join(" ".join(ln.text for ln in row) for row in rows))
    return "\n\n".join(parts) + ("\n" if parts else "")


def word(text: str, confidence: float, polygon: Sequence[Sequence[float]]) -> Word:
    """A Word from a detector's quadrilateral: its box, and the polygon itself only where
    the text is rotated (an upright polygon is its box)."""
    box = box_of(polygon)
    poly = None
    if len(polygon) >= 4:
        pts = tuple((round(float(x)), round(float(y))) for x, y in polygon)
        if _rotated(pts):
            poly = pts
    return Word(text, box, confidence, poly)


def _rotated(pts: tuple[tuple[int, int], ...]) -> bool:
    # An upright quadrilateral has its top edge level and its left edge plumb; a tilt of
    # more than about 1 degree (2 px over 100 px) keeps the polygon.
    (x0, y0), (x1, y1) = pts[0], pts[1]
    x3, y3 = pts[-1]
    dx, dy = max(1, abs(x1 - x0)), abs(y1 - y0)
    hx, hy = abs(x3 - x0), max(1, abs(y3 - y0))
    if dx <= 2 or hy <= 2:
        return False
    return dy / dx > 0.02 or hx / hy > 0.02
