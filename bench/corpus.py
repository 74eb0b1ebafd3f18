"""Shared helpers of the benchmarks: the dev corpus and its scoring rules."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


def prepared(per_source: int = 0) -> Iterator[tuple[Page, Any, Any, Any]]:
    """Each corpus page (the first ``per_source`` of each source; 0: all) preprocessed as a
    job does by default (``--preprocess auto``): the page, its image, a task for it and
    its features as the auto engine measures them."""
    from ocrbatch.engines.routing import page_features
    from ocrbatch.model import PageTask
    from ocrbatch.preprocess import Preprocessor
    from ocrbatch.tools.images import load_image

    pre = Preprocessor("auto")
    seen: dict[str, int] = {}
    for p in pages():
        seen[p.source] = seen.get(p.source, 0) + 1
        if per_source and seen[p.source] > per_source:
            continue
        image, _ = pre.run(load_image(str(p.image), max_pixels=10**9))
        yield p, image, PageTask(1, 1, 1, str(p.image), 0, 1), page_features(image)


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
