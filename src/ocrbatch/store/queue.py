"""The job queue in the store: what ``ocrbatch worker`` coordinators ask of it.

Several coordinators, on several machines, share one queue through the database alone:
each reads the demand of the queue's jobs (priority, tasks running, work ready), claims
pages with :meth:`Store.claim` (``FOR UPDATE SKIP LOCKED`` on PostgreSQL), renews the
leases of what it holds, and the one that records a job's last page finishes the job
(:meth:`Store.finish_job`, guarded so that exactly one does).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, exists, func, or_, select

from ..model import JobStatus, TaskStatus
from .common import StoreParts, utcnow
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


class QueueOps(StoreParts):
    """Queue operations of :class:`~ocrbatch.store.Store` (a mixin over its engine)."""

    def queue_demand(self, queue: str) -> list[QueuedJob]:
        """Active jobs of ``queue`` (pending or running, discovery done), most urgent
        first: higher priority, then older. Cheap on a queue of millions of tasks: the
        running count and two EXISTS probes use the (job_id, status, ...) index."""
        now = utcnow()
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
        with self._read() as c:
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
