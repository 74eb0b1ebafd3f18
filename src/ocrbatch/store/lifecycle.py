"""A job's status over its life, as the coordinators and the faces (CLI, API) change
it: each change is one named operation, one transaction, guarded by what the job must
be at that instant (so two processes racing on one job cannot both win).

One rule for run time holds in every operation: when a job stops running (paused,
finished, cancelled), the time since it started running is added to ``run_seconds``; a
pause does not count.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, select, update

from ..errors import JobNotFoundError, JobStateError
from ..model import JobStatus, check_job_transition
from .common import StoreParts, utcnow
from .jobs import JobInfo
from .tables import jobs
from .webhooks import queue_event

__all__ = ["LifecycleOps", "RunFigures"]

_ACTIVE = (JobStatus.PENDING, JobStatus.RUNNING)
_ENDED = (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)


@dataclass(frozen=True, slots=True)
class RunFigures:
    """What a coordinator measured while it held a job, recorded when it lets go."""

    workers: int | None = None  # its worker slots
    cores: int = 1  # cores of its machine (for the CPU average)
    memory_avg_mb: float | None = None
    memory_peak_mb: float | None = None
    price_per_cpu_hour: float = 0.0
    error: str | None = None  # why the job failed as a whole


def _running(owner: str, now: dt.datetime) -> dict[str, Any]:
    """A job starts running under ``owner`` (its run time counts from now)."""
    return {
        "status": JobStatus.RUNNING,
        "owner": owner,
        "heartbeat_at": now,
        "started_at": func.coalesce(jobs.c.started_at, now),
        "running_since": now,
        "completed_at": None,
        "error": None,
        "updated_at": now,
    }


class LifecycleOps(StoreParts):
    """Status changes of :class:`~ocrbatch.store.Store` (a mixin over its engine)."""

    # -- taking a job --------------------------------------------------------------------
    def take_job(self, job: JobInfo, owner: str, *, workers: int | None = None) -> bool:
        """Make ``owner`` the one coordinator running ``job``, if the job is still as it
        was read (same status, same owner): one conditional UPDATE in one transaction,
        so of two coordinators that read the job at once exactly one gets True."""
        old = JobStatus(job.status)
        if not check_job_transition(old, JobStatus.RUNNING):
            raise JobStateError(f"job {job.id} is {old}; it cannot run")
        now = utcnow()
        same_owner = jobs.c.owner.is_(None) if job.owner is None else jobs.c.owner == job.owner
        values = _running(owner, now)
        if workers is not None:
            values["workers"] = workers
        if old == JobStatus.RUNNING and job.running_since and job.heartbeat_at:
            # Adopted after its coordinator died: it ran until its last sign of life.
            lived = (job.heartbeat_at - job.running_since).total_seconds()
            values["run_seconds"] = jobs.c.run_seconds + max(0.0, lived)
        with self._begin() as c:
            res = c.execute(
                update(jobs)
                .where(jobs.c.id == job.id, jobs.c.status == old, same_owner)
                .values(**values)
            )
            return bool(res.rowcount)

    def start_queued_job(self, job_id: int, owner: str) -> bool:
        """pending -> running, once (the first queue worker to take the job; several
        workers then share it)."""
        with self._begin() as c:
            res = c.execute(
                update(jobs)
                .where(jobs.c.id == job_id, jobs.c.status == JobStatus.PENDING)
                .values(**_running(owner, utcnow()))
            )
            return bool(res.rowcount)

    # -- while it runs -------------------------------------------------------------------
    def record_progress(
        self,
        job_id: int,
        owner: str,
        progress: dict[str, Any],
        eta: dt.datetime | None,
        *,
        shared: bool = False,
    ) -> JobStatus:
        """A coordinator's heartbeat with the live figures (`status` shows them); returns
        the job's status now, so a pause or cancel asked elsewhere is seen. The job's
        only coordinator writes while it still owns the job; a queue worker (``shared``)
        while the job runs, marking itself as the one alive."""
        now = utcnow()
        values: dict[str, Any] = {"heartbeat_at": now, "progress": progress}
        values["estimated_completion"] = eta
        if shared:
            where = jobs.c.status == JobStatus.RUNNING
            values["owner"] = owner
        else:
            where = jobs.c.owner == owner
        with self._begin() as c:
            c.execute(update(jobs).where(jobs.c.id == job_id, where).values(**values))
            return JobStatus(
                c.execute(select(jobs.c.status).where(jobs.c.id == job_id)).scalar_one()
            )

    def heartbeat(self, job_ids: Sequence[int], owner: str) -> None:
        """A queue worker is working these jobs (``status`` shows them alive)."""
        if not job_ids:
            return
        with self._begin() as c:
            c.execute(
                update(jobs)
                .where(jobs.c.id.in_(list(job_ids)), jobs.c.status == JobStatus.RUNNING)
                .values(owner=owner, heartbeat_at=utcnow())
            )

    # -- asked from anywhere ---------------------------------------------------------------
    def pause_job(self, job_id: int) -> None:
        """running/pending -> paused; its coordinators stop within about a second and
        put their pages in flight back (finished pages stay done)."""
        self._change(job_id, JobStatus.PAUSED, only_from=_ACTIVE)

    def release_job(self, job_id: int) -> None:
        """Back to pending, for a queue's workers to take (a paused, interrupted or
        finished-with-pages-left queue job)."""
        self._change(job_id, JobStatus.PENDING, owner=None)

    def cancel_job(self, job_id: int, *, running_too: bool) -> None:
        """-> cancelled, with its pending pages (and, with ``running_too``, those still
        marked running: nobody holds them); otherwise the coordinators holding them stop
        them and cancel them within a second."""
        from .tasks import cancel_tasks

        with self._begin() as c:
            self._change_in(c, job_id, JobStatus.CANCELLED, only_from=None)
            cancel_tasks(c, job_id, running=running_too)

    # -- letting go ----------------------------------------------------------------------
    def end_run(self, job_id: int, owner: str, status: JobStatus, figures: RunFigures) -> JobStatus:
        """A foreground coordinator lets go of its job: the job becomes ``status``
        unless it was paused or cancelled meanwhile (then that stays); the run's
        figures are added. Returns the job's status."""
        now = utcnow()
        with self._begin() as c:
            row = self._row(c, job_id)
            if row["owner"] not in (owner, None):
                return JobStatus(row["status"])  # adopted by another coordinator since
            current = JobStatus(row["status"])
            final = status if current == JobStatus.RUNNING else current
            values = self._figures(row, figures, now, leaving=current == JobStatus.RUNNING)
            values.update(status=final, owner=None, estimated_completion=None)
            if final in _ENDED:
                values["completed_at"] = now
            c.execute(update(jobs).where(jobs.c.id == job_id).values(**values))
            if final != current:
                queue_event(c, job_id, final)
            return final

    def finish_job(self, job_id: int, status: JobStatus, figures: RunFigures) -> bool:
        """pending/running -> ``status`` (completed or failed) exactly once, whichever
        coordinator asks first; only the one that gets True writes the result files."""
        now = utcnow()
        with self._begin() as c:
            row = self._row(c, job_id)
            if JobStatus(row["status"]) not in _ACTIVE:
                return False
            values = self._figures(row, figures, now, leaving=row["status"] == JobStatus.RUNNING)
            res = c.execute(
                update(jobs)
                .where(jobs.c.id == job_id, jobs.c.status.in_(_ACTIVE))
                .values(
                    status=status, owner=None, estimated_completion=None, completed_at=now, **values
                )
            )
            if res.rowcount:
                queue_event(c, job_id, status)
            return bool(res.rowcount)

    # -- the rules -----------------------------------------------------------------------
    def _row(self, c: Connection, job_id: int) -> Any:
        q = select(jobs).where(jobs.c.id == job_id)
        if self.dialect == "postgresql":
            q = q.with_for_update()
        row = c.execute(q).mappings().first()
        if row is None:
            raise JobNotFoundError(f"no job {job_id}")
        return row

    @staticmethod
    def _figures(row: Any, f: RunFigures, now: dt.datetime, *, leaving: bool) -> dict[str, Any]:
        run_s = float(row["run_seconds"] or 0.0)
        if leaving and row["running_since"] is not None:
            run_s += max(0.0, (now - row["running_since"]).total_seconds())
        cpu = float(row["cpu_seconds"] or 0.0)
        values: dict[str, Any] = {
            "run_seconds": run_s,
            "running_since": None if leaving else row["running_since"],
            "total_cost": cpu / 3600.0 * f.price_per_cpu_hour,
            "cpu_usage_avg": round(100.0 * cpu / (run_s * f.cores), 2) if run_s else None,
            "updated_at": now,
        }
        if f.workers is not None:
            values["workers"] = f.workers
        if f.memory_avg_mb is not None:
            old = row["memory_usage_avg"]
            values["memory_usage_avg"] = round(
                f.memory_avg_mb if old is None else (old + f.memory_avg_mb) / 2, 1
            )
        if f.memory_peak_mb is not None:
            values["memory_usage_peak"] = round(
                max(f.memory_peak_mb, row["memory_usage_peak"] or 0.0), 1
            )
        if f.error is not None:
            values["error"] = f.error
        return values

    def _change(self, job_id: int, new: JobStatus, **kw: Any) -> None:
        with self._begin() as c:
            self._change_in(c, job_id, new, **kw)

    def _change_in(
        self,
        c: Connection,
        job_id: int,
        new: JobStatus,
        *,
        only_from: Sequence[JobStatus] | None = None,
        **values: Any,
    ) -> None:
        row = self._row(c, job_id)
        old = JobStatus(row["status"])
        if not check_job_transition(old, new) or (only_from is not None and old not in only_from):
            raise JobStateError(f"job {job_id} is {old}; it cannot become {new}")
        now = utcnow()
        if old == JobStatus.RUNNING and new != JobStatus.RUNNING:
            values.update(self._figures(row, RunFigures(), now, leaving=True))
            values.pop("total_cost")  # no price here: the coordinator's end records it
            values.pop("cpu_usage_avg")
        values.update(status=new, updated_at=now)
        res = c.execute(
            update(jobs).where(jobs.c.id == job_id, jobs.c.status == old).values(**values)
        )
        if res.rowcount and new != old:
            queue_event(c, job_id, new)
