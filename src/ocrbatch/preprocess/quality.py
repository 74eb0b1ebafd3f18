"""A cheap quality check of a page: what ``--preprocess auto`` decides from.

Everything is measured on a copy at most ``ANALYSIS_SIDE`` pixels long (character
heights at up to twice that), so the check costs tens of milliseconds on a 300-dpi page
that OCR takes seconds on.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import cv2
import numpy as np

__all__ = [
    "ANALYSIS_SIDE",
    "LETTER_HEIGHT_PT",
    "Quality",
    "char_height",
    "estimate_dpi",
    "estimate_skew",
    "measure",
]

# The median letter height (char_height) of body text, in points, on the dev corpus's
# pages whose resolution is known: 5.04 (oldbooks, 300 dpi), 5.16 (tesseract_test, 200
# and 300 dpi), 4.7 (docbank, A4 pages at 200 dpi). A page that states no resolution is
# given the one that makes its letters this tall (see estimate_dpi).
LETTER_HEIGHT_PT = 5.0

ANALYSIS_SIDE = 1000
# Letter heights are measured at full resolution on a few bands of the page this many
# pixels in all: enough letters for a stable median, a fraction of a 300-dpi page.
_HEIGHT_PIXELS = 900_000


@dataclass(frozen=True, slots=True)
class Quality:
    """What the check found; ``score`` is 1 for a clean, straight, well-resolved page."""

    char_height: float  # median height of letter-like components, in page pixels
    speckle: float  # share of ink components of one or two pixels (salt-and-pepper noise)
    contrast: float  # (99th - 1st percentile of grey) / 255
    unevenness: float  # spread of the background (shadows, stains, photographed paper)
    border: float  # largest share of one edge band that is dark (scanner borders)
    skew: float  # degrees of counter-clockwise turn that straighten the text lines
    score: float

    def as_dict(self) -> dict[str, Any]:
        return {k: round(v, 3) for k, v in asdict(self).items()}


def _shrink(g: np.ndarray, side: int) -> np.ndarray:
    """An integer-step subsample at most about ``side`` long: free, and percentiles and
    ink profiles do not mind the aliasing."""
    k = -(-max(g.shape) // side)
    return g[::k, ::k] if k > 1 else g


def _ink(g: np.ndarray) -> np.ndarray:
    """Dark-on-light ink mask (Otsu), 255 = ink."""
    _, b = cv2.threshold(g, 0, 255, cv2.THRESH_BINARY_INV | cv2.THRESH_OTSU)
    return b


def char_height(g: np.ndarray) -> tuple[float, float]:
    """(median letter height in page pixels, speckle share) from connected components."""
    h, w = g.shape
    half = max(1, _HEIGHT_PIXELS // max(1, w) // 6)
    if half * 6 < h:  # three bands, at a quarter, half and three quarters of the page
        g = np.concatenate([g[c - half : c + half] for c in (h // 4, h // 2, 3 * h // 4)])
    n, _, stats, _ = cv2.connectedComponentsWithStats(_ink(g), connectivity=8)
    if n <= 1:
        return 0.0, 0.0
    h, w = stats[1:, cv2.CC_STAT_HEIGHT], stats[1:, cv2.CC_STAT_WIDTH]
    area = stats[1:, cv2.CC_STAT_AREA]
    speckle = float((area <= 2).sum()) / len(area)
    letters = (h >= 3) & (h <= 200) & (w <= 3 * h) & (area >= 6)
    if not letters.any():
        return 0.0, speckle
    return float(np.median(h[letters])), speckle


def estimate_skew(g: np.ndarray, max_angle: float = 10.0) -> float:
    """Skew of the text lines by projection profiles: the turn (degrees, counter-clockwise)
    at which the rows of ink are sharpest, searched coarse (1 degree) then fine (0.2).

    About 30 turns of a 600-pixel copy: a few ms, where a Hough transform (the
    ``deskew`` package, scikit-image) measured 100-800 ms on the same pages.
    """
    ink = _ink(_shrink(g, 600))
    if cv2.countNonZero(ink) < 0.002 * ink.size:
        return 0.0
    upright, sideways = _skew_on_rows(ink, max_angle), _skew_on_rows(ink.T.copy(), max_angle)
    # A sideways page has its lines along the columns: its skew is found on the
    # transposed page (a mirror image, so the angle changes sign).
    if sideways[1] > upright[1]:
        return round(-sideways[0], 1)
    return round(upright[0], 1)


def _skew_on_rows(ink: np.ndarray, max_angle: float) -> tuple[float, float]:
    """(angle, sharpness) of the sharpest row profile."""
    h, w = ink.shape
    center = (w / 2.0, h / 2.0)

    def sharpness(angle: float) -> float:
        m = cv2.getRotationMatrix2D(center, float(angle), 1.0)
        turned = cv2.warpAffine(ink, m, (w, h), flags=cv2.INTER_NEAREST)
        rows = cv2.reduce(turned, 1, cv2.REDUCE_SUM, dtype=cv2.CV_32F).ravel()
        return float(np.square(np.diff(rows)).sum())

    coarse = max(range(-int(max_angle), int(max_angle) + 1), key=sharpness)
    fine = max((coarse + d / 5.0 for d in range(-4, 5)), key=sharpness)
    return float(fine), sharpness(fine)


def measure(g: np.ndarray, *, skew: bool = True) -> Quality:
    """The quality check of a grey page (uint8, 0 = black)."""
    small = _shrink(g, ANALYSIS_SIDE)
    lo, hi = _percentiles(small, 1, 99)
    contrast = float(hi - lo) / 255.0
    # Paper colour: a heavy blur of the page with the ink closed over.
    k = max(3, (min(small.shape) // 20) | 1)
    paper = cv2.blur(cv2.dilate(small, np.ones((7, 7), np.uint8)), (k, k))
    p5, p95 = _percentiles(paper, 5, 95)
    unevenness = float(p95 - p5) / 255.0
    border = _border(small)
    height, speckle = char_height(g)
    angle = estimate_skew(g) if skew else 0.0
    score = min(
        1.0,
        height / 20.0 if height else 1.0,
        1.0 - min(1.0, speckle / 0.5),
        contrast / 0.5,
        1.0 - min(1.0, unevenness / 0.5),
        1.0 - border,
        1.0 - min(1.0, abs(angle) / 5.0),
    )
    return Quality(height, speckle, contrast, unevenness, border, angle, max(0.0, score))


def _percentiles(a: np.ndarray, lo: float, hi: float) -> tuple[int, int]:
    """Two percentiles of a uint8 array from its histogram (no sort)."""
    cdf = np.cumsum(np.bincount(a.ravel(), minlength=256)) / a.size
    return int(np.searchsorted(cdf, lo / 100.0)), int(np.searchsorted(cdf, hi / 100.0))


def _border(small: np.ndarray) -> float:
    """Largest share of dark pixels in a band 2% wide along one edge."""
    h, w = small.shape
    bh, bw = max(1, h // 50), max(1, w // 50)
    dark = small < 80
    bands = (dark[:bh], dark[-bh:], dark[:, :bw], dark[:, -bw:])
    return float(max(b.mean() for b in bands))


def estimate_dpi(letter_height: float) -> float | None:
    """The resolution at which letters ``letter_height`` pixels tall are body text
    (LETTER_HEIGHT_PT), to the nearest 10 dpi within 72..1200; None without letters.
    An estimate for page sizes (a searchable PDF page), not for reading the text."""
    if letter_height <= 0:
        return None
    dpi = round(letter_height * 72.0 / LETTER_HEIGHT_PT / 10.0) * 10.0
    return min(1200.0, max(72.0, dpi))
