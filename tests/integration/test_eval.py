"""Accuracy validation end to end on a tiny hand-checked example (fake engine, real
store, real CLI): every number below was worked out by hand."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess

import pytest
from PIL import Image

import ocrbatch

Cli = Callable[..., CompletedProcess[str]]


def _image(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", (60, 40), 255).save(path)


@pytest.fixture
def example(tmp_path: Path) -> Path:
    """The engine reads "the cat sat" on every page.

    x/one.png    GT beside it "the cat sat on": 3 char edits of 14, 1 word of 4, "on" missing
    y/two.png    GT beside it "the cat sat\\fthe bat sat": two pages of ground truth for a
                 one-page document, so it is scored whole: 12 char edits of 23, 3 words of
                 6, 3 missing (the, bat, sat)
    z/three.png  GT under gt/z/three.gt.txt "THE  CAT\\nSAT!": 10 char edits of 12 (9
                 letters and "!"), 3 words of 3, 3 missing; casefolded: 1 char edit ("!"),
                 1 word ("sat!"), 1 missing
    z/none.png   no GT: not scored
    """
    root = tmp_path / "in"
    _image(root / "x" / "one.png")
    (root / "x" / "one.gt.txt").write_text("the cat sat on\n")
    _image(root / "y" / "two.png")
    (root / "y" / "two.gt.txt").write_text("the cat sat\fthe bat sat\n")
    _image(root / "z" / "three.png")
    _image(root / "z" / "none.png")
    (tmp_path / "gt" / "z").mkdir(parents=True)
    (tmp_path / "gt" / "z" / "three.gt.txt").write_text("THE  CAT\nSAT!")
    return tmp_path


def test_eval_numbers_on_a_hand_checked_example(example: Path, cli: Cli) -> None:
    out = example / "out"
    cli(
        "run", str(example / "in"), "--engine", "fake", "--engine-opt", "text=the cat sat",
        "--ground-truth", str(example / "gt"), "--min-confidence", "0.95",
        "--format", "jsonl,csv", "--out", str(out), "--workers", "1", check=True,
    )  # fmt: skip
    summary = json.loads((out / "summary.json").read_text())
    acc = summary["accuracy"]
    # Pooled: chars (3 + 12 + 10) / (14 + 23 + 12); words (1 + 3 + 3) / (4 + 6 + 3);
    # bag-of-words (1 + 3 + 3) / 13.
    assert (acc["char_errors"], acc["ref_chars"]) == (25, 49)
    assert (acc["word_errors"], acc["ref_words"], acc["words_missing"]) == (7, 13, 7)
    assert acc["cer"] == round(25 / 49, 6) and acc["wer"] == round(7 / 13, 6)
    assert (acc["documents"], acc["pages"]) == (3, 3)
    by = acc["by_folder"]
    assert (by["x"]["char_errors"], by["x"]["ref_chars"], by["x"]["cer"]) == (
        3,
        14,
        round(3 / 14, 6),
    )
    assert (by["y"]["cer"], by["y"]["wer"], by["y"]["bow"]) == (round(12 / 23, 6), 0.5, 0.5)
    assert (by["z"]["documents"], by["z"]["char_errors"], by["z"]["ref_chars"]) == (1, 10, 12)
    # Every page has confidence 0.9 < 0.95: all four are flagged and listed.
    assert summary["review"]["pages"] == 4 and len(summary["review"]["listed"]) == 4
    assert by["z"]["review_pages"] == 2 and by["z"]["mean_confidence"] == 0.9
    lines = (out / "results.jsonl").read_text().splitlines()
    recs = {Path(r["path"]).name: r for r in map(json.loads, lines)}
    one, two = recs["one.png"], recs["two.png"]
    assert one["page_results"][0]["accuracy"]["char_errors"] == 3
    assert one["accuracy"]["cer"] == round(3 / 14, 6)
    assert two["page_results"][0]["accuracy"] is None  # scored as a whole document
    assert two["accuracy"]["char_errors"] == 12
    assert one["review_pages"] == [1] and one["page_results"][0]["review"] is True
    assert recs["none.png"]["accuracy"] is None
    with (out / "results.csv").open() as f:
        rows = {Path(r["path"]).name: r for r in csv.DictReader(f)}
    assert rows["one.png"]["cer"] == str(round(3 / 14, 6)) and rows["none.png"]["cer"] == ""

    # `ocrbatch eval` prints the table per folder; --casefold changes only z/ (1 edit).
    proc = cli("eval", summary["name"], "--casefold", "--json", check=True)
    folded = json.loads(proc.stdout)["accuracy"]
    z = folded["by_folder"]["z"]
    assert (z["char_errors"], z["word_errors"], z["words_missing"]) == (1, 1, 1)
    assert (folded["char_errors"], folded["word_errors"], folded["words_missing"]) == (16, 5, 5)
    table = cli("eval", summary["name"], "--casefold", check=True).stdout
    assert "casefold=True" in table
    row = next(ln for ln in table.splitlines() if ln.strip("│ ").startswith("x "))
    assert "0.2143" in row and "0.2500" in row  # CER 3/14, WER 1/4
    total = next(ln for ln in table.splitlines() if ln.strip("│ ").startswith("all "))
    assert f"{16 / 49:.4f}" in total and f"{5 / 13:.4f}" in total
    # eval recorded its scores on the pages: an export without re-scoring would carry
    # them, and export re-scores with the job's own rules (not casefolded).
    ocrbatch.export(summary["name"], db=f"sqlite:///{example / 'cli.db'}", out=str(out))
    lines = (out / "results.jsonl").read_text().splitlines()
    recs = {Path(r["path"]).name: r for r in map(json.loads, lines)}
    assert recs["three.png"]["accuracy"]["char_errors"] == 10


def test_eval_without_ground_truth_says_so(tmp_path: Path, cli: Cli) -> None:
    _image(tmp_path / "in" / "a.png")
    cli("run", str(tmp_path / "in"), "--engine", "fake", "--out", str(tmp_path / "o"),
        "--workers", "1", "--name", "nogt", check=True)  # fmt: skip
    proc = cli("eval", "nogt")
    assert proc.returncode == 1 and "no ground truth found for job" in proc.stderr
    bad = cli("run", str(tmp_path / "in"), "--engine", "fake", "--ground-truth", "/nope")
    assert bad.returncode == 2 and "--ground-truth folder not found: /nope" in bad.stderr
