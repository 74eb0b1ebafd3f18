"""Real Tesseract, real pool: a page reads the same from the page cache as fresh (issue 10).

A page taken from the cache went to Tesseract as the PNG it was decoded from, without a
resolution, where the fresh page went as BMP at 96 dpi: every page read differently warm
(0001129658: 1,486 characters cold, 1,429 warm). The pages are chosen to cover what the
cache holds: deskewed and enlarged pages, a page whose second reading won (the cache then
keeps the better image) and one whose file has a dpi (the page info's dpi is the file's).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import ocrbatch

PAGES = [
    "funsd/0012199830.png",  # deskew + upscale; its second reading loses
    "funsd/0060091229.png",  # deskew + upscale
    "funsd/91355841.png",  # upscale, then the page as it was reads better: that is cached
    "sroie/280.jpg",  # 96 dpi in the file; crop, then a second reading enlarged wins
]


def _pages(out: Path) -> dict[str, dict[str, Any]]:
    lines = (out / "results.jsonl").read_text(encoding="utf-8").splitlines()
    recs = [json.loads(x) for x in lines]
    assert all(r["status"] == "completed" for r in recs), recs
    return {r["rel_path"]: r for r in recs}


def _facts(info: dict[str, Any]) -> dict[str, Any]:
    """Page info less this run's timings and the cache's hit/miss marker."""
    return {k: v for k, v in info.items() if k != "cache" and not k.endswith("_s")}


@pytest.mark.corpus
def test_warm_cache_reads_byte_identical_to_cold(corpus: Path, tmp_path: Path) -> None:
    inputs = [corpus / p for p in PAGES]
    config = {"workers": 2, "cache_dir": str(tmp_path / "cache")}
    runs = {}
    for run in ("cold", "warm"):
        # a fresh store each time: the same store would reuse the first run's results
        db = f"sqlite:///{tmp_path / run}.db"
        ocrbatch.run(inputs, tmp_path / run, db=db, config=config)
        runs[run] = _pages(tmp_path / run)
    cold, warm = runs["cold"], runs["warm"]
    assert sorted(cold) == sorted(warm) and len(cold) == len(PAGES)
    infos = [r["page_results"][0]["info"] for r in cold.values()]
    # the pages still exercise what they were chosen for
    assert any({"deskew", "upscale"} <= set(i["steps"]) for i in infos)
    won = [
        i
        for i in infos
        if "second_reading" in i
        and i["second_reading"]["confidence"][1] > i["second_reading"]["confidence"][0]
    ]
    assert won, "no page whose second reading won: the better-image path is untested"
    assert any(i.get("dpi") for i in infos)
    for name in cold:
        c, w = cold[name]["page_results"][0], warm[name]["page_results"][0]
        assert (c["info"]["cache"], w["info"]["cache"]) == ("miss", "hit"), name
        assert w["text"].encode() == c["text"].encode(), f"{name}: warm text differs"
        assert cold[name]["text"] == warm[name]["text"]
        assert (w["confidence"], w["width"], w["height"]) == (
            c["confidence"],
            c["width"],
            c["height"],
        ), name
        assert _facts(w["info"]) == _facts(c["info"]), name
