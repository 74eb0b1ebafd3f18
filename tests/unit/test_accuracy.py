from __future__ import annotations

import pytest

from ocrbatch.accuracy import normalize, pooled, score


def test_normalization_is_the_documented_one() -> None:
    assert normalize("\u201cﬁne\u201d \u2014 it\u2019s\n\n  ok") == '"fine" - it\'s ok'
    assert normalize("ABC", casefold=True) == "abc"


def test_hand_checked_scores() -> None:
    s = score("the cat sat", "the cat sat on")
    # 3 chars missing (" on") of 14; 1 word of 4 missing; bag-of-words: "on" missing.
    assert (s.char_errors, s.ref_chars) == (3, 14)
    assert s.cer == pytest.approx(3 / 14)
    assert s.wer == pytest.approx(1 / 4)
    assert s.bow == pytest.approx(1 / 4)
    swapped = score("sat cat the", "the cat sat")
    assert swapped.bow == 0.0 and swapped.wer == pytest.approx(2 / 3)


def test_pooled_scores_weight_by_reference_length() -> None:
    a, b = score("abcd", "abcx"), score("", "xy")
    assert pooled([a, b]).cer == pytest.approx((1 + 2) / (4 + 2))
