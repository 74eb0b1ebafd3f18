"""Real Tesseract (tesserocr + tessdata-fast) on real scans, a real SQLite file."""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess

import pytest

import ocrbatch
from ocrbatch.accuracy import pooled, score
from tests.badfiles import make_bad_inputs
from tests.conftest import DATA

Cli = Callable[..., CompletedProcess[str]]

# Pooled CER bounds for the Tesseract fast model, no preprocessing, PSM 3. The reference
# run of ../shared/corpus/README.md (Tesseract 5.3 CLI) gives sroie 0.181, funsd 0.270,
# oldbooks 0.014, tesseract_test 0.071, docbank 0.055 on all pages; these bounds leave
# room for the 2-3 pages per source sampled here and for a different Tesseract build.
CER_BOUND = {
    "tesseract_test": 0.10,
    "docbank": 0.06,
    "oldbooks": 0.03,
    "sroie": 0.20,
    "funsd": 0.25,
}
CASEFOLD = {"sroie"}
PER_SOURCE = 2


def _records(out: Path) -> list[dict[str, object]]:
    return [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]


def _gt(path: Path, source: str) -> str:
    gt = path.with_name(path.name.rsplit(".", 1)[0] + ".gt.txt").read_text(encoding="utf-8")
    return gt.replace("~", "") if source == "tesseract_test" else gt


def _check_cer(out: Path, sources: dict[str, str]) -> dict[str, float]:
    scores: dict[str, list] = {}
    for rec in _records(out):
        assert rec["status"] == "completed", rec
        path = Path(str(rec["path"]))
        src = sources[str(path)]
        scores.setdefault(src, []).append(
            score(str(rec["text"]), _gt(path, src), casefold=src in CASEFOLD)
        )
    cers = {src: pooled(s).cer for src, s in scores.items()}
    print("pooled CER per source:", {k: round(v, 4) for k, v in cers.items()})
    for src, cer in cers.items():
        assert cer <= CER_BOUND[src], f"{src}: CER {cer:.3f} above {CER_BOUND[src]}"
    return cers


def test_bundled_pages_are_recognized_accurately(tmp_path: Path, db_url: str) -> None:
    pages = sorted(DATA.glob("*/*.tif")) + sorted(DATA.glob("*/*.jpg"))
    out = tmp_path / "out"
    summary = ocrbatch.run([str(p) for p in pages], out, db=db_url)
    assert summary["documents"]["completed"] == len(pages) == 3
    _check_cer(out, {str(p): p.parent.name for p in pages})
    rec = next(r for r in _records(out) if str(r["path"]).endswith("phototest.tif"))
    words = (
        [w for b in rec["page_results"][0]["blocks"] for ln in b["lines"] for w in ln["words"]]
        if "blocks" in rec["page_results"][0]
        else None
    )
    assert words is None  # jsonl keeps pages light; the json format carries the boxes
    assert 0.8 < float(rec["confidence"]) <= 1.0  # type: ignore[arg-type]


@pytest.mark.corpus
def test_corpus_sample_each_source_within_its_cer_bound(
    corpus: Path, tmp_path: Path, db_url: str
) -> None:
    with (corpus / "manifest.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    chosen: dict[str, str] = {}
    for src in CER_BOUND:
        for row in [r for r in rows if r["source"] == src][:PER_SOURCE]:
            chosen[str(corpus / row["image"])] = src
    out = tmp_path / "out"
    summary = ocrbatch.run(list(chosen), out, db=db_url, config={"formats": "jsonl,json"})
    assert summary["documents"]["completed"] == len(chosen) == 10
    _check_cer(out, chosen)
    # The json format carries word boxes that lie inside the page.
    doc = json.loads((out / "results.json").read_text())[0]
    page = doc["page_results"][0]
    words = [w for b in page["blocks"] for ln in b["lines"] for w in ln["words"]]
    assert words and all(0 <= w["box"][0] < w["box"][2] <= page["width"] for w in words)
    assert all(0 <= w["conf"] <= 1 for w in words)


def test_bad_inputs_fail_alone_with_one_line_reasons(cli: Cli, tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(DATA / "tesseract_test" / "phototest.tif", src / "good.tif")
    bad = make_bad_inputs(src, sample_jpeg=DATA / "docbank" / "arxiv_1401_6921_p13.jpg")
    out = tmp_path / "out"
    proc = cli("run", str(src), "--out", str(out), "--format", "jsonl,csv")
    assert proc.returncode == 8, proc.stderr  # done, with failed documents
    recs = {Path(str(r["path"])).name: r for r in _records(out)}
    assert recs["good.tif"]["status"] == "completed"
    expected = {
        "empty.png": "empty file (0 bytes)",
        "truncated.png": "truncated or corrupt image data",
        "truncated.jpg": "truncated or corrupt image data",
        "notes.png": "not a supported image (unrecognized file format)",
        "bomb.png": "image too large: 100000x100000",
    }
    assert set(expected) == {p.name for p in bad.values()}
    for name, reason in expected.items():
        err = str(recs[name]["error"])
        assert recs[name]["status"] == "failed" and err.startswith(reason), (name, err)
        assert "\n" not in err
        # an input fault is not retried: the same bytes fail the same way
        pages = recs[name]["page_results"]
        assert all(p["retries"] == 0 for p in pages)  # type: ignore[union-attr]
    errors = [json.loads(x) for x in (out / "errors.jsonl").read_text().splitlines()]
    assert len(errors) == 5
    summary = json.loads((out / "summary.json").read_text())
    assert summary["documents"]["completed"] == 1 and summary["documents"]["failed"] == 5
