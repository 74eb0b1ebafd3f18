"""Page tasks in the store: claims with leases, requeue, reset, recount, cancel."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    Connection,
    bindparam,
    delete,
    func,
    select,
    update,
)

from ..model import (
    DocumentStatus,
    JobStatus,
    PageTask,
    TaskStatus,
)
from .common import LEASE_SECONDS, StoreParts, refresh_progress, utcnow
from .tables import EPOCH, documents, jobs, tasks

__all__ = ["TaskOps", "cancel_tasks"]


class TaskOps(StoreParts):
    """Task rows of :class:`~ocrbatch.store.Store` (a mixin over its engine)."""

    def claim(
        self,
        job_id: int,
        limit: int,
        owner: str,
        lease: float = LEASE_SECONDS,
        *,
        cap: int | None = None,
    ) -> list[PageTask]:
        """Atomically move up to ``limit`` ready tasks to running, biggest pages first.

        Ready: pending and past its retry backoff; a task running under a lease that ran
        out (its coordinator died) is put back to pending first. One UPDATE ... WHERE id
        IN (SELECT ... FOR UPDATE SKIP LOCKED) RETURNING: on PostgreSQL several
        coordinators never claim the same task;
        on SQLite the statement holds the write lock. With ``cap``, the job never has more
        than ``cap`` tasks running across all coordinators: the claim first updates the
        job's row, which locks it (PostgreSQL) or takes the write lock (SQLite), so that
        the count of running tasks cannot race another coordinator's claim.
        """
        if limit <= 0:
            return []
        now = utcnow()
        with self._begin() as c:
            # A job paused or cancelled (from any process) gives no more pages, even to a
            # coordinator that has not seen it yet.
            status = c.execute(select(jobs.c.status).where(jobs.c.id == job_id)).scalar()
            if status not in (JobStatus.PENDING, JobStatus.RUNNING):
                return []
            # Tasks whose coordinator died go back to pending first (their running rows
            # are few), so that the pick below reads only pending rows, in the order of
            # the claim-order index: a claim costs the same on ten pages or ten million.
            c.execute(
                update(tasks)
                .where(
                    tasks.c.job_id == job_id,
                    tasks.c.status == TaskStatus.RUNNING,
                    tasks.c.lease_expires_at < now,
                )
                .values(status=TaskStatus.PENDING, claimed_by=None, available_at=EPOCH)
            )
            if cap is not None:
                c.execute(update(jobs).where(jobs.c.id == job_id).values(heartbeat_at=now))
                running = c.execute(
                    select(func.count()).where(
                        tasks.c.job_id == job_id, tasks.c.status == TaskStatus.RUNNING
                    )
                ).scalar_one()
                limit = min(limit, cap - int(running))
                if limit <= 0:
                    return []
            ready = (tasks.c.status == TaskStatus.PENDING) & (tasks.c.available_at <= now)
            pick = (
                select(tasks.c.id)
                .where(tasks.c.job_id == job_id, ready)
                .order_by(tasks.c.weight.desc(), tasks.c.id)
                .limit(limit)
            )
            if self.dialect == "postgresql":
                pick = pick.with_for_update(skip_locked=True)
            stmt = (
                update(tasks)
                .where(tasks.c.id.in_(pick.scalar_subquery()), ready)
                .values(
                    status=TaskStatus.RUNNING,
                    attempt=tasks.c.attempt + 1,
                    claimed_by=owner,
                    started_at=now,
                    lease_expires_at=now + dt.timedelta(seconds=lease),
                )
                .returning(
                    tasks.c.id,
                    tasks.c.document_id,
                    tasks.c.file_path,
                    tasks.c.page_index,
                    tasks.c.attempt,
                    tasks.c.weight,
                    tasks.c.retry_count,
                    tasks.c.max_retries,
                )
            )
            rows = c.execute(stmt).all()
            doc_ids = list({r[1] for r in rows})
            docs = (
                {
                    d[0]: (d[1], d[2], d[3])
                    for d in c.execute(
                        select(
                            documents.c.id,
                            documents.c.content_hash,
                            documents.c.page_count,
                            documents.c.source_stamp,
                        ).where(documents.c.id.in_(doc_ids))
                    )
                }
                if doc_ids
                else {}
            )
        rows.sort(key=lambda r: (-r[5], r[0]))  # RETURNING order is unspecified
        none = (None, 1, None)
        return [
            PageTask(
                task_id=r[0],
                job_id=job_id,
                document_id=r[1],
                path=r[2],
                page_index=r[3],
                attempt=r[4],
                page_count=int(docs.get(r[1], none)[1] or 1),
                content_hash=docs.get(r[1], none)[0],
                retry_count=r[6],
                max_retries=r[7],
                stamp=docs.get(r[1], none)[2],
            )
            for r in rows
        ]

    def renew(self, task_ids: Sequence[int], owner: str, lease: float = LEASE_SECONDS) -> int:
        """Extend the leases of this coordinator's in-flight tasks."""
        if not task_ids:
            return 0
        with self._begin() as c:
            res = c.execute(
                update(tasks)
                .where(
                    tasks.c.id.in_(list(task_ids)),
                    tasks.c.status == TaskStatus.RUNNING,
                    tasks.c.claimed_by == owner,
                )
                .values(lease_expires_at=utcnow() + dt.timedelta(seconds=lease))
            )
            return int(res.rowcount or 0)

    def next_ready_in(self, job_id: int) -> float | None:
        """Seconds until the next pending task is ready (backoff), None if none pending."""
        with self._read() as c:
            t = c.execute(
                select(func.min(tasks.c.available_at)).where(
                    tasks.c.job_id == job_id, tasks.c.status == TaskStatus.PENDING
                )
            ).scalar()
        return None if t is None else max(0.0, (t - utcnow()).total_seconds())

    def unfinished_tasks(self, job_id: int) -> int:
        with self._read() as c:
            return int(
                c.execute(
                    select(func.count()).where(
                        tasks.c.job_id == job_id,
                        tasks.c.status.in_([TaskStatus.PENDING, TaskStatus.RUNNING]),
                    )
                ).scalar_one()
            )

    def requeue(
        self, job_id: int, task_ids: Sequence[int] | None = None, *, owner: str | None = None
    ) -> int:
        """Put running tasks back to pending (all of the job's, or just ``task_ids``; only
        those claimed by ``owner`` if given, so that other coordinators keep theirs).

        The attempt they were on is not counted as a retry: a pause or a crash of the
        coordinator is not the page's fault.
        """
        stmt = (
            update(tasks)
            .where(tasks.c.job_id == job_id, tasks.c.status == TaskStatus.RUNNING)
            .values(
                status=TaskStatus.PENDING,
                claimed_by=None,
                lease_expires_at=None,
                available_at=EPOCH,
            )
        )
        if owner is not None:
            stmt = stmt.where(tasks.c.claimed_by == owner)
        if task_ids is not None:
            if not task_ids:
                return 0
            stmt = stmt.where(tasks.c.id.in_(list(task_ids)))
        with self._begin() as c:
            return int(c.execute(stmt).rowcount or 0)

    def reset_failed(self, job_id: int) -> int:
        """retry-failed: failed pages back to pending with fresh retries; counters recounted.

        Documents that failed at discovery (no pages: unreadable, encrypted without the
        password...) are dropped and the job's discovery is opened again, so the run
        that follows describes them anew (the documents it already has are skipped).
        Returns the pages and documents given another chance.
        """
        with self._begin() as c:
            undiscovered = select(documents.c.id).where(
                documents.c.job_id == job_id,
                documents.c.status == DocumentStatus.FAILED,
                ~select(tasks.c.id).where(tasks.c.document_id == documents.c.id).exists(),
            )
            redo = c.execute(
                delete(documents).where(documents.c.id.in_(undiscovered.scalar_subquery()))
            ).rowcount
            if redo:
                c.execute(update(jobs).where(jobs.c.id == job_id).values(discovery_done=False))
            n = c.execute(
                update(tasks)
                .where(tasks.c.job_id == job_id, tasks.c.status == TaskStatus.FAILED)
                .values(
                    status=TaskStatus.PENDING, retry_count=0, available_at=EPOCH, completed_at=None
                )
            ).rowcount
            doc_ids = select(tasks.c.document_id).where(
                tasks.c.job_id == job_id, tasks.c.status == TaskStatus.PENDING
            )
            c.execute(
                update(documents)
                .where(documents.c.id.in_(doc_ids), documents.c.status == DocumentStatus.FAILED)
                .values(status=DocumentStatus.PENDING, error_message=None, completed_at=None)
            )
            self._recount(c, job_id)
        return int(n or 0) + int(redo or 0)

    def recount(self, job_id: int) -> None:
        """Recompute a job's counters from its rows (after a crash or a reset)."""
        with self._begin() as c:
            self._recount(c, job_id)

    def _recount(self, c: Connection, job_id: int) -> None:
        def by_status(table: Any) -> dict[str, int]:
            q = select(table.c.status, func.count()).where(table.c.job_id == job_id)
            rows = c.execute(q.group_by(table.c.status)).all()
            return {str(status): int(n) for status, n in rows}

        t, d = by_status(tasks), by_status(documents)
        reused = c.execute(
            select(func.count()).where(
                documents.c.job_id == job_id, documents.c.reused_from.is_not(None)
            )
        ).scalar()
        pages_ok, pages_bad = t.get(TaskStatus.COMPLETED, 0), t.get(TaskStatus.FAILED, 0)
        docs_ok, docs_bad = d.get(DocumentStatus.COMPLETED, 0), d.get(DocumentStatus.FAILED, 0)
        c.execute(
            update(jobs)
            .where(jobs.c.id == job_id)
            .values(
                total_pages=sum(t.values()),
                processed_pages=pages_ok + pages_bad,
                successful_pages=pages_ok,
                failed_pages=pages_bad,
                total_documents=sum(d.values()),
                processed_documents=docs_ok + docs_bad,
                successful_documents=docs_ok,
                failed_documents=docs_bad,
                reused_documents=reused,
                updated_at=utcnow(),
            )
        )
        refresh_progress(c, job_id)

    def cancel_tasks(self, job_id: int, *, running: bool = True) -> None:
        """The pending (and, with ``running``, running) pages and unfinished documents of
        a cancelled job become cancelled (a coordinator that held running ones drops
        them)."""
        with self._begin() as c:
            cancel_tasks(c, job_id, running=running)

    def update_task_info(self, updates: Sequence[tuple[int, dict[str, Any] | None]]) -> None:
        """Replace the ``info`` of tasks (accuracy scores, review flags), in one transaction."""
        if not updates:
            return
        stmt = (
            update(tasks).where(tasks.c.id == bindparam("tid")).values(info=bindparam("new_info"))
        )
        with self._begin() as c:
            c.execute(stmt, [{"tid": t, "new_info": info} for t, info in updates])


def cancel_tasks(c: Connection, job_id: int, *, running: bool) -> None:
    """:meth:`TaskOps.cancel_tasks` in the caller's transaction."""
    statuses = [TaskStatus.PENDING, TaskStatus.RUNNING] if running else [TaskStatus.PENDING]
    c.execute(
        update(tasks)
        .where(tasks.c.job_id == job_id, tasks.c.status.in_(statuses))
        .values(status=TaskStatus.CANCELLED, claimed_by=None)
    )
    c.execute(
        update(documents)
        .where(documents.c.job_id == job_id, documents.c.status == DocumentStatus.PENDING)
        .values(status=DocumentStatus.CANCELLED)
    )
