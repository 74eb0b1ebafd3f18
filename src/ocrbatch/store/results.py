"""Reading results back: documents with their pages (streamed), failures, figures."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterator
from typing import Any

from sqlalchemy import (
    func,
    select,
)

from ..model import (
    DocumentStatus,
    TaskStatus,
)
from .common import StoreParts
from .tables import documents, tasks

__all__ = ["ResultOps"]


class ResultOps(StoreParts):
    """Result reading of :class:`~ocrbatch.store.Store` (a mixin over its engine)."""

    def iter_documents(
        self, job_id: int, chunk: int = 500, *, ids: Collection[int] | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every document of the job (or those of ``ids``), in discovery order, with its
        pages: streamed in chunks so that exporting a million documents holds one chunk
        in memory."""
        last = 0
        wanted = sorted(ids) if ids is not None else None
        while True:
            q = select(documents).where(documents.c.job_id == job_id, documents.c.id > last)
            if wanted is not None:
                some = [i for i in wanted if i > last][:chunk]
                if not some:
                    return
                q = q.where(documents.c.id.in_(some))
            with self._read() as c:
                docs = c.execute(q.order_by(documents.c.id).limit(chunk)).mappings().all()
                if not docs:
                    return
                found = [d["id"] for d in docs]
                pages: dict[int, list[dict[str, Any]]] = {i: [] for i in found}
                for t in c.execute(
                    select(tasks)
                    .where(tasks.c.document_id.in_(found))
                    .order_by(tasks.c.document_id, tasks.c.page_index)
                ).mappings():
                    pages[t["document_id"]].append(dict(t))
            for d in docs:
                yield {**dict(d), "pages": pages[d["id"]]}
            last = found[-1]

    def finished_since(self, job_id: int, since: dt.datetime) -> list[int]:
        """Ids of the job's documents that ended (completed, failed or reused) at or
        after ``since``: a standing job writes their files as they come."""
        q = (
            select(documents.c.id)
            .where(documents.c.job_id == job_id, documents.c.completed_at >= since)
            .order_by(documents.c.id)
        )
        with self._read() as c:
            return [int(r[0]) for r in c.execute(q)]

    def iter_failed_pages(self, job_id: int) -> Iterator[dict[str, Any]]:
        """Failed pages and documents that failed before having pages (errors.jsonl)."""
        with self._read() as c:
            q = (
                select(
                    documents.c.path,
                    documents.c.error_message.label("doc_error"),
                    tasks.c.page_index,
                    tasks.c.error_kind,
                    tasks.c.error_message,
                    tasks.c.attempt,
                    tasks.c.retry_count,
                    tasks.c.worker_id,
                )
                .select_from(documents.outerjoin(tasks, tasks.c.document_id == documents.c.id))
                .where(
                    documents.c.job_id == job_id,
                    documents.c.status == DocumentStatus.FAILED,
                    (tasks.c.id.is_(None)) | (tasks.c.status == TaskStatus.FAILED),
                )
                .order_by(documents.c.id, tasks.c.page_index)
            )
            for r in c.execute(q.execution_options(yield_per=1000)).mappings():
                yield dict(r)

    def page_stats(self, job_id: int) -> dict[str, Any]:
        """Aggregates over the pages this job OCRed itself (not reused ones), for the summary."""
        own = documents.c.reused_from.is_(None)
        j = tasks.join(documents, tasks.c.document_id == documents.c.id)
        with self._read() as c:
            r = c.execute(
                select(
                    func.count(),
                    func.sum(tasks.c.processing_time),
                    func.avg(tasks.c.confidence),
                )
                .select_from(j)
                .where(
                    tasks.c.job_id == job_id,
                    own,
                    tasks.c.status.in_([TaskStatus.COMPLETED, TaskStatus.FAILED]),
                )
            ).one()
            retries = c.execute(
                select(func.sum(tasks.c.retry_count))
                .select_from(j)
                .where(tasks.c.job_id == job_id, own)
            ).scalar()
            docs = c.execute(
                select(func.count()).where(
                    documents.c.job_id == job_id,
                    own,
                    documents.c.page_count > 0,
                    documents.c.status.in_([DocumentStatus.COMPLETED, DocumentStatus.FAILED]),
                )
            ).scalar()
            kinds: dict[Any, int] = dict(
                c.execute(
                    select(tasks.c.error_kind, func.count())
                    .where(tasks.c.job_id == job_id, tasks.c.status == TaskStatus.FAILED)
                    .group_by(tasks.c.error_kind)
                ).all()
            )
        return {
            "ocr_pages": r[0] or 0,
            "ocr_documents": int(docs or 0),
            "processing_seconds": float(r[1] or 0.0),
            "mean_confidence": None if r[2] is None else float(r[2]),
            "retries": int(retries or 0),
            "failures_by_kind": {str(k): v for k, v in kinds.items()},
        }
