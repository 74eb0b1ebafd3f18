"""The job queue in the store: what ``ocrbatch worker`` coordinators ask of it.

Several coordinators, on several machines, share one queue through the database alone:
each reads the demand of the queue's jobs (priority, tasks running, work ready), claims
pages with :meth:`Store.claim` (``FOR UPDATE SKIP LOCKED`` on PostgreSQL), renews the
leases of what it holds, and the one that records a job's last page finishes the job,
guarded so that exactly one does.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, and_, exists, func, or_, select, update

from ..model import JobStatus, TaskStatus
from .tables import jobs, tasks

__all__ = ["QueueOps", "QueuedJob"]

_ACTIVE = (JobStatus.PENDING, JobStatus.RUNNING)


@dataclass(frozen=True, slots=True)
class QueuedJob:
    """A job of the queue as the worker's planner sees it."""

    id: int
    priority: int
    status: JobStatus
    max_workers: int | None
    running: int  # tasks running now, on every coordinator
    ready: bool  # some task can be claimed now
    unfinished: bool  # some task is pending or running


class QueueOps:
    """Queue operations of :class:`~ocrbatch.store.Store` (a mixin over its engine)."""

    engine: Engine

    def queue_demand(self, queue: str) -> list[QueuedJob]:
        """Active jobs of ``queue`` (pending or running, discovery done), most urgent
        first: higher priority, then older. Cheap on a queue of millions of tasks: the
        running count and two EXISTS probes use the (job_id, status, ...) index."""
        now = time.time()
        t = tasks.alias("t")
        running = (
            select(func.count())
            .where(
                t.c.job_id == jobs.c.id,
                t.c.status == TaskStatus.RUNNING,
                t.c.lease_expires_at >= now,
            )
            .scalar_subquery()
        )
        ready = exists().where(
            t.c.job_id == jobs.c.id,
            or_(
                and_(t.c.status == TaskStatus.PENDING, t.c.available_at <= now),
                and_(t.c.status == TaskStatus.RUNNING, t.c.lease_expires_at < now),
            ),
        )
        unfinished = exists().where(
            t.c.job_id == jobs.c.id, t.c.status.in_([TaskStatus.PENDING, TaskStatus.RUNNING])
        )
        q = (
            select(
                jobs.c.id,
                jobs.c.priority,
                jobs.c.status,
                jobs.c.max_workers,
                running.label("running"),
                ready.label("ready"),
                unfinished.label("unfinished"),
            )
            .where(jobs.c.queue == queue, jobs.c.status.in_(_ACTIVE), jobs.c.discovery_done)
            .order_by(jobs.c.priority.desc(), jobs.c.id)
        )
        with self.engine.connect() as c:
            return [
                QueuedJob(
                    id=r.id,
                    priority=r.priority,
                    status=JobStatus(r.status),
                    max_workers=r.max_workers,
                    running=int(r.running or 0),
                    ready=bool(r.ready),
                    unfinished=bool(r.unfinished),
                )
                for r in c.execute(q)
            ]

    def job_statuses(self, job_ids: Sequence[int]) -> dict[int, JobStatus]:
        """Statuses of several jobs in one query (the worker's once-a-second check)."""
        if not job_ids:
            return {}
        with self.engine.connect() as c:
            rows = c.execute(select(jobs.c.id, jobs.c.status).where(jobs.c.id.in_(job_ids)))
            return {r[0]: JobStatus(r[1]) for r in rows}

    def start_job(self, job_id: int, owner: str, started_at: Any) -> bool:
        """pending -> running, once (the first coordinator to take the job)."""
        with self.engine.begin() as c:
            res = c.execute(
                update(jobs)
                .where(jobs.c.id == job_id, jobs.c.status == JobStatus.PENDING)
                .values(
                    status=JobStatus.RUNNING,
                    owner=owner,
                    heartbeat_at=time.time(),
                    started_at=func.coalesce(jobs.c.started_at, started_at),
                    completed_at=None,
                    updated_at=started_at,
                )
            )
            return bool(res.rowcount)

    def heartbeat(self, job_ids: Sequence[int], owner: str) -> None:
        """This coordinator is working these jobs (``status`` shows it as alive)."""
        if not job_ids:
            return
        with self.engine.begin() as c:
            c.execute(
                update(jobs)
                .where(jobs.c.id.in_(list(job_ids)), jobs.c.status == JobStatus.RUNNING)
                .values(owner=owner, heartbeat_at=time.time())
            )

    def finish_job(self, job_id: int, status: JobStatus, **values: Any) -> bool:
        """running/pending -> ``status`` exactly once, whichever coordinator asks first.

        Only the coordinator that gets True writes the job's result files.
        """
        with self.engine.begin() as c:
            res = c.execute(
                update(jobs)
                .where(jobs.c.id == job_id, jobs.c.status.in_(_ACTIVE))
                .values(status=status, owner=None, **values)
            )
            return bool(res.rowcount)
