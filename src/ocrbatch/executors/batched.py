"""Batch mode for GPU engines: CPU preparation workers feeding one worker per device.

```
submit(task) -> [prep pool: N CPU processes]  load, render, engine.prepare
             -> [device process per GPU]       batches of pages: detect | read
             -> collect()                      outcomes, in any order
```

The preparation pool is a supervised pebble pool (timeouts kill and replace a worker, a
crash fails only its page). Each device worker is its own process with its own engine,
started from the forkserver, which never imports torch (CUDA does not survive the fork
of a process that initialised it). It gathers up to ``batch_size`` prepared pages
(waiting at most ``gather_s`` for a batch to fill), and for a two-phase engine runs the device
phase of batch i+1 while a second thread finishes the CPU half of batch i. Queues are
bounded by ``capacity``: at most ``2 x workers`` pages in preparation and ``queue_batches``
batches per device waiting, so memory stays flat however long the job. A device process
that dies or stops making progress for ``timeout`` seconds is replaced and its pages fail
as retryable (the scheduler retries them).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import queue
import signal
import threading
import time
from collections.abc import Collection, Sequence
from concurrent.futures import Future
from typing import Any

import pebble

from ..engines.base import engine_class
from ..errors import (
    ConfigError,
    DocumentError,
    EngineError,
    TaskTimeoutError,
    WorkerCrashedError,
    reason,
    translate,
)
from ..model import PageOutcome, PageTask
from ..pagebatch import DeviceWorker, Prepared, init_prep_worker, prepare_task
from ..pipeline import WorkerSpec
from .local import pool_errors, stop_pool

__all__ = ["BatchedExecutor", "cuda_devices", "device_main"]


def cuda_devices() -> list[str]:
    """``cuda:0`` ... for every visible GPU; empty without torch or CUDA."""
    try:
        import torch
    except ImportError:
        return []
    return [f"cuda:{i}" for i in range(torch.cuda.device_count())]


def device_main(
    spec: WorkerSpec, device: str, inbox: Any, outbox: Any, gather_s: float = 0.02
) -> None:
    """Body of a device process: batches from ``inbox``, outcome lists to ``outbox``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        worker = DeviceWorker(spec, device)
    except Exception as exc:
        outbox.put(("fatal", reason(exc)))
        return
    outbox.put(("ready", worker.worker_id))

    def gather() -> list[Prepared] | None:
        first = inbox.get()
        if first is None:
            return None
        batch = [first]
        deadline = time.monotonic() + gather_s
        while len(batch) < worker.batch_size:
            try:
                item = inbox.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if item is None:
                inbox.put(None)  # seen again by the next gather, which ends the loop
                break
            batch.append(item)
        return batch

    if worker.two_phase:
        stage: queue.Queue[Any] = queue.Queue(maxsize=1)

        def reader() -> None:
            while (detected := stage.get()) is not None:
                outbox.put(("done", worker.read(detected)))

        thread = threading.Thread(target=reader, name="ocrbatch-read", daemon=True)
        thread.start()
        while (batch := gather()) is not None:
            stage.put(worker.detect(batch))
        stage.put(None)
        thread.join()
    else:
        while (batch := gather()) is not None:
            outbox.put(("done", worker.process(batch)))
    worker.close()
    outbox.put(("closed", worker.worker_id))


class _Device:
    """The parent's handle on one device process."""

    def __init__(
        self, ctx: Any, spec: WorkerSpec, device: str, done: queue.SimpleQueue[PageOutcome]
    ):
        self.ctx, self.spec, self.device, self.done = ctx, spec, device, done
        self.pending: dict[int, PageTask] = {}
        self.lock = threading.Lock()
        self.last_progress = time.monotonic()
        self.proc: Any = None
        self._launch()

    def _launch(self) -> None:
        self.inbox = self.ctx.Queue()
        self.outbox = self.ctx.Queue()
        self.proc = self.ctx.Process(
            target=device_main,
            args=(self.spec, self.device, self.inbox, self.outbox),
            name=f"ocrbatch-{self.device}",
            daemon=True,
        )
        self.proc.start()
        kind, msg = self._get(timeout=600)
        if kind != "ready":
            self.proc.join(timeout=5)
            raise ConfigError(f"device worker on {self.device} failed to start: {msg}")
        self.collector = threading.Thread(target=self._collect, daemon=True)
        self.collector.start()

    def _get(self, timeout: float) -> tuple[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            try:
                item: tuple[str, Any] = self.outbox.get(timeout=1.0)
                return item
            except queue.Empty:
                if not self.proc.is_alive():
                    return "fatal", f"process exited ({self.proc.exitcode})"
                if time.monotonic() > deadline:
                    return "fatal", "no answer"

    def _collect(self) -> None:
        while True:
            try:
                kind, payload = self.outbox.get()
            except (EOFError, OSError):
                return
            if kind != "done":
                return
            with self.lock:
                self.last_progress = time.monotonic()
                for outcome in payload:
                    if self.pending.pop(outcome.task_id, None) is not None:
                        self.done.put(outcome)

    def send(self, prepared: Prepared) -> None:
        with self.lock:
            if not self.pending:
                self.last_progress = time.monotonic()
            self.pending[prepared.task.task_id] = prepared.task
        self.inbox.put(prepared)

    def check(self, timeout: float) -> None:
        """Replace a dead or stuck device process; its pages fail as retryable."""
        with self.lock:
            if not self.pending:
                return
            stuck = time.monotonic() - self.last_progress > timeout
        dead = not self.proc.is_alive()
        if not (dead or stuck):
            return
        self.kill()
        with self.lock:
            lost, self.pending = self.pending, {}
        for task in lost.values():
            err: DocumentError = (
                WorkerCrashedError(
                    f"device worker on {self.device} died (exit code {self.proc.exitcode})"
                )
                if dead
                else TaskTimeoutError(
                    f"device worker on {self.device} made no progress for {timeout:g}s"
                )
            )
            self.done.put(PageOutcome.failure(task, err))
        self._launch()

    def kill(self) -> None:
        if self.proc is not None and self.proc.is_alive():
            self.proc.kill()
        if self.proc is not None:
            self.proc.join(timeout=10)

    def close(self) -> None:
        self.inbox.put(None)
        self.proc.join(timeout=60)
        if self.proc.is_alive():
            self.kill()
        self.collector.join(timeout=5)


class BatchedExecutor:
    """``workers`` CPU preparation processes feeding one device process per device."""

    def __init__(
        self,
        workers: int,
        devices: Sequence[str],
        *,
        timeout: float,
        recycle_after: int = 500,
        queue_batches: int = 2,
    ) -> None:
        if not devices:
            raise ConfigError("batch mode needs at least one device")
        self.workers = workers
        self.devices = list(devices)
        self.timeout = timeout
        self.recycle_after = recycle_after
        self.queue_batches = queue_batches
        self._done: queue.SimpleQueue[PageOutcome] = queue.SimpleQueue()
        self._tasks: dict[int, PageTask] = {}
        self._lock = threading.Lock()
        self._pool: pebble.ProcessPool | None = None
        self._dev: list[_Device] = []
        self._batch = 1
        self._spec: WorkerSpec | None = None

    def start(self, spec: WorkerSpec | None) -> None:
        if spec is None:
            raise ConfigError("the batch executor serves one engine: start it with its spec")
        self._spec = spec
        self._batch = engine_class(spec.engine).pages_per_batch(spec.engine_options)
        fork = multiprocessing.get_context("forkserver")
        fork.set_forkserver_preload(["ocrbatch.pagebatch"])
        self._pool = pebble.ProcessPool(
            max_workers=self.workers,
            max_tasks=self.recycle_after,
            initializer=init_prep_worker,
            initargs=(spec,),
            context=fork,
        )
        try:
            for device in self.devices:
                self._dev.append(_Device(fork, spec, device, self._done))
        except BaseException:
            self.stop()
            raise

    def capacity(self) -> int:
        limit = 2 * self.workers + len(self._dev) * self._batch * self.queue_batches
        return max(0, limit - len(self._tasks))

    def submit(self, task: PageTask, spec: WorkerSpec | None = None) -> None:
        assert self._pool is not None, "start() first"
        if spec is not None and spec != self._spec:
            msg = "the batch executor runs one engine spec; this task asks for another"
            err = EngineError(msg)
            err.retryable = False  # the same task asks for the same spec again
            self._done.put(PageOutcome.failure(task, err))
            with self._lock:
                self._tasks[task.task_id] = task
            return
        with self._lock:
            self._tasks[task.task_id] = task
        fut: Future[Any] = self._pool.schedule(prepare_task, (task,), timeout=self.timeout)
        fut.add_done_callback(lambda f: self._prepared(task, f))

    def _prepared(self, task: PageTask, fut: Future[Any]) -> None:
        try:
            result = fut.result()
        except Exception as exc:  # pebble's report of the preparation, translated once
            err = translate(exc, pool_errors(self.timeout, "preparation "), prefix="worker error: ")
            assert isinstance(err, DocumentError)
            result = PageOutcome.failure(task, err)
        if isinstance(result, PageOutcome):
            self._done.put(result)
            return
        if not self._dev:  # stopped meanwhile
            return
        target = min(self._dev, key=lambda d: len(d.pending))
        target.send(result)

    def collect(self, timeout: float) -> list[PageOutcome]:
        for dev in self._dev:
            dev.check(self.timeout)
        out: list[PageOutcome] = []
        try:
            first = self._done.get(timeout=timeout) if timeout > 0 else self._done.get_nowait()
        except queue.Empty:
            return out
        item: PageOutcome | None = first
        while item is not None:
            with self._lock:
                if self._tasks.pop(item.task_id, None) is not None:
                    out.append(item)
            try:
                item = self._done.get_nowait()
            except queue.Empty:
                item = None
        return out

    def in_flight(self) -> int:
        return len(self._tasks)

    def cancel(self, task_ids: Collection[int]) -> None:
        """Forget these tasks: their outcomes are dropped when they come back (a batch
        already on the device runs to its end; pages are not stopped one by one)."""
        with self._lock:
            for tid in task_ids:
                self._tasks.pop(tid, None)

    def stop(self) -> list[int]:
        with self._lock:
            ids = list(self._tasks)
            self._tasks.clear()
        devs, self._dev = self._dev, []
        for dev in devs:
            dev.kill()
        pool, self._pool = self._pool, None
        stop_pool(pool)
        return ids

    def close(self) -> None:
        devs, self._dev = self._dev, []
        for dev in devs:
            with contextlib.suppress(Exception):
                dev.close()
        if self._pool is not None:
            self._pool.close()  # type: ignore[no-untyped-call]
            self._pool.join(timeout=30)
            self._pool = None
