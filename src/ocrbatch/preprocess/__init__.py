"""Preprocessing: a visible list of steps (grayscale, crop, orientation, deskew, denoise,
upscale, binarize), a cheap quality check that ``auto`` decides from, and the on-disk
cache of preprocessed pages. Runs in the workers, one page at a time."""

from __future__ import annotations

from .cache import PageCache, cache_key
from .preprocessor import AUTO_RULES, Preprocessor
from .quality import Quality, char_height, estimate_dpi, estimate_skew, measure

__all__ = [
    "AUTO_RULES",
    "PageCache",
    "Preprocessor",
    "Quality",
    "cache_key",
    "char_height",
    "estimate_dpi",
    "estimate_skew",
    "measure",
]
