"""The coordinator's loop: claim -> execute -> record -> retry -> report.

The store is the truth: tasks are claimed from it in small batches, outcomes are
recorded in small batches, and the job's status in the store is re-read every second so
that a pause or cancel asked from another process takes effect. A signal (Ctrl-C,
SIGTERM) pauses: in-flight pages go back to pending and ``resume`` continues.
"""

from __future__ import annotations

import collections
import datetime as dt
import os
import signal
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

import psutil
import structlog

from .config import RunConfig
from .discovery import DiscoveryOptions, discover
from .errors import JobStateError, WorkerStartError
from .executors import Executor, available_cores
from .model import JobStatus, PageOutcome, PageTask
from .pipeline import WorkerSpec
from .progress import NullReporter, ProgressCounter, Reporter
from .retry import RetryPolicy
from .store import LEASE_SECONDS, JobInfo, Store

__all__ = [
    "Control",
    "Scheduler",
    "claim_job_for_run",
    "ingest",
    "install_signal_handlers",
    "owner_alive",
    "owner_id",
    "restore_signal_handlers",
]

log = structlog.get_logger("ocrbatch.scheduler")

_HEARTBEAT_STALE = 30.0


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
    return job.heartbeat_at is not None and time.time() - job.heartbeat_at < _HEARTBEAT_STALE


def ingest(
    store: Store,
    job: JobInfo,
    *,
    exclude: Sequence[tuple[str, str]] = (),
    batch_size: int = 500,
) -> int:
    """Discover the job's inputs into the store, a batch per transaction.

    Safe to repeat after a crash: paths the job already has are skipped, so every
    document is stored exactly once. ``exclude``: (real path, what) of ocrbatch's own
    files and folders, never inputs. Returns the number of documents added.
    """
    added = 0
    max_retries = int(job.max_retries if job.max_retries is not None else 3)
    cfg = RunConfig.model_validate(job.ocr_config)
    options = DiscoveryOptions(
        dpi=cfg.dpi,
        max_pixels=cfg.max_image_pixels,
        password=cfg.password,
        pages=cfg.pages,
        exclude=tuple(exclude),
    )
    for batch in discover(job.inputs, batch_size=batch_size, options=options):
        known = store.known_paths(job.id, [d.path for d in batch])
        fresh = [d for d in batch if d.path not in known]
        # The same file given twice (two overlapping roots) is one document.
        seen: set[str] = set()
        unique = [d for d in fresh if not (d.path in seen or seen.add(d.path))]  # type: ignore[func-returns-value]
        n, _ = store.add_documents(job.id, unique, max_retries=max_retries, reuse=not job.force)
        added += n
    store.update_job(job.id, discovery_done=True)
    return added


@dataclass
class Control:
    """What the loop has been asked to do; set from signal handlers or the store."""

    stop: str | None = None  # "pause" or "cancel"
    signals: int = 0

    def request(self, what: str) -> None:
        if self.stop is None:
            self.stop = what


@dataclass
class _Memory:
    """Resident memory of the coordinator and its workers, sampled every few seconds.

    CPU use is not sampled: it is computed exactly at the end from the CPU seconds the
    workers report per page and the coordinator's own, over the wall time of the run.
    """

    proc: psutil.Process = field(default_factory=psutil.Process)
    samples: int = 0
    total_mb: float = 0.0
    peak_mb: float = 0.0

    def sample(self) -> None:
        try:
            family = [self.proc, *self.proc.children(recursive=True)]
        except psutil.Error:
            return
        mb = 0.0
        for p in family:
            try:
                mb += p.memory_info().rss / 2**20
            except psutil.Error:
                continue
        self.samples += 1
        self.total_mb += mb
        self.peak_mb = max(self.peak_mb, mb)

    def figures(self, job: JobInfo) -> dict[str, float]:
        if not self.samples:
            return {}
        avg = self.total_mb / self.samples
        if job.memory_usage_avg is not None and job.run_seconds:  # earlier runs of the job
            avg = (avg + job.memory_usage_avg) / 2
        return {
            "memory_usage_avg": round(avg, 1),
            "memory_usage_peak": round(max(self.peak_mb, job.memory_usage_peak or 0), 1),
        }


class Scheduler:
    """Runs one job to completion (or pause/cancel) on one executor."""

    def __init__(
        self,
        store: Store,
        job_id: int,
        executor: Executor,
        config: RunConfig,
        *,
        reporter: Reporter | None = None,
        control: Control | None = None,
        flush_interval: float = 0.5,
    ) -> None:
        self.store = store
        self.job_id = job_id
        self.executor = executor
        self.config = config
        self.reporter = reporter or NullReporter()
        self.control = control or Control()
        self.flush_interval = flush_interval
        self.owner = owner_id()
        self.policy = RetryPolicy(
            max_retries=config.max_retries,
            backoff=config.retry_backoff,
            backoff_max=config.retry_backoff_max,
        )
        self._buffer: list[PageOutcome] = []
        self._memory = _Memory()
        self._in_flight: set[int] = set()  # task ids claimed and not yet collected
        self._renewed = time.monotonic()

    def run(self) -> JobStatus:
        """Drive the job until nothing is left to do, or a pause/cancel request."""
        store, job_id = self.store, self.job_id
        job = store.get_job(job_id)
        if job.owner != self.owner:  # claim_job_for_run first
            raise JobStateError(f"job {job_id} is not held by this process ({job.owner})")
        if job.status in (JobStatus.PAUSED, JobStatus.CANCELLED):  # asked during discovery
            self.control.request("pause" if job.status == JobStatus.PAUSED else "cancel")
        counter = ProgressCounter(
            job_id=job.id,
            name=job.name,
            total_pages=job.total_pages,
            total_documents=job.total_documents,
            done_pages=job.processed_pages,
            failed_pages=job.failed_pages,
            done_documents=job.processed_documents,
            failed_documents=job.failed_documents,
        )
        # A pool runs one engine per core; alone (sequential) the engine takes them all.
        threads = available_cores() if self.config.mode == "sequential" else 1
        spec = WorkerSpec.of(self.config, threads=threads)
        started = time.monotonic()
        cpu0 = time.process_time()
        self.executor.start(spec)
        status = JobStatus.RUNNING
        try:
            status = self._loop(counter)
        except WorkerStartError:
            status = JobStatus.FAILED  # no page can run here; the error goes up as is
            raise
        finally:
            in_flight = self.executor.stop() if status != JobStatus.COMPLETED else []
            self.executor.close()
            self._flush(counter)
            if in_flight or status != JobStatus.COMPLETED:
                store.requeue(job_id, owner=self.owner)
            self._memory.sample()
            elapsed = time.monotonic() - started
            job = store.get_job(job_id)
            cpu = job.cpu_seconds + (time.process_time() - cpu0)
            run_s = job.run_seconds + elapsed
            cores = psutil.cpu_count() or 1
            final = self._final_status(status, job)
            values: dict[str, Any] = dict(
                run_seconds=run_s,
                cpu_seconds=cpu,
                total_cost=cpu / 3600.0 * self.config.price_per_cpu_hour,
                owner=None,
                estimated_completion=None,
                cpu_usage_avg=round(100.0 * cpu / (run_s * cores), 2) if run_s else None,
                **self._memory.figures(job),
            )
            if final in (JobStatus.COMPLETED, JobStatus.FAILED):
                values["completed_at"] = dt.datetime.now(dt.UTC)
            if final == JobStatus.CANCELLED:
                store.cancel_pending(job_id)
                store.update_job(job_id, **values)
            elif store.job_status(job_id) == JobStatus.RUNNING:
                store.transition(job_id, final, **values)
            else:
                store.update_job(job_id, **values)
            self.reporter.close(counter.snapshot())
        return self._final_status(status, store.get_job(job_id))

    def _final_status(self, status: JobStatus, job: JobInfo) -> JobStatus:
        if status != JobStatus.COMPLETED:
            return status
        if job.total_documents and job.failed_documents == job.total_documents:
            return JobStatus.FAILED
        return JobStatus.COMPLETED

    def _loop(self, counter: ProgressCounter) -> JobStatus:
        store, ex, job_id = self.store, self.executor, self.job_id
        last_flush = last_check = last_sample = time.monotonic()
        ready: collections.deque[PageTask] = collections.deque()
        while True:
            if self.control.stop:
                return JobStatus.PAUSED if self.control.stop == "pause" else JobStatus.CANCELLED
            claimed = 0
            room = ex.capacity()
            if room and not ready:
                # Claim about half a second of work per transaction (at least two tasks per
                # worker): one claim per task would cost more than a tiny task itself.
                rate = counter.snapshot().pages_per_second
                want = max(room, ex.workers * 2, min(256, int(rate * 0.5)))
                ready.extend(store.claim(job_id, want, self.owner))
                self._in_flight.update(t.task_id for t in ready)
                claimed = len(ready)
            while room and ready:
                ex.submit(ready.popleft())
                room -= 1
            wait = 0.2 if ex.in_flight() else 0.0
            outcomes = ex.collect(wait)
            self._in_flight.difference_update(o.task_id for o in outcomes)
            self._buffer += outcomes
            now = time.monotonic()
            if len(self._buffer) >= self.config.batch_size or (
                self._buffer and now - last_flush >= self.flush_interval
            ):
                self._flush(counter)
                last_flush = now
            if now - last_check >= 1.0:
                last_check = now
                if not self._check_control(counter):
                    continue
            if now - last_sample >= 2.0:
                last_sample = now
                self._memory.sample()
            if ex.in_flight() == 0 and not ready and not claimed and not outcomes:
                self._flush(counter)
                if store.unfinished_tasks(job_id) == 0:
                    return JobStatus.COMPLETED
                # Only retries waiting out their backoff are left (or another coordinator
                # holds the rest): sleep until the next one is ready.
                ready_in = store.next_ready_in(job_id)
                time.sleep(min(0.5, ready_in if ready_in is not None else 0.5))

    def _flush(self, counter: ProgressCounter) -> None:
        if not self._buffer:
            return
        batch, self._buffer = self._buffer, []
        delta = self.store.record(self.job_id, batch, self.policy)
        counter.add(
            delta.pages_done, delta.pages_failed, delta.documents_done, delta.documents_failed
        )
        for o in batch:
            if not o.ok:
                log.info(
                    "page_failed",
                    task=o.task_id,
                    kind=o.error_kind,
                    error=o.error_message,
                    attempt=o.attempt,
                )
        self.reporter.update(counter.snapshot())

    def _check_control(self, counter: ProgressCounter) -> bool:
        """Heartbeat, ETA, and pause/cancel asked from another process."""
        snap = counter.snapshot()
        eta = (
            dt.datetime.now(dt.UTC) + dt.timedelta(seconds=snap.eta_seconds)
            if snap.eta_seconds is not None
            else None
        )
        self.store.update_job(
            self.job_id,
            heartbeat_at=time.time(),
            estimated_completion=eta,
            summary={"progress": snap.as_dict()},
        )
        if time.monotonic() - self._renewed >= LEASE_SECONDS / 6:
            self._renewed = time.monotonic()
            self.store.renew(list(self._in_flight), self.owner)
        status = self.store.job_status(self.job_id)
        if status == JobStatus.PAUSED:
            self.control.request("pause")
        elif status == JobStatus.CANCELLED:
            self.control.request("cancel")
        self.reporter.update(snap)
        return self.control.stop is None


def claim_job_for_run(store: Store, job: JobInfo) -> JobInfo:
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
        if store.take_job(job, me):
            break
        job = store.get_job(job.id)  # changed since it was read: look again
    else:
        raise JobStateError(f"job {job.id} keeps changing under us; try again")
    requeued = store.requeue(job.id)
    if requeued:
        log.info("requeued", job=job.id, tasks=requeued)
    store.recount(job.id)
    return store.get_job(job.id)


def install_signal_handlers(control: Control) -> dict[int, Any]:
    """Ctrl-C / SIGTERM pause the job; a second Ctrl-C stops at once (still recorded)."""

    def handler(signum: int, _frame: FrameType | None) -> None:
        control.signals += 1
        control.request("pause")
        if control.signals > 1:
            raise KeyboardInterrupt

    old: dict[int, Any] = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        old[sig] = signal.signal(sig, handler)
    return old


def restore_signal_handlers(old: dict[int, Any]) -> None:
    for sig, h in old.items():
        signal.signal(sig, h)
