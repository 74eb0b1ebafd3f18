"""One running job as one coordinator holds it: the per-job rules that every
coordinator (``ocrbatch run``'s scheduler, the queue worker, the service) shares.

A session turns the job's stored config into the worker spec and the retry policy,
claims pages, buffers outcomes and records them in batches (deciding each failed page's
retry with the policy), keeps the leases of its pages alive, reports progress and sees
a pause or cancel asked elsewhere, and lets go of the job at the end with the run's
figures. The loops that drive sessions (scheduler.py, worker.py) only decide what to
claim next and when.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import time
from collections.abc import Collection

import psutil
import structlog

from .config import RunConfig, validate
from .errors import JobStateError
from .model import JobStatus, PageOutcome, PageTask, finished_status
from .pipeline import WorkerSpec
from .progress import NullReporter, ProgressCounter, Reporter
from .resources import MemorySampler, cores
from .retry import RetryPolicy
from .store import LEASE_SECONDS, JobInfo, RecordDelta, RunFigures, Store

__all__ = [
    "JobSession",
    "claim_job_for_run",
    "job_config",
    "owner_alive",
    "owner_id",
]

log = structlog.get_logger("ocrbatch.session")

_HEARTBEAT_STALE = 30.0  # seconds without a heartbeat before another host's coordinator is dead


def owner_id() -> str:
    """host:pid of this coordinator."""
    return f"{socket.gethostname()}:{os.getpid()}"


def owner_alive(job: JobInfo) -> bool:
    """Is the coordinator recorded on a running job still alive?

    Same host: the process exists. Another host: its heartbeat is fresh.
    """
    if not job.owner:
        return False
    host, _, pid = job.owner.rpartition(":")
    if host == socket.gethostname() and pid.isdigit():
        return int(pid) != os.getpid() and psutil.pid_exists(int(pid))
    if job.heartbeat_at is None:
        return False
    return (dt.datetime.now(dt.UTC) - job.heartbeat_at).total_seconds() < _HEARTBEAT_STALE


def job_config(job: JobInfo) -> RunConfig:
    """The job's stored config, validated (a store written by a newer release fails
    here with one line, not deep inside a worker)."""
    cfg: RunConfig = validate(RunConfig, dict(job.ocr_config), f"job {job.id}")
    return cfg


def claim_job_for_run(store: Store, job: JobInfo, *, workers: int | None = None) -> JobInfo:
    """Make this process the job's one coordinator, or refuse: a job a live coordinator
    runs is refused; one whose coordinator died is adopted (its pages in flight go back
    to pending). Ownership is taken by one conditional update, so of two coordinators
    started at once on the same job exactly one runs it."""
    me = owner_id()
    for _ in range(5):
        if job.status == JobStatus.CANCELLED:
            raise JobStateError(f"job {job.id} was cancelled; it cannot be resumed")
        if job.status == JobStatus.RUNNING and job.owner != me and owner_alive(job):
            raise JobStateError(
                f"job {job.id} is being run by {job.owner}; pause or cancel it there first"
            )
        if store.take_job(job, me, workers=workers):
            break
        job = store.get_job(job.id)  # changed since it was read: look again
    else:
        raise JobStateError(f"job {job.id} keeps changing under us; try again")
    requeued = store.requeue(job.id)
    if requeued:
        log.info("requeued", job=job.id, tasks=requeued)
    store.recount(job.id)
    return store.get_job(job.id)


class JobSession:
    """A job held by this coordinator: claims, outcomes, leases, progress, the end.

    ``exclusive``: a foreground run, the job's only coordinator (progress is written
    only while it still owns the job); otherwise one of a queue's workers sharing it.
    """

    # Outcomes are recorded in one transaction every second, or at this many: few,
    # large transactions keep the coordinator's share of the cores small.
    FLUSH_SECONDS = 0.5
    FLUSH_OUTCOMES = 512
    TICK_SECONDS = 1.0  # progress, heartbeat, a pause/cancel asked elsewhere

    def __init__(
        self,
        store: Store,
        job: JobInfo,
        owner: str,
        *,
        exclusive: bool = True,
        threads: int = 1,
        reporter: Reporter | None = None,
    ) -> None:
        self.store = store
        self.job_id = job.id
        self.owner = owner
        self.exclusive = exclusive
        self.config = job_config(job)
        self.spec = WorkerSpec.of(self.config, threads=threads)
        self.policy = RetryPolicy.of(self.config)
        self.reporter = reporter or NullReporter()
        self.counter = ProgressCounter.of(job)
        self._held: dict[int, PageTask] = {}  # claimed, outcome not recorded yet
        self._buffer: list[PageOutcome] = []
        now = time.monotonic()
        self._flushed = self._ticked = self._renewed = now

    # -- pages ---------------------------------------------------------------------------
    def refresh(self) -> None:
        """Totals from the store again (after discovery added documents)."""
        self.counter.rebase(self.store.get_job(self.job_id))

    def claim(self, n: int, *, cap: int | None = None) -> list[PageTask]:
        """Up to ``n`` ready pages of the job, now held by this coordinator."""
        tasks = self.store.claim(self.job_id, n, self.owner, cap=cap)
        for t in tasks:
            self._held[t.task_id] = t
        return tasks

    def holds(self, task_id: int) -> bool:
        return task_id in self._held

    @property
    def buffered(self) -> int:
        """Outcomes waiting for the next flush."""
        return len(self._buffer)

    def collected(self, outcome: PageOutcome) -> None:
        """An outcome came back; it is recorded at the next flush."""
        if outcome.task_id in self._held:
            self._buffer.append(outcome)

    def flush_due(self, now: float) -> bool:
        return bool(self._buffer) and (
            len(self._buffer) >= self.FLUSH_OUTCOMES or now - self._flushed >= self.FLUSH_SECONDS
        )

    def flush(self, coordinator_cpu: float = 0.0) -> RecordDelta:
        """Record the buffered outcomes in one transaction; each failed page is retried
        or failed for good by the retry policy (decided here, recorded by the store)."""
        self._flushed = time.monotonic()
        batch, self._buffer = self._buffer, []
        if not batch and not coordinator_cpu:
            return RecordDelta()
        retry_in: dict[int, float | None] = {}
        for o in batch:
            task = self._held.pop(o.task_id)
            if not o.ok:
                decision = self.policy.decide(o.retryable, task.retry_count, task.max_retries)
                retry_in[o.task_id] = None if decision is None else decision.delay
                log.info(
                    "page_failed",
                    job=self.job_id,
                    task=o.task_id,
                    kind=o.error_kind,
                    error=o.error_message,
                    attempt=o.attempt,
                )
        delta = self.store.record(self.job_id, batch, retry_in, coordinator_cpu=coordinator_cpu)
        self.counter.add(
            delta.pages_done, delta.pages_failed, delta.documents_done, delta.documents_failed
        )
        self.reporter.update(self.counter.snapshot())
        return delta

    def put_back(self, task_ids: Collection[int]) -> int:
        """Pages this coordinator stopped (a pause, a stop) go back to pending, not
        counted as retries; returns how many were still running."""
        ids = [t for t in task_ids if self._held.pop(t, None) is not None]
        return self.store.requeue(self.job_id, ids, owner=self.owner) if ids else 0

    def drop(self, task_ids: Collection[int]) -> None:
        """Pages of a job cancelled elsewhere: forgotten here (the store cancels them)."""
        for t in task_ids:
            self._held.pop(t, None)

    def cancel_held(self) -> None:
        """This coordinator cancels the job's pages it still holds and the rest left."""
        self.drop(list(self._held))
        self.store.cancel_tasks(self.job_id, running=True)

    def held_ids(self) -> list[int]:
        """Pages held whose outcome is not buffered (in flight, or claimed and waiting)."""
        buffered = {o.task_id for o in self._buffer}
        return [t for t in self._held if t not in buffered]

    # -- keeping in touch ----------------------------------------------------------------
    def tick(self, now: float | None = None, *, force: bool = False) -> JobStatus | None:
        """Once a second: progress and heartbeat in the store, the leases of held pages
        renewed every ten seconds; returns the job's status as the store has it (a pause
        or cancel asked from any process), or None when it was not time yet."""
        now = time.monotonic() if now is None else now
        if not force and now - self._ticked < self.TICK_SECONDS:
            return None
        self._ticked = now
        snap = self.counter.snapshot()
        eta = (
            dt.datetime.now(dt.UTC) + dt.timedelta(seconds=snap.eta_seconds)
            if snap.eta_seconds is not None
            else None
        )
        status = self.store.record_progress(
            self.job_id, self.owner, snap.as_dict(), eta, shared=not self.exclusive
        )
        if now - self._renewed >= LEASE_SECONDS / 6:
            self._renewed = now
            self.store.renew(self.held_ids(), self.owner)
        self.reporter.update(snap)
        return status

    # -- letting go ----------------------------------------------------------------------
    def figures(
        self, workers: int | None, memory: MemorySampler | None, error: str | None = None
    ) -> RunFigures:
        """What this coordinator measured, for :meth:`end` or :meth:`finish`."""
        return RunFigures(
            workers=workers,
            cores=cores(),
            memory_avg_mb=memory.average_mb if memory is not None else None,
            memory_peak_mb=memory.peak_mb if memory is not None and memory.samples else None,
            price_per_cpu_hour=self.config.price_per_cpu_hour,
            error=error,
        )

    def end(self, status: JobStatus, figures: RunFigures) -> JobStatus:
        """A foreground run ends: a run that got through every page completes (or fails,
        when every document failed); a paused or cancelled one stays so. Returns the
        job's status."""
        if status == JobStatus.COMPLETED:
            job = self.store.get_job(self.job_id)
            status = finished_status(job.total_documents, job.failed_documents)
        final = self.store.end_run(self.job_id, self.owner, status, figures)
        self.reporter.close(self.counter.snapshot())
        return final

    def finish(self, figures: RunFigures) -> JobStatus | None:
        """A queue job with no page left: completed or failed, exactly once over all
        its workers. Returns the status when this worker finished it (it then writes
        the result files), else None."""
        job = self.store.get_job(self.job_id)
        status = finished_status(job.total_documents, job.failed_documents)
        return status if self.store.finish_job(self.job_id, status, figures) else None
