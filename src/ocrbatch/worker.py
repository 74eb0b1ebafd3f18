"""The queue loop (``ocrbatch worker``): one coordinator serving every job of a queue,
a job session (session.py) per job it holds pages of.

Any number of workers, on any number of machines, share a queue through the store alone
(PostgreSQL for several machines). Each round: split the free slots of this worker's
executor among the queue's jobs (:func:`ocrbatch.share.share`: priority, then fair share,
per-job caps), claim that many pages of each job through its session, run them, and let
each session record its outcomes. Once a second each session reports progress and reads
its job's status: a job paused elsewhere has its in-flight pages stopped and put back
(finished pages stay done), a cancelled one has them stopped and dropped. The worker
that sees a job with no page left finishes it (exactly one does) and writes its files.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

import structlog

from .engines import engine_class
from .errors import OcrbatchError
from .executors import Executor
from .model import JobStatus, PageOutcome
from .resources import CpuMeter, MemorySampler
from .scheduler import Control
from .session import JobSession, owner_id
from .share import Demand, share
from .store import QueuedJob, Store

__all__ = ["QueueWorker"]

log = structlog.get_logger("ocrbatch.worker")


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
    ) -> None:
        self.store = store
        self.executor = executor
        self.queue = queue
        self.on_finished = on_finished
        self.control = control or Control()
        self.exit_when_idle = exit_when_idle
        self.owner = owner_id()
        self.finished: list[int] = []  # jobs this worker finished
        self._sessions: dict[int, JobSession] = {}
        self._skip: set[int] = set()  # jobs this worker cannot run
        self._memory = MemorySampler()
        self._cpu = CpuMeter()

    # -- the loop -------------------------------------------------------------------
    def run(self) -> list[int]:
        """Work the queue; returns the ids of the jobs this worker finished."""
        ex = self.executor
        ex.start(None)
        log.info("worker_started", queue=self.queue, workers=ex.workers, owner=self.owner)
        try:
            self._loop()
        finally:
            if ex.in_flight():
                ex.stop()
            ex.close()
            self._flush()
            for s in self._sessions.values():
                s.put_back(s.held_ids())
        return self.finished

    def _loop(self) -> None:
        ex = self.executor
        last_plan = time.monotonic()
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
                    self._flush()
                    if not self.store.queue_demand(self.queue):
                        return
            outcomes = ex.collect(0.2 if ex.in_flight() else 0.0)
            self._route(outcomes)
            now = time.monotonic()
            if any(s.flush_due(now) for s in self._sessions.values()):
                self._flush()
            self._tick(now)
            self._memory.maybe_sample(now)
            if not claimed and not outcomes and ex.in_flight() == 0:
                time.sleep(0.2)

    def _route(self, outcomes: list[PageOutcome]) -> None:
        for o in outcomes:
            for s in self._sessions.values():
                if s.holds(o.task_id):
                    s.collected(o)
                    break

    # -- claiming -------------------------------------------------------------------
    def _claim(self, room: int) -> tuple[int, bool]:
        """Claim up to ``room`` pages across the queue; (pages claimed, any job active)."""
        if any(s.buffered for s in self._sessions.values()):
            # Pages done here count as running in the store until recorded: recorded
            # first, the fair share is planned on what really runs.
            self._flush()
        queued = self.store.queue_demand(self.queue)
        for q in queued:
            if not q.unfinished and q.id not in self._sessions:
                self._finish(q.id)
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
        session = self._sessions.get(q.id) or self._open(q.id)
        if session is None:
            return 0
        if q.status == JobStatus.PENDING:
            self.store.start_queued_job(q.id, self.owner)
        tasks = session.claim(n, cap=q.max_workers)
        for t in tasks:
            self.executor.submit(t, session.spec)
        return len(tasks)

    def _open(self, job_id: int) -> JobSession | None:
        try:
            session = JobSession(
                self.store, self.store.get_job(job_id), self.owner, exclusive=False
            )
            engine_class(session.config.engine)  # a clear error now if this worker lacks it
        except OcrbatchError as exc:
            # E.g. its engine is not installed here: leave the job to other workers.
            log.error("job_skipped", job=job_id, error=exc.message)
            self._skip.add(job_id)
            return None
        self._sessions[job_id] = session
        return session

    # -- recording, control, finishing ----------------------------------------------
    def _flush(self) -> None:
        """Record every session's outcomes; the coordinator's CPU time is shared among
        the jobs in proportion to the pages it recorded for each. A job this worker no
        longer holds pages of is let go (finished when no page of it is left)."""
        cpu = self._cpu.take()
        weights = {j: s.buffered + 1 for j, s in self._sessions.items()}
        total = sum(weights.values())
        for job_id, s in list(self._sessions.items()):
            s.flush(cpu * weights[job_id] / total)
            if not s.held_ids():
                if self.store.unfinished_tasks(job_id) == 0:
                    self._finish(job_id, s)
                del self._sessions[job_id]

    def _tick(self, now: float) -> None:
        """Progress and heartbeat of the jobs held here; a pause or cancel asked from
        any process stops their pages here within a second."""
        for job_id, s in list(self._sessions.items()):
            status = s.tick(now)
            if status not in (JobStatus.PAUSED, JobStatus.CANCELLED):
                continue
            ids = s.held_ids()
            self.executor.cancel(ids)
            s.flush()  # the pages finished before the pause are kept
            if status == JobStatus.PAUSED:
                s.put_back(ids)
            else:
                s.cancel_held()
            log.info(str(status), job=job_id, stopped_pages=len(ids))
            del self._sessions[job_id]

    def _finish(self, job_id: int, session: JobSession | None = None) -> None:
        s = session or self._open(job_id)
        if s is None:
            return
        final = s.finish(s.figures(self.executor.workers, self._memory))
        if final is None:
            return  # another worker finished it first
        self.finished.append(job_id)
        log.info("job_finished", job=job_id, status=str(final))
        if self.on_finished is not None:
            try:
                self.on_finished(job_id)
            except OcrbatchError as exc:  # the job is done in the store; `export` redoes files
                log.error("export_failed", job=job_id, error=exc.message)
