"""summary.json: what a person reads first after a run."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

__all__ = ["build_summary"]


def build_summary(
    job: Mapping[str, Any], stats: Mapping[str, Any], price_per_cpu_hour: float, workers: int | None
) -> dict[str, Any]:
    """Totals, success rate, time per document, throughput, CPU/memory and cost.

    Throughput counts the pages this job OCRed itself (results reused from an earlier
    job by content hash are counted separately) over the wall time the job ran.
    """
    run_s = float(job["run_seconds"] or 0.0)
    ocr_pages = int(stats["ocr_pages"])
    ocr_docs = int(stats["ocr_documents"])
    processed = job["processed_documents"]
    cpu_s = float(job["cpu_seconds"] or 0.0)

    def rate(n: float) -> float | None:
        return round(n / run_s, 4) if run_s > 0 else None

    def iso(v: Any) -> Any:
        return v.isoformat() if isinstance(v, dt.datetime) else v

    return {
        "job": job["id"],
        "name": job["name"],
        "status": job["status"],
        "documents": {
            "total": job["total_documents"],
            "processed": processed,
            "completed": job["successful_documents"],
            "failed": job["failed_documents"],
            "reused": job["reused_documents"],
        },
        "pages": {
            "total": job["total_pages"],
            "processed": job["processed_pages"],
            "completed": job["successful_pages"],
            "failed": job["failed_pages"],
            "ocr": ocr_pages,
        },
        "success_rate": round(job["successful_documents"] / processed, 4) if processed else None,
        "total_time_s": round(run_s, 3),
        "time_per_document_s": round(run_s / ocr_docs, 4) if ocr_docs else None,
        "processing_time_per_page_s": (
            round(stats["processing_seconds"] / ocr_pages, 4) if ocr_pages else None
        ),
        "throughput_pages_per_s": rate(ocr_pages),
        "throughput_documents_per_s": rate(ocr_docs),
        "workers": workers,
        "retries": stats["retries"],
        "failures_by_kind": stats["failures_by_kind"],
        "mean_confidence": (
            round(stats["mean_confidence"], 4) if stats["mean_confidence"] is not None else None
        ),
        "cpu_seconds": round(cpu_s, 3),
        "cpu_usage_avg_percent": job["cpu_usage_avg"],
        "memory_usage_avg_mb": job["memory_usage_avg"],
        "memory_usage_peak_mb": job["memory_usage_peak"],
        "cost": {
            "price_per_cpu_hour": price_per_cpu_hour,
            "total": round(cpu_s / 3600.0 * price_per_cpu_hour, 6),
            "per_1000_pages": (
                round(cpu_s / 3600.0 * price_per_cpu_hour / ocr_pages * 1000, 6)
                if ocr_pages
                else None
            ),
        },
        "output": job["output_path"],
        "created_at": iso(job["created_at"]),
        "started_at": iso(job["started_at"]),
        "completed_at": iso(job["completed_at"]),
    }
