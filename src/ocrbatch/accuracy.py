"""Accuracy against ground truth: CER, WER and an order-free bag-of-words error.

Normalization, applied to both sides in this order (as the corpus README advises):

1. Unicode NFC;
2. curly and angle quotes to straight ``'`` / ``"``, hyphens, en/em dashes and minus
   signs to ``-``, the ff/fi/fl/ffi/ffl/st ligatures spelt out;
3. ``ignore`` characters deleted (e.g. ``~``, which UNLV ground truth uses for
   characters its keyers could not read);
4. every whitespace run (newlines and form feeds included) to one space, trimmed;
5. with ``casefold=True``, case folded (case-insensitive comparison).

CER = character edit distance / reference characters; WER = word edit distance /
reference words (words are the space-separated tokens); bag-of-words error = reference
words missing from the output, counted as a multiset, / reference words (order-free,
for multi-column pages and forms). Edit distances come from rapidfuzz (Levenshtein).
Pooled rates divide total edits by total reference length, so long pages weigh more.
"""

from __future__ import annotations

import collections
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

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


def normalize(text: str, *, casefold: bool = False, ignore: str = "") -> str:
    """The documented normalization (see the module docstring)."""
    t = unicodedata.normalize("NFC", text).translate(_TRANSLATE)
    if ignore:
        t = t.translate({ord(c): None for c in ignore})
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

    def to_dict(self) -> dict[str, float | int]:
        """Counts and rates (rounded to 6 places), as stored and exported."""
        return {
            "cer": round(self.cer, 6),
            "wer": round(self.wer, 6),
            "bow": round(self.bow, 6),
            "char_errors": self.char_errors,
            "ref_chars": self.ref_chars,
            "word_errors": self.word_errors,
            "ref_words": self.ref_words,
            "words_missing": self.words_missing,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Score:
        """The counts back from :meth:`to_dict` (rates are recomputed)."""
        return cls(
            int(d["char_errors"]),
            int(d["ref_chars"]),
            int(d["word_errors"]),
            int(d["ref_words"]),
            int(d["words_missing"]),
        )

    def __add__(self, other: Score) -> Score:
        return Score(
            self.char_errors + other.char_errors,
            self.ref_chars + other.ref_chars,
            self.word_errors + other.word_errors,
            self.ref_words + other.ref_words,
            self.words_missing + other.words_missing,
        )


def score(hypothesis: str, reference: str, *, casefold: bool = False, ignore: str = "") -> Score:
    """Score OCR output against ground truth after :func:`normalize` of both."""
    hyp = normalize(hypothesis, casefold=casefold, ignore=ignore)
    ref = normalize(reference, casefold=casefold, ignore=ignore)
    hw, rw = hyp.split(), ref.split()
    missing = collections.Counter(rw) - collections.Counter(hw)
    return Score(
        char_errors=Levenshtein.distance(hyp, ref),
        ref_chars=len(ref),
        word_errors=Levenshtein.distance(hw, rw),
        ref_words=len(rw),
        words_missing=sum(missing.values()),
    )


def pooled(scores: Iterable[Score]) -> Score:
    """Scores pooled over pages: total edits over total reference length."""
    total = Score(0, 0, 0, 0, 0)
    for s in scores:
        total = total + s
    return total
