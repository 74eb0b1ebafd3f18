"""The queue worker (``ocrbatch worker``): one coordinator serving every job of a queue.

Any number of workers, on any number of machines, share a queue through the store alone
(PostgreSQL for several machines). Each loop: split the free slots of this worker's
executor among the queue's jobs (:func:`ocrbatch.share.share`: priority, then fair share,
per-job caps), claim that many pages of each job, run them, record the outcomes per job.
Once a second it re-reads the status of the jobs it holds pages of: a job paused
elsewhere has its in-flight pages stopped and put back (finished pages stay done), a
cancelled one has them stopped and dropped. The worker that sees a job with no page
left finishes it (exactly one does) and writes its result files.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import structlog

from .config import RunConfig, validate
from .engines import engine_class
from .errors import OcrbatchError
from .executors import Executor
from .model import JobStatus, PageOutcome
from .pipeline import WorkerSpec
from .retry import RetryPolicy
from .scheduler import Control, owner_id
from .share import Demand, share
from .store import LEASE_SECONDS, QueuedJob, Store

__all__ = ["QueueWorker"]

log = structlog.get_logger("ocrbatch.worker")


@dataclass
class _Job:
    """What this worker holds of one job: its engine spec, policy, pages in flight."""

    id: int
    config: RunConfig
    spec: WorkerSpec
    policy: RetryPolicy
    in_flight: set[int] = field(default_factory=set)
    buffer: list[PageOutcome] = field(default_factory=list)


class QueueWorker:
    """Processes the jobs of ``queue`` until stopped (or, with ``exit_when_idle``, until
    the queue has no active job). ``on_finished(job_id)`` writes a finished job's files."""

    def __init__(
        self,
        store: Store,
        executor: Executor,
        queue: str = "default",
        *,
        on_finished: Callable[[int], None] | None = None,
        control: Control | None = None,
        exit_when_idle: bool = False,
        flush_interval: float = 0.5,
        check_interval: float = 1.0,
    ) -> None:
        self.store = store
        self.executor = executor
        self.queue = queue
        self.on_finished = on_finished
        self.control = control or Control()
        self.exit_when_idle = exit_when_idle
        self.flush_interval = flush_interval
        self.check_interval = check_interval
        self.owner = owner_id()
        self.finished: list[int] = []  # jobs this worker finished
        self._jobs: dict[int, _Job] = {}
        self._task_job: dict[int, _Job] = {}
        self._skip: set[int] = set()  # jobs this worker cannot run

    # -- the loop -------------------------------------------------------------------
    def run(self) -> list[int]:
        """Work the queue; returns the ids of the jobs this worker finished."""
        ex = self.executor
        ex.start(None)
        log.info("worker_started", queue=self.queue, workers=ex.workers, owner=self.owner)
        try:
            self._loop()
        finally:
            stopped = ex.stop() if ex.in_flight() else []
            ex.close()
            self._flush_all()
            for job in self._jobs.values():
                mine = [t for t in stopped if t in job.in_flight]
                if mine:
                    self.store.requeue(job.id, mine, owner=self.owner)
        return self.finished

    def _loop(self) -> None:
        ex = self.executor
        last_flush = last_check = last_renew = last_plan = time.monotonic()
        idle_plan = False
        while not self.control.stop:
            now = time.monotonic()
            room = ex.capacity()
            claimed = 0
            if (
                room
                and (room * 2 >= ex.workers or ex.in_flight() == 0)
                and not (idle_plan and now - last_plan < 0.5)
            ):
                claimed, active = self._claim(room)
                last_plan, idle_plan = now, claimed == 0
                if not active and self.exit_when_idle and ex.in_flight() == 0:
                    self._flush_all()
                    if not self.store.queue_demand(self.queue):
                        return
            outcomes = ex.collect(0.2 if ex.in_flight() else 0.0)
            for o in outcomes:
                job = self._task_job.pop(o.task_id, None)
                if job is not None:
                    job.in_flight.discard(o.task_id)
                    job.buffer.append(o)
            now = time.monotonic()
            if now - last_flush >= self.flush_interval or any(
                len(j.buffer) >= j.config.batch_size for j in self._jobs.values()
            ):
                self._flush_all()
                last_flush = now
            if now - last_check >= self.check_interval:
                last_check = now
                self._check()
            if now - last_renew >= LEASE_SECONDS / 6:
                last_renew = now
                self.store.renew(list(self._task_job), self.owner)
            if not claimed and not outcomes and ex.in_flight() == 0:
                time.sleep(0.2)

    # -- claiming -------------------------------------------------------------------
    def _claim(self, room: int) -> tuple[int, bool]:
        """Claim up to ``room`` pages across the queue; (pages claimed, any job active)."""
        queued = self.store.queue_demand(self.queue)
        for q in queued:
            if not q.unfinished and q.id not in self._jobs:
                self._finish_id(q.id)
        ready = {q.id: q for q in queued if q.ready}
        claimed = 0
        # A job that yields fewer pages than planned (its last ones, or another worker
        # was faster) drops out, and its slots go to the others in the next round.
        for _ in range(3):
            demands = [Demand(q.id, q.priority, q.running, q.max_workers) for q in ready.values()]
            plan = share(room - claimed, demands)
            if not plan:
                break
            for job_id, n in plan.items():
                q = ready[job_id]
                got = self._claim_job(q, n)
                claimed += got
                if got < n:
                    del ready[job_id]
                else:
                    ready[job_id] = replace(q, running=q.running + got)
            if claimed >= room or not ready:
                break
        return claimed, bool(queued)

    def _claim_job(self, q: QueuedJob, n: int) -> int:
        if q.id in self._skip:
            return 0
        job = self._jobs.get(q.id)
        if job is None:
            try:
                job = self._open(q.id)
            except OcrbatchError as exc:
                # E.g. its engine is not installed here: leave the job to other workers.
                log.error("job_skipped", job=q.id, error=exc.message)
                self._skip.add(q.id)
                return 0
        if q.status == JobStatus.PENDING:
            self.store.start_job(q.id, self.owner, dt.datetime.now(dt.UTC))
        tasks = self.store.claim(q.id, n, self.owner, cap=q.max_workers)
        for t in tasks:
            self.executor.submit(t, job.spec)
            job.in_flight.add(t.task_id)
            self._task_job[t.task_id] = job
        return len(tasks)

    def _open(self, job_id: int) -> _Job:
        info = self.store.get_job(job_id)
        cfg: RunConfig = validate(RunConfig, dict(info.ocr_config), f"job {job_id}")
        engine_class(cfg.engine)  # a clear error now if this worker lacks the engine
        job = _Job(
            id=job_id,
            config=cfg,
            spec=WorkerSpec.of(cfg),
            policy=RetryPolicy(
                max_retries=cfg.max_retries,
                backoff=cfg.retry_backoff,
                backoff_max=cfg.retry_backoff_max,
            ),
        )
        self._jobs[job_id] = job
        return job

    # -- recording, control, finishing ----------------------------------------------
    def _flush(self, job: _Job) -> None:
        if not job.buffer:
            return
        batch, job.buffer = job.buffer, []
        self.store.record(job.id, batch, job.policy)
        for o in batch:
            if not o.ok:
                log.info("page_failed", job=job.id, task=o.task_id, error=o.error_message)

    def _flush_all(self) -> None:
        for job in list(self._jobs.values()):
            self._flush(job)
            if not job.in_flight and job.id not in self._task_job:
                if self.store.unfinished_tasks(job.id) == 0:
                    self._finish_id(job.id)
                del self._jobs[job.id]

    def _check(self) -> None:
        """Pause/cancel asked from any process; heartbeat of the jobs held here."""
        held = [j.id for j in self._jobs.values() if j.in_flight]
        statuses = self.store.job_statuses(held)
        for job_id, status in statuses.items():
            if status not in (JobStatus.PAUSED, JobStatus.CANCELLED):
                continue
            job = self._jobs[job_id]
            ids = list(job.in_flight)
            self.executor.cancel(ids)
            for t in ids:
                self._task_job.pop(t, None)
            job.in_flight.clear()
            self._flush(job)  # the pages finished before the pause are kept
            if status == JobStatus.PAUSED:
                self.store.requeue(job_id, ids, owner=self.owner)
            else:
                self.store.cancel_pending(job_id)
            log.info(str(status), job=job_id, stopped_pages=len(ids))
        self.store.heartbeat([i for i in held if statuses.get(i) == JobStatus.RUNNING], self.owner)

    def _finish_id(self, job_id: int) -> None:
        info = self.store.get_job(job_id)
        if info.status not in (JobStatus.PENDING, JobStatus.RUNNING):
            return
        failed = bool(info.total_documents) and info.failed_documents == info.total_documents
        final = JobStatus.FAILED if failed else JobStatus.COMPLETED
        now = dt.datetime.now(dt.UTC)
        cfg: RunConfig = validate(RunConfig, dict(info.ocr_config), f"job {job_id}")
        values = dict(
            completed_at=now,
            updated_at=now,
            estimated_completion=None,
            run_seconds=(now - (info.started_at or now)).total_seconds(),
            total_cost=info.cpu_seconds / 3600.0 * cfg.price_per_cpu_hour,
        )
        if not self.store.finish_job(job_id, final, **values):
            return  # another worker finished it first
        self.finished.append(job_id)
        log.info("job_finished", job=job_id, status=str(final))
        if self.on_finished is not None:
            try:
                self.on_finished(job_id)
            except Exception as exc:  # the job is done in the store; `export` redoes files
                log.error("export_failed", job=job_id, error=" ".join(str(exc).split())[:300])
