"""The local loop (``ocrbatch run`` and ``resume``): one job session driven over one
executor: claim -> submit -> collect -> record, until no page is left or a pause or
cancel (Ctrl-C, SIGTERM, or asked from another process through the store).

The per-job rules live in the session (session.py); this loop decides only what to
claim next and when. The pool starts before discovery, so its workers load their
engines while the inputs are still being found. A standing job (``ocrbatch watch``)
has a feed: it adds documents as they arrive and writes the files of those done, and
the loop never ends for want of pages, only when stopped.
"""

from __future__ import annotations

import collections
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import Any, Protocol

from .errors import WorkerStartError, reason
from .executors import Executor
from .model import JobStatus, PageTask
from .resources import CpuMeter, MemorySampler
from .session import JobSession

__all__ = ["Control", "Feed", "Scheduler", "install_signal_handlers", "restore_signal_handlers"]


class Feed(Protocol):
    """What keeps a standing job going (see :mod:`ocrbatch.standing`)."""

    def poll(self, now: float) -> bool:
        """Called on every turn of the loop (it decides itself when to act): add the
        documents that arrived, write the files of those done; True when documents
        were added."""
        ...


@dataclass
class Control:
    """What the loop has been asked to do; set from signal handlers or the store."""

    stop: str | None = None  # "pause" or "cancel"
    signals: int = 0

    def request(self, what: str) -> None:
        if self.stop is None:
            self.stop = what

    def follow(self, status: JobStatus | None) -> None:
        """A pause or cancel recorded in the store (asked by any process)."""
        if status == JobStatus.PAUSED:
            self.request("pause")
        elif status == JobStatus.CANCELLED:
            self.request("cancel")


class Scheduler:
    """Runs one session's job to its end (or a pause/cancel) on one executor."""

    def __init__(
        self,
        session: JobSession,
        executor: Executor,
        *,
        control: Control | None = None,
        feed: Feed | None = None,
    ) -> None:
        self.session = session
        self.executor = executor
        self.control = control or Control()
        self.feed = feed
        self._memory = MemorySampler()
        self._cpu = CpuMeter()

    def run(self, prepare: Callable[[], object] | None = None) -> JobStatus:
        """Start the executor, run ``prepare`` (the job's discovery) while its workers
        start, then drive the job; returns the job's status at the end."""
        s, ex = self.session, self.executor
        ex.start(s.spec)
        status = JobStatus.RUNNING
        error: str | None = None
        try:
            if prepare is not None:
                prepare()
            s.refresh()
            self.control.follow(s.tick(force=True))
            status = self._loop()
        except WorkerStartError as exc:
            status, error = JobStatus.FAILED, reason(exc)  # no page can run here
            raise
        finally:
            if status != JobStatus.COMPLETED:
                ex.stop()  # pages in flight are stopped; their outcomes never come
            ex.close()
            s.flush(self._cpu.take())
            if status == JobStatus.CANCELLED:
                s.cancel_held()
            else:
                s.put_back(s.held_ids())  # claimed, not done: pending again
            self._memory.sample()
            final = s.end(status, s.figures(ex.workers, self._memory, error))
        return final

    def _loop(self) -> JobStatus:
        s, ex = self.session, self.executor
        ready: collections.deque[PageTask] = collections.deque()
        while True:
            if self.control.stop:
                return JobStatus.PAUSED if self.control.stop == "pause" else JobStatus.CANCELLED
            claimed = 0
            room = ex.capacity()
            if room and not ready:
                # About a second of work per claim (at least two pages per worker): one
                # transaction per page would cost more than a small page itself.
                rate = s.counter.snapshot().pages_per_second
                ready.extend(s.claim(max(room, ex.workers * 2, min(256, int(rate)))))
                claimed = len(ready)
            while room and ready:
                ex.submit(ready.popleft())
                room -= 1
            outcomes = ex.collect(0.2 if ex.in_flight() else 0.0)
            for o in outcomes:
                s.collected(o)
            now = time.monotonic()
            if s.flush_due(now):
                s.flush(self._cpu.take())
            self.control.follow(s.tick(now))
            self._memory.maybe_sample(now)
            if self.feed is not None and self.feed.poll(now):
                s.refresh()  # documents were added: the totals grew
                continue
            if ex.in_flight() == 0 and not ready and not claimed and not outcomes:
                s.flush(self._cpu.take())
                if self.feed is None and s.store.unfinished_tasks(s.job_id) == 0:
                    return JobStatus.COMPLETED
                # Only retries waiting out their backoff are left: sleep until the next.
                ready_in = s.store.next_ready_in(s.job_id)
                time.sleep(min(0.5, ready_in if ready_in is not None else 0.5))


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
