"""The public shape of a document result (one line of results.jsonl)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

from ..accuracy import Score, pooled

__all__ = ["PAGE_SEPARATOR", "Outputs", "Raw", "RecordExporter", "document_record", "error_records"]

Raw = Mapping[str, Any]  # a stored document with its page rows
Outputs = Callable[[Raw], dict[str, str]]  # where a document's own files went (format -> path)


class RecordExporter(Protocol):
    """Writes one file with a record per document into ``out``; returns its path.
    ``outputs(doc)`` says where the document's per-document files went."""

    def __call__(self, docs: Iterable[Raw], out: Path, outputs: Outputs) -> Path: ...


PAGE_SEPARATOR = "\f"  # between the pages of a document's text, as Tesseract's CLI does


def _iso(v: Any) -> Any:
    return v.isoformat() if isinstance(v, dt.datetime) else v


def document_record(raw: Mapping[str, Any], *, layout: bool = False) -> dict[str, Any]:
    """A stored document with its page rows -> the exported record.

    ``layout`` adds each page's blocks/lines/words with boxes (the json format).
    ``accuracy`` (CER, WER, bag-of-words error and their counts) is there where ground
    truth was found, per page and pooled per document; ``review`` marks a page whose
    confidence is under --min-confidence.
    """
    pages = raw["pages"]
    page_results = []
    scores_of_document: list[Score] = []
    for p in pages:
        result = p.get("result_json") or {}
        entry: dict[str, Any] = {
            "page": p["page_index"] + 1,
            "status": p["status"],
            "text": p.get("result_text"),
            "confidence": p.get("confidence"),
            "processing_time": _r(p.get("processing_time")),
            "cpu_time": _r(p.get("cpu_time")),
            "attempts": p.get("attempt"),
            "retries": p.get("retry_count"),
            "worker": p.get("worker_id"),
            "error_kind": p.get("error_kind") if p["status"] != "completed" else None,
            "error": p.get("error_message") if p["status"] != "completed" else None,
            "width": result.get("width"),
            "height": result.get("height"),
        }
        info = dict(p.get("info") or {})
        entry["review"] = bool(info.pop("review", False))
        entry["accuracy"] = info.pop("accuracy", None)
        doc_score = info.pop("accuracy_document", None)
        if doc_score is not None:
            scores_of_document.append(Score.from_dict(doc_score))
        elif entry["accuracy"] is not None:
            scores_of_document.append(Score.from_dict(entry["accuracy"]))
        if info:
            entry["info"] = info
        if layout:
            entry["blocks"] = result.get("blocks", [])
        page_results.append(entry)
    ok = [p for p in pages if p["status"] == "completed"]
    confs = [p["confidence"] for p in ok if p.get("confidence") is not None]
    return {
        "path": raw["path"],
        "rel_path": raw["rel_path"],
        "status": raw["status"],
        "pages": len(pages),
        "text": PAGE_SEPARATOR.join(p.get("result_text") or "" for p in pages),
        "confidence": round(sum(confs) / len(confs), 4) if confs else None,
        "processing_time": _r(raw.get("processing_time")),
        "error": raw.get("error_message"),
        "file_size": raw.get("file_size"),
        "content_hash": raw.get("content_hash"),
        "reused": raw.get("reused_from") is not None,
        "completed_at": _iso(raw.get("completed_at")),
        "accuracy": pooled(scores_of_document).to_dict() if scores_of_document else None,
        "review_pages": [p["page"] for p in page_results if p["review"]],
        "page_results": page_results,
    }


def error_records(rows: Iterable[Mapping[str, Any]]) -> Iterator[dict[str, Any]]:
    """Failed pages (and documents that failed before having pages) for errors.jsonl."""
    for r in rows:
        if r.get("page_index") is None:
            yield {
                "path": r["path"],
                "page": None,
                "kind": "input",
                "error": r["doc_error"],
                "attempts": 0,
            }
        else:
            yield {
                "path": r["path"],
                "page": r["page_index"] + 1,
                "kind": r["error_kind"],
                "error": r["error_message"],
                "attempts": r["attempt"],
                "retries": r["retry_count"],
                "worker": r["worker_id"],
            }


def _r(v: Any) -> Any:
    return round(v, 4) if isinstance(v, float) else v
