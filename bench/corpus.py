"""Shared helpers of the benchmarks: the dev corpus and its scoring rules."""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from pathlib import Path

from ocrbatch.accuracy import Score, pooled, score

REPO = Path(__file__).resolve().parents[1]
CORPUS = Path(os.environ.get("OCRBATCH_CORPUS", REPO.parent / "shared" / "corpus"))
SOURCES = ("sroie", "funsd", "oldbooks", "tesseract_test", "docbank")


@dataclass(frozen=True)
class Page:
    source: str
    image: Path
    gt: Path
    casefold: bool


def pages(sources: tuple[str, ...] = SOURCES) -> list[Page]:
    if not (CORPUS / "manifest.csv").is_file():
        raise SystemExit(f"corpus not found at {CORPUS} (set OCRBATCH_CORPUS)")
    with (CORPUS / "manifest.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [
        Page(r["source"], CORPUS / r["image"], CORPUS / r["gt"], r["case_sensitive"] == "no")
        for r in rows
        if r["source"] in sources
    ]


def reference(page: Page) -> str:
    text = page.gt.read_text(encoding="utf-8")
    return text.replace("~", "") if page.source == "tesseract_test" else text


def score_results(results_jsonl: Path, by_path: dict[str, Page]) -> dict[str, Score]:
    """Pooled scores per source of a results.jsonl against the corpus ground truth."""
    per: dict[str, list[Score]] = {}
    for line in results_jsonl.read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        page = by_path[rec["path"]]
        per.setdefault(page.source, []).append(
            score(rec["text"] or "", reference(page), casefold=page.casefold)
        )
    return {src: pooled(s) for src, s in per.items()}
