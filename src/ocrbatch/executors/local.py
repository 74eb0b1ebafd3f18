"""Parallel mode: a supervised local process pool (pebble).

pebble does the supervision we must not hand-roll: a page past its timeout has its
worker killed and replaced; a worker that dies (segfault, os._exit, OOM kill) fails only
the future of its own task; workers are recycled after ``recycle_after`` tasks.
Workers come from a forkserver, so they never inherit the coordinator's database
connections or threads.
"""

from __future__ import annotations

import contextlib
import functools
import queue
import signal
import threading
from collections.abc import Collection
from concurrent.futures import CancelledError, Future
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool

import pebble
import psutil

from ..errors import (
    DocumentError,
    TaskCancelledError,
    TaskTimeoutError,
    Translation,
    WorkerCrashedError,
    WorkerStartError,
    reason,
    translate,
)
from ..model import PageOutcome, PageTask
from ..pipeline import WorkerSpec, init_worker, process_page, ready
from . import forkserver
from .base import GUARD_HINT, preflight

__all__ = ["LocalExecutor", "pool_errors", "stop_pool"]


class LocalExecutor:
    """A pebble ProcessPool with ``workers`` single-threaded engine processes."""

    def __init__(
        self,
        workers: int,
        *,
        timeout: float,
        recycle_after: int = 500,
        queue_depth: int = 2,
        min_free_memory_mb: int = 256,
        nice: int | None = None,
    ) -> None:
        self.workers = workers
        self.nice = nice  # the workers' CPU priority (see pipeline.init_worker)
        self.timeout = timeout
        self.recycle_after = recycle_after
        # Tasks per worker kept in flight: enough that no core waits for the coordinator,
        # few enough that a crash or pause puts little back in the queue.
        self.queue_depth = queue_depth
        self.min_free_memory_mb = min_free_memory_mb
        self._pool: pebble.ProcessPool | None = None
        self._starting: threading.Thread | None = None
        self._futures: dict[int, tuple[PageTask, Future[PageOutcome], float]] = {}
        # Done futures, not task ids: a task cancelled and later submitted again must not
        # be mistaken for its own earlier, cancelled future.
        self._done: queue.SimpleQueue[tuple[int, Future[PageOutcome]]] = queue.SimpleQueue()

    def start(self, spec: WorkerSpec | None) -> None:
        preflight("parallel")
        # Every (re)started worker forks with the engine's and preprocessing's libraries
        # (OpenCV) already loaded; the console entry may have started the server already.
        # (A queue worker starts without a spec: each task brings its own engine.)
        ctx = forkserver.start(spec.engine if spec is not None else "")
        self._pool = pebble.ProcessPool(
            max_workers=self.workers,
            max_tasks=self.recycle_after,
            initializer=functools.partial(init_worker, nice=self.nice),
            initargs=(spec,),
            context=ctx,
        )
        # pebble starts its workers at the first task, in the caller's thread (the
        # forkserver's imports, then each worker's engine: a second or more). Started
        # here in a thread of its own, the workers get ready while the coordinator
        # discovers the inputs; the first real task waits for the start if need be.
        pool = self._pool
        self._starting = threading.Thread(
            target=_start, args=(pool,), name="ocrbatch-pool-start", daemon=True
        )
        self._starting.start()

    def capacity(self) -> int:
        room = self.workers * self.queue_depth - len(self._futures)
        if room <= 0:
            return 0
        # Throttle under memory pressure: let in-flight pages drain before adding more.
        if len(self._futures) >= self.workers:
            free_mb = psutil.virtual_memory().available // (1024 * 1024)
            if free_mb < self.min_free_memory_mb:
                return 0
        return room

    def submit(self, task: PageTask, spec: WorkerSpec | None = None) -> None:
        assert self._pool is not None, "start() first"
        timeout = spec.timeout if spec is not None and spec.timeout else self.timeout
        args = (task,) if spec is None else (task, spec)
        try:
            fut: Future[PageOutcome] = self._pool.schedule(process_page, args, timeout=timeout)
        except RuntimeError as exc:  # pebble: the pool broke (its workers cannot start)
            raise _start_error(exc) from None
        self._futures[task.task_id] = (task, fut, timeout)
        tid = task.task_id
        fut.add_done_callback(lambda f: self._done.put((tid, f)))

    def collect(self, timeout: float) -> list[PageOutcome]:
        out: list[PageOutcome] = []
        try:
            item = self._done.get(timeout=timeout) if timeout > 0 else self._done.get_nowait()
        except queue.Empty:
            return out
        while True:
            tid, fut = item
            entry = self._futures.get(tid)
            if entry is not None and entry[1] is fut:
                del self._futures[tid]
                out.append(self._outcome(*entry))
            try:
                item = self._done.get_nowait()
            except queue.Empty:
                return out

    def cancel(self, task_ids: Collection[int]) -> None:
        for tid in task_ids:
            entry = self._futures.pop(tid, None)
            if entry is not None:
                entry[1].cancel()  # pebble stops the worker process if the task is running

    def _outcome(self, task: PageTask, fut: Future[PageOutcome], timeout: float) -> PageOutcome:
        try:
            return fut.result()
        except BrokenProcessPool as exc:
            # Every worker died before taking a task: not this page's fault, and no
            # other page can run either.
            raise _start_error(exc) from None
        except Exception as exc:  # pebble's report of the page: translated here, once
            err = translate(exc, pool_errors(timeout), prefix="worker error: ")
            assert isinstance(err, DocumentError)
            spent = timeout if isinstance(err, TaskTimeoutError) else 0.0
            return PageOutcome.failure(task, err, processing_time=spent)

    def in_flight(self) -> int:
        return len(self._futures)

    def _started(self) -> None:
        if self._starting is not None:
            self._starting.join(timeout=60)
            self._starting = None

    def stop(self) -> list[int]:
        ids = list(self._futures)
        self._futures.clear()
        self._started()
        pool, self._pool = self._pool, None
        stop_pool(pool)
        return ids

    def close(self) -> None:
        """Let the workers finish and exit. Nothing is in flight by now (the loop
        collected every outcome), so the join is only pebble's threads (they poll every
        0.1 s) and the workers' exit: it runs in a thread of its own while the job's
        files are written (not a daemon: the interpreter waits for it at exit)."""
        self._started()
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()  # type: ignore[no-untyped-call]
            threading.Thread(target=_join, args=(pool,), name="ocrbatch-pool-close").start()


def _join(pool: pebble.ProcessPool) -> None:
    with contextlib.suppress(TimeoutError):  # a worker stuck on exit: its pool stops it
        pool.join(timeout=30)
        return
    stop_pool(pool)


def stop_pool(pool: pebble.ProcessPool | None) -> None:
    """Stop ``pool`` now: running tasks are dropped, their workers killed."""
    if pool is not None:
        pool.stop()  # type: ignore[no-untyped-call]
        pool.join(timeout=10)


def _start(pool: pebble.ProcessPool) -> None:
    """Start the pool's workers (a no-op task makes pebble start them)."""
    with contextlib.suppress(RuntimeError):  # a pool that cannot start: the first task says why
        pool.schedule(ready)


def pool_errors(timeout: float, stage: str = "") -> dict[type[BaseException], Translation]:
    """How pebble's reports of one task read as ocrbatch errors (``stage``: what the
    worker was doing, e.g. "preparation ")."""
    return {
        FutureTimeout: lambda _: TaskTimeoutError(
            f"{stage}timed out after {timeout:g}s; the worker was killed and replaced"
        ),
        pebble.ProcessExpired: lambda e: WorkerCrashedError(
            f"{stage}worker process died ({_exit_reason(getattr(e, 'exitcode', None))})"
        ),
        CancelledError: lambda _: TaskCancelledError("cancelled"),
    }


def _start_error(exc: BaseException) -> WorkerStartError:
    why = reason(exc, 200)
    return WorkerStartError(
        f"worker processes could not start ({why}); their error is on stderr above. "
        f"Check the engine with `ocrbatch engines`; {GUARD_HINT}"
    )


def _exit_reason(code: int | None) -> str:
    if code is None:
        return "unknown exit"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"
