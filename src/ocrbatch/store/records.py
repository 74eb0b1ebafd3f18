"""Recording outcomes: one transaction per batch, each outcome at most once.

Invariants that make crash-safe resume work: a task is claimed (pending -> running,
attempt + 1) and recorded (running -> terminal, or back to pending for a retry) under
guards on its status and attempt, so an outcome is recorded at most once and a stale
outcome of an earlier attempt is ignored; a document becomes terminal exactly once, and
the job's counters move in the same transaction as the rows they count."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import (
    Connection,
    bindparam,
    case,
    func,
    select,
    update,
)

from ..model import (
    DocumentStatus,
    PageOutcome,
    TaskStatus,
)
from .common import StoreParts, refresh_progress, utcnow
from .tables import documents, jobs, tasks

__all__ = ["RecordDelta", "RecordOps"]

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RecordDelta:
    """What one batch of recorded outcomes changed (for the progress counter)."""

    pages_done: int = 0
    pages_failed: int = 0
    retried: int = 0
    documents_done: int = 0
    documents_failed: int = 0
    stale: int = 0


class RecordOps(StoreParts):
    """Outcome recording of :class:`~ocrbatch.store.Store` (a mixin over its engine)."""

    def record(
        self,
        job_id: int,
        outcomes: Sequence[PageOutcome],
        retry_in: Mapping[int, float | None],
        *,
        coordinator_cpu: float = 0.0,
    ) -> RecordDelta:
        """Record a batch of outcomes in one transaction. A failed page goes back to
        pending after ``retry_in[task_id]`` seconds, or fails for good where that is
        None (the retry policy decides, outside the store). ``coordinator_cpu``: CPU
        seconds the coordinator itself spent on the job since its last record.

        The rows are read under lock first (SQLite: the transaction holds the write lock
        from BEGIN IMMEDIATE; PostgreSQL: FOR UPDATE, documents before tasks, in id order),
        so an outcome whose task is no longer running that attempt is recognised as stale
        before anything is written, and the writes go out as a few executemany batches.
        """
        if not outcomes and not coordinator_cpu:
            return RecordDelta()
        now = utcnow()
        by_id = {o.task_id: o for o in outcomes}
        with self._begin() as c:
            cur_q = select(
                tasks.c.id,
                tasks.c.status,
                tasks.c.attempt,
                tasks.c.retry_count,
                tasks.c.document_id,
            ).where(tasks.c.id.in_(sorted(by_id)))
            if self.dialect == "postgresql" and by_id:
                doc_ids = select(tasks.c.document_id).where(tasks.c.id.in_(sorted(by_id)))
                c.execute(
                    select(documents.c.id)
                    .where(documents.c.id.in_(doc_ids))
                    .order_by(documents.c.id)
                    .with_for_update()
                )
                cur_q = cur_q.order_by(tasks.c.id).with_for_update()
            current = {r[0]: r for r in c.execute(cur_q)} if by_id else {}
            completed: list[dict[str, Any]] = []
            retry: list[dict[str, Any]] = []
            final_fail: list[dict[str, Any]] = []
            touched: set[int] = set()
            stale = 0
            for o in outcomes:
                row = current.get(o.task_id)
                if row is None or row[1] != TaskStatus.RUNNING or row[2] != o.attempt:
                    stale += 1
                    continue
                common = {
                    "_id": o.task_id,
                    "worker_id": o.worker_id,
                    "processing_time": o.processing_time,
                    "cpu_time": o.cpu_time,
                    "info": dict(o.info) or None,
                }
                if o.ok:
                    page = dict(o.page or {})
                    completed.append(
                        {
                            **common,
                            "result_text": page.get("text", ""),
                            "confidence": page.get("conf"),
                            "result_json": page,
                        }
                    )
                    touched.add(row[4])
                    continue
                err = {**common, "error_kind": o.error_kind, "error_message": o.error_message}
                delay = retry_in.get(o.task_id)
                if delay is not None:
                    retry.append(
                        {
                            **err,
                            "retry_count": row[3] + 1,
                            "available_at": now + dt.timedelta(seconds=delay),
                        }
                    )
                else:
                    final_fail.append(err)
                    touched.add(row[4])
            guard = (tasks.c.id == bindparam("_id"), tasks.c.status == TaskStatus.RUNNING)
            released = {"claimed_by": None, "lease_expires_at": None}
            if completed:
                c.execute(
                    update(tasks)
                    .where(*guard)
                    .values(
                        status=TaskStatus.COMPLETED,
                        completed_at=now,
                        error_kind=None,
                        error_message=None,
                        **released,
                    ),
                    completed,
                )
            if retry:
                c.execute(
                    update(tasks).where(*guard).values(status=TaskStatus.PENDING, **released), retry
                )
            if final_fail:
                c.execute(
                    update(tasks)
                    .where(*guard)
                    .values(status=TaskStatus.FAILED, completed_at=now, **released),
                    final_fail,
                )
            done, failed = len(completed) + len(final_fail), len(final_fail)
            docs_done, docs_failed = self._finish_documents(c, touched, now)
            c.execute(
                update(jobs)
                .where(jobs.c.id == job_id)
                .values(
                    processed_pages=jobs.c.processed_pages + done,
                    successful_pages=jobs.c.successful_pages + (done - failed),
                    failed_pages=jobs.c.failed_pages + failed,
                    processed_documents=jobs.c.processed_documents + docs_done,
                    successful_documents=jobs.c.successful_documents + (docs_done - docs_failed),
                    failed_documents=jobs.c.failed_documents + docs_failed,
                    cpu_seconds=jobs.c.cpu_seconds
                    + sum(o.cpu_time for o in outcomes)
                    + coordinator_cpu,
                    updated_at=now,
                )
            )
            refresh_progress(c, job_id)
        return RecordDelta(done, failed, len(retry), docs_done, docs_failed, stale)

    @staticmethod
    def _finish_documents(c: Connection, doc_ids: set[int], now: dt.datetime) -> tuple[int, int]:
        """Mark documents whose pages are all terminal; each exactly once.

        Runs inside ``record``'s transaction, which holds the document rows (PostgreSQL:
        FOR UPDATE; SQLite: the write lock), so the pending check below cannot race.
        """
        if not doc_ids:
            return 0, 0
        agg = c.execute(
            select(
                tasks.c.document_id,
                func.count(),
                func.sum(case((tasks.c.status == TaskStatus.COMPLETED, 1), else_=0)),
                func.sum(case((tasks.c.status == TaskStatus.FAILED, 1), else_=0)),
                func.sum(func.coalesce(tasks.c.processing_time, 0.0)),
            )
            .select_from(tasks.join(documents, tasks.c.document_id == documents.c.id))
            .where(
                tasks.c.document_id.in_(sorted(doc_ids)),
                documents.c.status == DocumentStatus.PENDING,
            )
            .group_by(tasks.c.document_id)
        ).all()
        rows: list[dict[str, Any]] = []
        failed = 0
        for doc_id, total, ok, bad, ptime in agg:
            if ok + bad < total:
                continue
            error = None
            if bad:
                failed += 1
                errs = c.execute(
                    select(tasks.c.page_index, tasks.c.error_message)
                    .where(tasks.c.document_id == doc_id, tasks.c.status == TaskStatus.FAILED)
                    .order_by(tasks.c.page_index)
                    .limit(3)
                ).all()
                error = (
                    errs[0][1]
                    if total == 1
                    else "; ".join(f"page {p + 1}: {m}" for p, m in errs)
                    + (f" (and {bad - 3} more pages)" if bad > 3 else "")
                )
            rows.append(
                {
                    "_id": doc_id,
                    "_status": DocumentStatus.FAILED if bad else DocumentStatus.COMPLETED,
                    "_error": error,
                    "_ptime": float(ptime or 0),
                }
            )
        if rows:
            c.execute(
                update(documents)
                .where(
                    documents.c.id == bindparam("_id"), documents.c.status == DocumentStatus.PENDING
                )
                .values(
                    status=bindparam("_status"),
                    error_message=bindparam("_error"),
                    completed_at=now,
                    processing_time=bindparam("_ptime"),
                ),
                rows,
            )
        return len(rows), failed
