"""Recognized text quads -> PageText: words, lines, blocks, reading order.

Each detected quad is a run of text on one line. Quads whose vertical centres lie within
half a line height of each other form a row, read left to right; a row breaks into
separate lines where the horizontal gap exceeds three line heights (form fields, table
cells). A block ends where the vertical gap to the next row exceeds 1.2 line heights.
Words are the space-separated runs of a quad's text; their boxes come from the time
steps of their first and last characters. Quads turned by more than 2 degrees keep
polygons (the PageText contract: polygons where text is rotated).
"""

from __future__ import annotations

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


def _box(pts: np.ndarray, width: int, height: int) -> Box:
    x0, y0 = np.floor(pts.min(axis=0))
    x1, y1 = np.ceil(pts.max(axis=0))
    return (
        int(max(0, x0)),
        int(max(0, y0)),
        int(min(width, max(x1, x0 + 1))),
        int(min(height, max(y1, y0 + 1))),
    )


def _rotated(corners: np.ndarray) -> bool:
    dx, dy = corners[1] - corners[0]
    return bool(abs(np.degrees(np.arctan2(dy, dx))) > 2.0)


def _words(q: TextQuad, width: int, height: int) -> list[Word]:
    d = q.decoded
    tl, tr, br, bl = (q.corners[k].astype(np.float64) for k in range(4))
    step = 1.0 / max(d.length * q.columns, 1e-6)  # one time step as a fraction of the quad
    rotated = _rotated(q.corners)
    words: list[Word] = []
    run: list[int] = []

    def flush() -> None:
        if not run:
            return
        text = "".join(d.text[k] for k in run)
        f0 = max(0.0, float(d.steps[run[0]]) * step)
        f1 = min(1.0, float(d.steps[run[-1]] + 1) * step)
        poly = np.stack(
            [tl + (tr - tl) * f0, tl + (tr - tl) * f1, bl + (br - bl) * f1, bl + (br - bl) * f0]
        )
        polygon = tuple((round(x), round(y)) for x, y in poly) if rotated else None
        conf = round(float(np.mean(d.probs[run])), 4)
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
    centre = np.array([q.corners[:, 1].mean() for q, _ in items])
    heights = np.array(
        [max(1.0, float(np.linalg.norm(q.corners[3] - q.corners[0]))) for q, _ in items]
    )
    order = np.argsort(centre, kind="stable")
    rows: list[list[int]] = []
    row_y: list[float] = []
    for i in order:
        if rows and abs(centre[i] - row_y[-1]) < 0.5 * np.median(heights[rows[-1]]):
            rows[-1].append(int(i))
            row_y[-1] = float(np.mean(centre[rows[-1]]))
        else:
            rows.append([int(i)])
            row_y.append(float(centre[i]))
    blocks: list[Block] = []
    block_lines: list[Line] = []
    last_bottom: float | None = None
    for row in rows:
        row.sort(key=lambda i: float(items[i][0].corners[:, 0].min()))
        h = float(np.median(heights[row]))
        top = float(min(items[i][0].corners[:, 1].min() for i in row))
        if last_bottom is not None and top - last_bottom > 1.2 * h and block_lines:
            blocks.append(_block(block_lines))
            block_lines = []
        segment: list[int] = []
        for i in row:
            if segment:
                gap = items[i][0].corners[:, 0].min() - items[segment[-1]][0].corners[:, 0].max()
                if gap > 3.0 * h:
                    block_lines.append(_line([items[k] for k in segment], width, height))
                    segment = []
            segment.append(i)
        block_lines.append(_line([items[k] for k in segment], width, height))
        last_bottom = max(float(items[i][0].corners[:, 1].max()) for i in row)
    if block_lines:
        blocks.append(_block(block_lines))
    lines = [ln for b in blocks for ln in b.lines]
    probs = np.concatenate([q.decoded.probs for q, _ in items])
    text = "\n".join(ln.text for ln in lines) + "\n"
    return PageText(
        text=text,
        confidence=round(float(probs.mean()), 4) if probs.size else 0.0,
        width=width,
        height=height,
        blocks=tuple(blocks),
        dpi=dpi,
    )


def _line(parts: Sequence[tuple[TextQuad, list[Word]]], width: int, height: int) -> Line:
    words = tuple(w for _, ws in parts for w in ws)
    pts = np.concatenate([q.corners for q, _ in parts])
    probs = np.concatenate([q.decoded.probs for q, _ in parts])
    return Line(words, _box(pts, width, height), round(float(probs.mean()), 4))


def _block(lines: Sequence[Line]) -> Block:
    box = (
        min(ln.box[0] for ln in lines),
        min(ln.box[1] for ln in lines),
        max(ln.box[2] for ln in lines),
        max(ln.box[3] for ln in lines),
    )
    return Block(tuple(lines), box)
