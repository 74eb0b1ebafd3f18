"""Word boxes back onto the page as it was decoded, after steps that moved its pixels.

The engine reads the preprocessed image; orientation (a quarter turn), deskew (a small
turn that enlarges the page) and upscale change its geometry. hOCR, ALTO and the
searchable PDF place words on the original page image, so the pipeline maps the
reading back through the inverse of those steps, in reverse order. A word turned by
deskew comes back as a tilted quadrilateral (its polygon, where the tilt is visible).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from ..model import Block, Box, Line, PageText, Word

__all__ = ["GEOMETRIC_STEPS", "to_original"]

GEOMETRIC_STEPS = frozenset({"orientation", "deskew", "upscale"})

Point = tuple[float, float]


def _deskew_inverse(w: int, h: int, angle: float) -> tuple[Any, int, int]:
    """The inverse of :func:`ocrbatch.preprocess.steps.deskew`'s affine map (as
    cv2.getRotationMatrix2D builds it, page enlarged to fit) and the enlarged size."""
    a = math.radians(angle)
    cos, sin = math.cos(a), math.sin(a)
    nw, nh = int(h * abs(sin) + w * abs(cos) + 0.5), int(h * abs(cos) + w * abs(sin) + 0.5)
    cx, cy = w / 2.0, h / 2.0
    tx = (1 - cos) * cx - sin * cy + nw / 2.0 - cx
    ty = sin * cx + (1 - cos) * cy + nh / 2.0 - cy

    def inverse(p: Point) -> Point:
        x, y = p[0] - tx, p[1] - ty
        return (cos * x - sin * y, sin * x + cos * y)

    return inverse, nw, nh


def _quarter_inverse(k: int, win: int, hin: int) -> Any:
    """Inverse of a counter-clockwise quarter turn ``k`` times (np.rot90, PIL rotate)
    of a ``win`` x ``hin`` page."""

    def inverse(p: Point) -> Point:
        if k == 1:
            return (win - p[1], p[0])
        if k == 2:
            return (win - p[0], hin - p[1])
        return (p[1], hin - p[0])

    return inverse


def _scale_inverse(f: float) -> Any:
    def inverse(p: Point) -> Point:
        return (p[0] / f, p[1] / f)

    return inverse


def _chain(size: tuple[int, int], info: Mapping[str, Any]) -> list[Any]:
    """Inverse point maps of the geometric steps, last step first."""
    w, h = size
    inverses = []
    for step in info.get("steps", ()):
        if step == "orientation":
            k = (int(info.get("orientation", 0)) // 90) % 4
            if k:
                inverses.append(_quarter_inverse(k, w, h))
            if k % 2:
                w, h = h, w
        elif step == "deskew" and float(info.get("deskew_angle", 0.0)):
            inv, w, h = _deskew_inverse(w, h, float(info["deskew_angle"]))
            inverses.append(inv)
        elif step == "upscale" and float(info.get("upscale", 1.0)) != 1.0:
            f = float(info["upscale"])
            inverses.append(_scale_inverse(f))
            w, h = round(w * f), round(h * f)
    return inverses[::-1]


def _apply(inverses: Sequence[Any], p: Point) -> Point:
    for inv in inverses:
        p = inv(p)
    return p


def to_original(page: PageText, size: tuple[int, int], info: Mapping[str, Any]) -> PageText:
    """``page`` (read on the preprocessed image) in the coordinates of the original page
    of ``size`` (width, height), given the steps recorded in ``info``."""
    inverses = _chain(size, info)
    if not inverses:
        return page
    w0, h0 = size

    def corners(box: Box) -> list[Point]:
        x0, y0, x1, y1 = box
        return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]

    def quad(points: Sequence[Point]) -> list[tuple[int, int]]:
        out = []
        for p in points:
            x, y = _apply(inverses, p)
            out.append((min(max(round(x), 0), w0), min(max(round(y), 0), h0)))
        return out

    def box_of(q: Sequence[tuple[int, int]]) -> Box:
        xs, ys = [p[0] for p in q], [p[1] for p in q]
        return (min(xs), min(ys), max(xs), max(ys))

    def word(wd: Word) -> Word:
        q = quad(wd.polygon if wd.polygon else corners(wd.box))
        tilted = _tilted(q)
        return Word(wd.text, box_of(q), wd.confidence, tuple(q) if tilted else None)

    blocks = tuple(
        Block(
            tuple(
                Line(
                    tuple(word(wd) for wd in ln.words), box_of(quad(corners(ln.box))), ln.confidence
                )
                for ln in b.lines
            ),
            box_of(quad(corners(b.box))),
        )
        for b in page.blocks
    )
    factor = float(info.get("upscale", 1.0)) if "upscale" in info.get("steps", ()) else 1.0
    dpi = page.dpi / factor if page.dpi else page.dpi
    return PageText(page.text, page.confidence, w0, h0, blocks, dpi)


def _tilted(q: Sequence[tuple[int, int]]) -> bool:
    """Does the word's top edge run other than left to right, level (within about 1
    degree)? Then its polygon is kept: the word is turned on the original page."""
    (x0, y0), (x1, y1) = q[0], q[1]
    if abs(x1 - x0) + abs(y1 - y0) <= 2:
        return False
    return abs(math.atan2(y1 - y0, x1 - x0)) > 0.02
