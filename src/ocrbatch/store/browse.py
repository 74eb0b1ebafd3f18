"""Looking into one job page by page, as the REST service and its dashboard do: keyset
pages of documents, one document with its pages, low-confidence pages, failures and
the job's throughput over time. Every read is bounded (a job of a million documents is
never loaded whole)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Float, cast, func, select

from ..model import DocumentStatus, TaskStatus
from .common import StoreParts
from .tables import documents, tasks

__all__ = ["BrowseOps"]

_DOC_COLUMNS = (
    documents.c.id,
    documents.c.path,
    documents.c.rel_path,
    documents.c.status,
    documents.c.page_count,
    documents.c.error_message,
    documents.c.reused_from,
    documents.c.processing_time,
    documents.c.completed_at,
)


class BrowseOps(StoreParts):
    """Paged reads of :class:`~ocrbatch.store.Store` (a mixin over its engine)."""

    def document_page(
        self, job_id: int, *, after: int = 0, limit: int = 50, status: str | None = None
    ) -> list[dict[str, Any]]:
        """Up to ``limit`` documents of the job with id > ``after`` (keyset paging on
        the ``(job_id, id)`` index), optionally of one status."""
        q = (
            select(*_DOC_COLUMNS)
            .where(documents.c.job_id == job_id, documents.c.id > after)
            .order_by(documents.c.id)
            .limit(limit)
        )
        if status:
            q = q.where(documents.c.status == DocumentStatus(status))
        with self._read() as c:
            return [dict(r) for r in c.execute(q).mappings()]

    def document_with_pages(self, job_id: int, document_id: int) -> dict[str, Any] | None:
        """One document of the job with its page rows, as :meth:`iter_documents` gives."""
        with self._read() as c:
            doc = (
                c.execute(
                    select(documents).where(
                        documents.c.job_id == job_id, documents.c.id == document_id
                    )
                )
                .mappings()
                .first()
            )
            if doc is None:
                return None
            pages = c.execute(
                select(tasks).where(tasks.c.document_id == document_id).order_by(tasks.c.page_index)
            ).mappings()
            return {**dict(doc), "pages": [dict(p) for p in pages]}

    def low_confidence_pages(
        self, job_id: int, threshold: float, *, after: int = 0, limit: int = 50
    ) -> list[dict[str, Any]]:
        """Completed pages under ``threshold`` confidence (the review list), by task id."""
        return self._pages_of(
            job_id,
            (tasks.c.confidence, tasks.c.result_text, documents.c.rel_path),
            (tasks.c.status == TaskStatus.COMPLETED, tasks.c.confidence < threshold),
            after=after,
            limit=limit,
        )

    def failed_page_list(
        self, job_id: int, *, after: int = 0, limit: int = 50
    ) -> list[dict[str, Any]]:
        """Failed pages of the job with their one-line reasons, by task id."""
        return self._pages_of(
            job_id,
            (tasks.c.error_kind, tasks.c.error_message, tasks.c.attempt),
            (tasks.c.status == TaskStatus.FAILED,),
            after=after,
            limit=limit,
        )

    def _pages_of(
        self, job_id: int, columns: tuple[Any, ...], where: tuple[Any, ...], *, after: int,
        limit: int,
    ) -> list[dict[str, Any]]:  # fmt: skip
        """One page of a job's pages (by task id, after ``after``) with their document's
        path and the given columns."""
        q = (
            select(tasks.c.id, tasks.c.document_id, tasks.c.page_index, documents.c.path, *columns)
            .select_from(tasks.join(documents, documents.c.id == tasks.c.document_id))
            .where(tasks.c.job_id == job_id, tasks.c.id > after, *where)
            .order_by(tasks.c.id)
            .limit(limit)
        )
        with self._read() as c:
            return [dict(r) for r in c.execute(q).mappings()]

    def failures_by_reason(self, job_id: int, limit: int = 20) -> list[dict[str, Any]]:
        """The job's failed pages counted by kind and reason, most frequent first."""
        n = func.count().label("pages")
        q = (
            select(tasks.c.error_kind, tasks.c.error_message, n)
            .where(tasks.c.job_id == job_id, tasks.c.status == TaskStatus.FAILED)
            .group_by(tasks.c.error_kind, tasks.c.error_message)
            .order_by(n.desc())
            .limit(limit)
        )
        with self._read() as c:
            return [dict(r) for r in c.execute(q).mappings()]

    def throughput_series(self, job_id: int, buckets: int = 60) -> list[tuple[str, float]]:
        """Pages finished per second over the job's life, in up to ``buckets`` equal
        spans: (start of the span, pages/s). Counted in the database."""
        done = (
            (tasks.c.job_id == job_id)
            & tasks.c.status.in_([TaskStatus.COMPLETED, TaskStatus.FAILED])
            & tasks.c.completed_at.is_not(None)
        )
        epoch = self._epoch(tasks.c.completed_at)
        with self._read() as c:
            lo, hi = c.execute(select(func.min(epoch), func.max(epoch)).where(done)).one()
            if lo is None:
                return []
            lo, hi = float(lo), float(hi)
            width = max(1.0, (hi - lo) / buckets)
            n = max(1, min(buckets, int((hi - lo) / width) + 1))
            slot = func.floor((epoch - lo) / width)
            rows = dict(c.execute(select(slot, func.count()).where(done).group_by(slot)).all())
        start = dt.datetime.fromtimestamp(lo, dt.UTC)
        return [
            (
                (start + dt.timedelta(seconds=i * width)).isoformat(),
                round(int(rows.get(i, rows.get(float(i))) or 0) / width, 3),
            )
            for i in range(n)
        ]

    def _epoch(self, column: Any) -> Any:
        if self.dialect == "postgresql":
            return func.extract("epoch", column)
        # SQLite keeps 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC): julianday keeps the fraction.
        return (func.julianday(column) - 2440587.5) * cast(86400.0, Float)
