"""Figures for monitoring (the service's /metrics), read from the store so that they
cover every coordinator on the queue, not only the one serving the scrape."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import case, func, select

from ..model import JobStatus, TaskStatus
from .common import StoreParts, utcnow
from .tables import jobs, tasks

__all__ = ["GaugeOps"]


class GaugeOps(StoreParts):
    """Monitoring reads of :class:`~ocrbatch.store.Store` (a mixin over its engine)."""

    def job_figures(self) -> list[dict[str, Any]]:
        """Every job's status, queue, priority, engine, run time and page counters."""
        q = select(
            jobs.c.id,
            jobs.c.status,
            jobs.c.queue,
            jobs.c.priority,
            jobs.c.ocr_config,
            jobs.c.run_seconds,
            jobs.c.total_pages,
            jobs.c.processed_pages,
            jobs.c.failed_pages,
        ).order_by(jobs.c.id)
        out = []
        with self._read() as c:
            for r in c.execute(q).mappings():
                d = dict(r)
                cfg = d.pop("ocr_config") or {}
                d["engine"] = str(cfg.get("engine", "tesseract")) if isinstance(cfg, dict) else "?"
                out.append(d)
        return out

    def page_figures(self, job_id: int, bounds: Sequence[float]) -> dict[str, Any]:
        """One job's pages: done and failed by kind, retries, and how many completed
        pages took at most each of ``bounds`` seconds (a cumulative histogram)."""
        done = tasks.c.status == TaskStatus.COMPLETED
        with self._read() as c:
            kinds = c.execute(
                select(tasks.c.status, tasks.c.error_kind, func.count())
                .where(
                    tasks.c.job_id == job_id,
                    tasks.c.status.in_([TaskStatus.COMPLETED, TaskStatus.FAILED]),
                )
                .group_by(tasks.c.status, tasks.c.error_kind)
            ).all()
            cols = [
                func.sum(case((done & (tasks.c.processing_time <= b), 1), else_=0)) for b in bounds
            ]
            row = c.execute(
                select(
                    func.count(),
                    func.sum(tasks.c.processing_time),
                    func.sum(tasks.c.retry_count),
                    *cols,
                ).where(tasks.c.job_id == job_id, done | (tasks.c.retry_count > 0))
            ).one()
            count_done = c.execute(
                select(func.count()).where(tasks.c.job_id == job_id, done)
            ).scalar_one()
        return {
            "completed": int(count_done),
            "failed": {str(k or "unknown"): int(n) for s, k, n in kinds if s == TaskStatus.FAILED},
            "latency_sum": float(row[1] or 0.0),
            "retries": int(row[2] or 0),
            "latency_buckets": [int(v or 0) for v in row[3:]],
        }

    def running_pages(self, owner: str | None = None) -> int:
        """Pages running now under a live lease, over every coordinator (or held by
        ``owner``, host:pid)."""
        active = select(jobs.c.id).where(jobs.c.status == JobStatus.RUNNING)
        q = select(func.count()).where(
            tasks.c.job_id.in_(active.scalar_subquery()),
            tasks.c.status == TaskStatus.RUNNING,
            tasks.c.lease_expires_at >= utcnow(),
        )
        if owner is not None:
            q = q.where(tasks.c.claimed_by == owner)
        with self._read() as c:
            return int(c.execute(q).scalar_one())
