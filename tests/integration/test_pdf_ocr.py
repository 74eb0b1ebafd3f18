"""Real Tesseract on PDFs and awkward images: every encoding and mode ends in the right
text; crooked pages are fixed by --preprocess auto (angle and orientation recorded)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

import ocrbatch
from ocrbatch.accuracy import score
from tests.badfiles import image_pdf
from tests.conftest import DATA

PHOTO = DATA / "tesseract_test" / "phototest.tif"
GT = (DATA / "tesseract_test" / "phototest.gt.txt").read_text(encoding="utf-8")


def _records(out: Path) -> dict[str, dict[str, Any]]:
    lines = (out / "results.jsonl").read_text(encoding="utf-8").splitlines()
    return {Path(r["path"]).name: r for r in map(json.loads, lines)}


def _variants(folder: Path) -> None:
    """phototest (640x480, 1-bit) in every awkward form the issue lists."""
    folder.mkdir()
    upright = Image.open(PHOTO).convert("L")
    upright.convert("CMYK").save(folder / "cmyk.jpg", quality=95)
    Image.eval(upright, lambda v: v).convert("I").point(lambda v: v * 257).convert("I;16").save(
        folder / "sixteen.png"
    )
    # palette with alpha: black ink opaque, paper (index 1) fully transparent
    pal = upright.point(lambda v: 1 if v > 128 else 0).convert("P")
    pal.putpalette([0, 0, 0, 0, 0, 0])
    pal.save(folder / "palette_alpha.png", transparency=1)
    upright.convert("1").save(folder / "bilevel.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned; viewers turn it 90 degrees clockwise
    upright.rotate(90, expand=True).save(folder / "exif_rotated.jpg", exif=exif, quality=95)
    upright.save(folder / "_j.jp2")
    with Image.open(folder / "_j.jp2") as jp2:
        image_pdf(folder / "jpeg2000.pdf", [jp2], dpi=200)  # JPXDecode
    (folder / "_j.jp2").unlink()
    image_pdf(folder / "ccitt.pdf", [upright.convert("1")], dpi=200)  # CCITTFaxDecode
    image_pdf(folder / "upside_down.pdf", [upright.rotate(180)], dpi=200)
    upright.rotate(3, expand=True, fillcolor=255, resample=Image.Resampling.BICUBIC).save(
        folder / "skewed.png", dpi=(200, 200)
    )


def test_awkward_images_and_pdf_encodings_read_correctly(tmp_path: Path, db_url: str) -> None:
    _variants(tmp_path / "in")
    out = tmp_path / "out"
    summary = ocrbatch.run(
        [tmp_path / "in"], out, db=db_url, config={"cache_dir": str(tmp_path / "cache")}
    )
    recs = _records(out)
    assert summary["documents"]["completed"] == len(recs) == 9
    for name, rec in recs.items():
        cer = score(rec["text"], GT).cer
        assert cer < 0.05, f"{name}: CER {cer:.3f}"
    info = {n: r["page_results"][0]["info"] for n, r in recs.items()}
    assert info["upside_down.pdf"]["orientation"] == 180
    assert "orientation" in info["upside_down.pdf"]["steps"]
    assert info["skewed.png"]["deskew_angle"] == pytest.approx(-3.0, abs=0.4)
    assert info["ccitt.pdf"]["path"] == "ocr" and info["ccitt.pdf"]["dpi"] == 300.0
    assert info["bilevel.png"]["steps"] == []  # a clean page goes through untouched
    # the preprocessed pages are cached: another run (other engine options) reuses them
    again = ocrbatch.run(
        [tmp_path / "in" / "skewed.png"],
        tmp_path / "out2",
        db=db_url,
        config={"cache_dir": str(tmp_path / "cache"), "engine_options": {"psm": 4}},
    )
    assert again["documents"]["completed"] == 1
    hit = _records(tmp_path / "out2")["skewed.png"]["page_results"][0]["info"]
    assert hit["cache"] == "hit" and hit["steps"] == ["deskew"]


@pytest.mark.corpus
def test_jbig2_and_ccitt_pdfs_of_the_corpus(corpus: Path, tmp_path: Path, db_url: str) -> None:
    pdfs = [corpus / "pdf" / "jbig2.pdf", corpus / "pdf" / "ccitt.pdf"]
    ocrbatch.run(pdfs, tmp_path / "out", db=db_url, config={"cache_max_mb": 0})
    recs = _records(tmp_path / "out")
    texts = [recs[p.name]["text"] for p in pdfs]
    for text in texts:
        assert "LinnSequencer" in text and "MIDI Sequence Recorder" in text
    # the same page in two encodings reads (almost) the same
    assert score(texts[0], texts[1]).cer < 0.02
