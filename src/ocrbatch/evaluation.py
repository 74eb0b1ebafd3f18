"""Accuracy validation of a job against ground truth, and pages flagged for review.

Streams the job's documents from the store, scores each one that has ground truth
(:mod:`ocrbatch.groundtruth`), records the scores in each page's ``info`` (so results
files and ``ocrbatch eval`` read them back), and pools them per source folder and per
job. Pages whose confidence is under ``min_confidence`` are flagged ``review``.
Re-running it (``ocrbatch eval`` with other rules) replaces what an earlier run recorded.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .accuracy import Score
from .groundtruth import GroundTruthRules, find_ground_truth, read_ground_truth, score_document
from .store import Store

__all__ = ["Evaluation", "FolderScore", "evaluate_job"]

REVIEW_LIST_MAX = 1000  # pages listed by name in the summary (all are flagged in results)
_KEYS = ("accuracy", "accuracy_document", "review")


@dataclass
class FolderScore:
    """Pooled scores of the documents of one source folder (or of the whole job)."""

    documents: int = 0
    pages: int = 0
    score: Score = field(default_factory=lambda: Score(0, 0, 0, 0, 0))
    confidence_sum: float = 0.0
    confidence_pages: int = 0
    review: int = 0
    # Pages per engine route, for engines that route pages (``--engine auto``).
    routes: dict[str, int] = field(default_factory=dict)

    def add(self, pages: int, s: Score) -> None:
        self.documents += 1
        self.pages += pages
        self.score = self.score + s

    def as_dict(self) -> dict[str, Any]:
        conf = self.confidence_sum / self.confidence_pages if self.confidence_pages else None
        return {
            "documents": self.documents,
            "pages": self.pages,
            **(self.score.to_dict() if self.documents else {}),
            "mean_confidence": round(conf, 4) if conf is not None else None,
            "review_pages": self.review,
            **({"routes": dict(sorted(self.routes.items()))} if self.routes else {}),
        }


@dataclass
class Evaluation:
    """What :func:`evaluate_job` found: scores per folder and for the job, review pages."""

    rules: GroundTruthRules
    min_confidence: float | None
    job: FolderScore = field(default_factory=FolderScore)
    folders: dict[str, FolderScore] = field(default_factory=dict)
    review: list[dict[str, Any]] = field(default_factory=list)
    review_count: int = 0

    def accuracy_summary(self) -> dict[str, Any] | None:
        """The ``accuracy`` section of summary.json (None when no ground truth was found)."""
        if not self.job.documents:
            return None
        return {
            **self.job.as_dict(),
            "normalization": {
                "casefold": self.rules.casefold,
                "ignore_chars": self.rules.ignore_chars,
            },
            "ground_truth": self.rules.folder,
            "by_folder": {k: v.as_dict() for k, v in sorted(self.folders.items())},
        }

    def review_summary(self) -> dict[str, Any] | None:
        """The ``review`` section of summary.json (None without --min-confidence)."""
        if self.min_confidence is None:
            return None
        return {
            "min_confidence": self.min_confidence,
            "pages": self.review_count,
            "listed": self.review,
            "truncated": self.review_count > len(self.review),
        }


def folder_of(rel_path: str) -> str:
    """The source folder a document is reported under (its parent in the input tree)."""
    parent = os.path.dirname(rel_path.replace(os.sep, "/"))
    return parent or "."


def evaluate_job(
    store: Store, job_id: int, rules: GroundTruthRules, min_confidence: float | None
) -> Evaluation:
    """Score every document of the job that has ground truth; flag low-confidence pages;
    record both in the pages' ``info``."""
    ev = Evaluation(rules, min_confidence)
    pending: list[tuple[int, dict[str, Any] | None]] = []
    for doc in store.iter_documents(job_id):
        _evaluate_document(doc, ev, pending)
        if len(pending) >= 500:
            store.update_task_info(pending)
            pending = []
    store.update_task_info(pending)
    return ev


def _evaluate_document(
    doc: Mapping[str, Any], ev: Evaluation, pending: list[tuple[int, dict[str, Any] | None]]
) -> None:
    pages = doc["pages"]
    if not pages:
        return
    folder = ev.folders.setdefault(folder_of(doc["rel_path"]), FolderScore())
    infos = {
        p["id"]: {k: v for k, v in (p.get("info") or {}).items() if k not in _KEYS} for p in pages
    }
    for p in pages:
        conf = p.get("confidence")
        if p["status"] != "completed" or conf is None:
            continue
        if ev.min_confidence is not None and conf < ev.min_confidence:
            infos[p["id"]]["review"] = True
            ev.review_count += 1
            folder.review += 1
            ev.job.review += 1
            if len(ev.review) < REVIEW_LIST_MAX:
                ev.review.append(
                    {"path": doc["path"], "page": p["page_index"] + 1, "confidence": conf}
                )
    gt_path = find_ground_truth(doc["path"], doc["rel_path"], ev.rules)
    reference = read_ground_truth(gt_path) if gt_path is not None else None
    done = all(p["status"] in ("completed", "failed") for p in pages)
    if reference is not None and done:
        texts = [
            (p["page_index"], p.get("result_text") if p["status"] == "completed" else None)
            for p in pages
        ]
        scores = score_document(texts, reference, ev.rules)
        by_index = {p["page_index"]: p["id"] for p in pages}
        for index, s in scores.pages.items():
            infos[by_index[index]]["accuracy"] = s.to_dict()
        if not scores.pages:
            infos[pages[0]["id"]]["accuracy_document"] = scores.document.to_dict()
        # Confidence over the same pages as the scores, so a row reads as one.
        confs = [p["confidence"] for p in pages if p["status"] == "completed"]
        confs = [c for c in confs if c is not None]
        # ... and the routes of an engine that routes pages (--engine auto).
        routes = [(p.get("info") or {}).get("route") for p in pages if p["status"] == "completed"]
        for f in (folder, ev.job):
            f.add(len(pages), scores.document)
            f.confidence_sum += sum(confs)
            f.confidence_pages += len(confs)
            for route in routes:
                if isinstance(route, str):
                    f.routes[route] = f.routes.get(route, 0) + 1
    for p in pages:
        new = infos[p["id"]] or None
        if new != (p.get("info") or None):
            pending.append((p["id"], new))
