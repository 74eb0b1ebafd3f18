from __future__ import annotations

from pathlib import Path

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


def test_ignored_characters_and_casefold_apply_to_both_sides() -> None:
    from ocrbatch.accuracy import normalize

    assert normalize("Caf~~  ok\f", ignore="~") == "Caf ok"
    s = score("CAFE", "caf~e", casefold=True, ignore="~")
    assert (s.char_errors, s.ref_chars) == (0, 4)


def test_ground_truth_lookup_order_and_page_split(tmp_path: Path) -> None:
    from ocrbatch.groundtruth import GroundTruthRules, find_ground_truth, score_document

    src = tmp_path / "in" / "sub"
    src.mkdir(parents=True)
    doc = src / "scan.tif"
    doc.write_bytes(b"x")
    rules = GroundTruthRules(str(tmp_path / "gt"))
    assert find_ground_truth(str(doc), "sub/scan.tif", rules) is None
    (src / "scan.tif.gt.txt").write_text("b")
    assert find_ground_truth(str(doc), "sub/scan.tif", rules) == src / "scan.tif.gt.txt"
    (src / "scan.gt.txt").write_text("a")
    assert find_ground_truth(str(doc), "sub/scan.tif", rules) == src / "scan.gt.txt"
    (tmp_path / "gt" / "sub").mkdir(parents=True)
    (tmp_path / "gt" / "sub" / "scan.gt.txt").write_text("c")  # the mirror wins
    assert find_ground_truth(str(doc), "sub/scan.tif", rules) == tmp_path / "gt/sub/scan.gt.txt"
    # Two pages of ground truth for two pages: scored page by page; a failed page is empty.
    scores = score_document([(0, "one two"), (1, None)], "one two\fthree", rules)
    assert (scores.pages[0].char_errors, scores.pages[1].char_errors) == (0, 5)
    assert (scores.document.char_errors, scores.document.ref_chars) == (5, 12)
    # A page count that does not match: the document is scored whole.
    whole = score_document([(0, "one two three")], "one two\fthree", rules)
    assert whole.pages == {} and whole.document.char_errors == 0
