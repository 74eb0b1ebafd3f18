"""Accuracy against ground truth: CER, WER and an order-free bag-of-words error.

Normalization (applied to both sides, as the corpus README advises): Unicode NFC,
curly quotes to straight, en/em dashes and minus signs to ``-``, ligatures spelt out,
every whitespace run (newlines included) to one space, trimmed; ``casefold=True`` also
compares case-insensitively. Edit distances come from rapidfuzz.
"""

from __future__ import annotations

import collections
import unicodedata
from dataclasses import dataclass

from rapidfuzz.distance import Levenshtein

__all__ = ["Score", "normalize", "pooled", "score"]

_TRANSLATE = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201b": "'",
        "\u2032": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u201f": '"',
        "\u2033": '"',
        "\u00ab": '"',
        "\u00bb": '"',
        "\u2010": "-",
        "\u2011": "-",
        "\u2012": "-",
        "\u2013": "-",
        "\u2014": "-",
        "\u2015": "-",
        "\u2212": "-",
        "\ufb00": "ff",
        "\ufb01": "fi",
        "\ufb02": "fl",
        "\ufb03": "ffi",
        "\ufb04": "ffl",
        "\ufb05": "st",
        "\ufb06": "st",
    }
)


def normalize(text: str, *, casefold: bool = False) -> str:
    """The documented normalization (see the module docstring)."""
    t = unicodedata.normalize("NFC", text).translate(_TRANSLATE)
    t = " ".join(t.split())
    return t.casefold() if casefold else t


@dataclass(frozen=True, slots=True)
class Score:
    """Edit counts of one page (or a pool of pages) and the rates they give."""

    char_errors: int
    ref_chars: int
    word_errors: int
    ref_words: int
    words_missing: int

    @property
    def cer(self) -> float:
        return self.char_errors / self.ref_chars if self.ref_chars else float(self.char_errors > 0)

    @property
    def wer(self) -> float:
        return self.word_errors / self.ref_words if self.ref_words else float(self.word_errors > 0)

    @property
    def bow(self) -> float:
        """Reference words missing from the output (as a multiset) / reference words."""
        return self.words_missing / self.ref_words if self.ref_words else 0.0

    def __add__(self, other: Score) -> Score:
        return Score(
            self.char_errors + other.char_errors,
            self.ref_chars + other.ref_chars,
            self.word_errors + other.word_errors,
            self.ref_words + other.ref_words,
            self.words_missing + other.words_missing,
        )


def score(hypothesis: str, reference: str, *, casefold: bool = False) -> Score:
    """Score OCR output against ground truth after :func:`normalize` of both."""
    hyp = normalize(hypothesis, casefold=casefold)
    ref = normalize(reference, casefold=casefold)
    hw, rw = hyp.split(), ref.split()
    missing = collections.Counter(rw) - collections.Counter(hw)
    return Score(
        char_errors=Levenshtein.distance(hyp, ref),
        ref_chars=len(ref),
        word_errors=Levenshtein.distance(hw, rw),
        ref_words=len(rw),
        words_missing=sum(missing.values()),
    )


def pooled(scores: list[Score]) -> Score:
    """Scores pooled over pages: total edits over total reference length."""
    total = Score(0, 0, 0, 0, 0)
    for s in scores:
        total = total + s
    return total
