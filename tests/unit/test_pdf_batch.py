"""PDF and TIFF documents through the real pool and store (fake engine): every page a
task spread over the workers, pages assembled in order, text layer vs --force-ocr, and
hostile documents failing alone while the batch goes on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PIL import Image

import ocrbatch
from tests.badfiles import (
    broken_frame_tiff,
    encrypted_pdf,
    good_png,
    image_pdf,
    no_pages_pdf,
    text_pdf,
    truncated_pdf,
)


def _records(out: Path) -> dict[str, dict[str, Any]]:
    lines = (out / "results.jsonl").read_text(encoding="utf-8").splitlines()
    return {Path(r["path"]).name: r for r in map(json.loads, lines)}


def _fake(**opts: Any) -> dict[str, Any]:
    return {
        "engine": "fake",
        "engine_options": opts,
        "max_retries": 0,
        "workers": 2,
        "cache_max_mb": 0,
        "preprocess": "off",
    }


def test_long_pdf_spreads_over_workers_and_assembles_in_order(tmp_path: Path, db_url: str) -> None:
    scans = [Image.new("L", (200, 260), 255) for _ in range(24)]
    pdf = image_pdf(tmp_path / "long.pdf", scans, dpi=50)
    summary = ocrbatch.run([pdf], tmp_path / "out", db=db_url, config=_fake(delay=0.05))
    assert summary["pages"]["completed"] == 24
    rec = _records(tmp_path / "out")["long.pdf"]
    assert [p["page"] for p in rec["page_results"]] == list(range(1, 25))
    assert rec["text"].split("\f") == [f"fake text of long.pdf page {i}" for i in range(1, 25)]
    assert len({p["worker"] for p in rec["page_results"]}) == 2  # both workers took pages
    assert all(p["info"]["path"] == "ocr" for p in rec["page_results"])


def test_text_layer_is_taken_unless_force_ocr(tmp_path: Path, db_url: str) -> None:
    src = tmp_path / "in"
    src.mkdir()
    text_pdf(src / "born.pdf", ["First page text", "Second page text"])
    image_pdf(src / "scan.pdf", [Image.new("L", (100, 100), 255)])
    ocrbatch.run([src], tmp_path / "o1", db=db_url, config=_fake())
    recs = _records(tmp_path / "o1")
    born = recs["born.pdf"]
    assert born["text"] == "First page text\n\fSecond page text\n"
    assert [p["info"]["path"] for p in born["page_results"]] == ["text-layer"] * 2
    assert recs["scan.pdf"]["page_results"][0]["info"]["path"] == "ocr"
    # --force-ocr: a different result key, so nothing is reused, every page is OCRed
    summary = ocrbatch.run([src], tmp_path / "o2", db=db_url, config={**_fake(), "force_ocr": True})
    assert summary["documents"]["reused"] == 0
    born = _records(tmp_path / "o2")["born.pdf"]
    assert born["text"].startswith("fake text of born.pdf page 1")
    assert [p["info"]["path"] for p in born["page_results"]] == ["ocr"] * 2


def test_pages_option_selects_pages(tmp_path: Path, db_url: str) -> None:
    pdf = text_pdf(tmp_path / "t.pdf", [f"text {i}" for i in range(1, 8)])
    ocrbatch.run([pdf], tmp_path / "o", db=db_url, config={**_fake(), "pages": "2-3,6"})
    rec = _records(tmp_path / "o")["t.pdf"]
    assert [p["page"] for p in rec["page_results"]] == [2, 3, 6]
    assert rec["text"] == "text 2\n\ftext 3\n\ftext 6\n"


def test_hostile_documents_fail_alone_and_the_batch_goes_on(tmp_path: Path, db_url: str) -> None:
    src = tmp_path / "in"
    src.mkdir()
    good = text_pdf(src / "good.pdf", ["fine text"])
    encrypted_pdf(src / "locked.pdf", user="s3cret")
    encrypted_pdf(src / "open-encrypted.pdf", user="")
    no_pages_pdf(src / "nopages.pdf")
    truncated_pdf(src / "truncated.pdf", good)
    frames = [Image.new("L", (120, 80), 255) for _ in range(3)]
    broken_frame_tiff(src / "frames.tif", frames, broken=1)
    good_png(src / "name with spaces ü\n.png")
    summary = ocrbatch.run([src], tmp_path / "out", db=db_url, config=_fake())
    recs = _records(tmp_path / "out")
    assert recs["good.pdf"]["status"] == "completed"
    assert recs["open-encrypted.pdf"]["text"] == "Secret page one\n\fSecret page two\n"
    assert recs["name with spaces ü\n.png"]["status"] == "completed"
    expected = {
        "locked.pdf": "encrypted PDF: it needs a password (pass --password)",
        "nopages.pdf": "PDF has no pages (empty or missing page tree)",
        "truncated.pdf": "corrupt or truncated PDF:",
        "frames.tif": "page 2: truncated or corrupt image data",
    }
    for name, reason in expected.items():
        assert recs[name]["status"] == "failed", name
        assert recs[name]["error"].startswith(reason) and "\n" not in recs[name]["error"]
    tif = recs["frames.tif"]["page_results"]
    assert [p["status"] for p in tif] == ["completed", "failed", "completed"]
    assert summary["documents"]["failed"] == 4 and summary["documents"]["completed"] == 3
    # the right password opens it (a job-wide setting, like OCRmyPDF's)
    ocrbatch.run(
        [src / "locked.pdf"], tmp_path / "o2", db=db_url, config={**_fake(), "password": "s3cret"}
    )
    assert _records(tmp_path / "o2")["locked.pdf"]["status"] == "completed"


def test_bad_page_and_preprocess_flags_are_one_line_errors(cli: Any, tmp_path: Path) -> None:
    good_png(tmp_path / "a.png")
    for flag, value, message in (
        ("--pages", "5-2", "bad page range '5-2'"),
        ("--preprocess", "sharpen", "unknown preprocessing step 'sharpen'"),
    ):
        proc = cli("run", str(tmp_path / "a.png"), "--out", str(tmp_path / "o"), flag, value)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
        assert len(lines) == 1 and message in lines[0], proc.stderr
