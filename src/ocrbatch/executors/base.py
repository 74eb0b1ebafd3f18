"""The executor seam: submit plain tasks, collect plain outcomes."""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Collection, Mapping
from typing import Any, Protocol

import psutil

from ..errors import ConfigError, WorkerStartError
from ..model import PageOutcome, PageTask
from ..pipeline import WorkerSpec

__all__ = [
    "Executor",
    "available_cores",
    "batch_devices",
    "default_workers",
    "make_executor",
    "preflight",
    "refuse_in_worker_startup",
]

GUARD_HINT = (
    'a script that calls ocrbatch must keep that call under `if __name__ == "__main__":`'
    " (worker processes import the script as they start)"
)


def refuse_in_worker_startup(what: str) -> None:
    """Stop at once when ``what`` (an ocrbatch API call) runs inside a worker process
    that is still importing the user's script: the script lacks the ``__main__`` guard,
    and going on would start a job (and a pool) in every worker. One line on stderr and
    the worker exits; the coordinator then reports the failed start once."""
    if getattr(multiprocessing.current_process(), "_inheriting", False):
        print(
            f"ocrbatch: {what} called while a worker process started: {GUARD_HINT}", file=sys.stderr
        )
        raise SystemExit(1)


def preflight(mode: str) -> None:
    """Fail before a job exists when this process cannot start local workers: the
    forkserver re-imports the main script in each worker, which cannot work for a
    script read from standard input (``python - < script.py``)."""
    if mode not in ("parallel", "sequential"):
        return
    main = sys.modules.get("__main__")
    spec_name = getattr(getattr(main, "__spec__", None), "name", None)
    path = getattr(main, "__file__", None)
    if spec_name is None and path is not None and not os.path.isfile(path):
        raise WorkerStartError(
            f"worker processes cannot import the main script {path!r}: save the script "
            f"to a file and run that ({GUARD_HINT})"
        )


class Executor(Protocol):
    """Runs :func:`ocrbatch.pipeline.process_page` somewhere and reports outcomes.

    ``workers`` is known after :meth:`start` (a Ray executor sizes itself to the cluster).
    """

    workers: int

    def start(self, spec: WorkerSpec | None) -> None:
        """Start the workers; ``spec`` is the default engine (None: each task brings its
        own, as in a queue worker serving several jobs)."""
        ...

    def capacity(self) -> int:
        """How many more tasks to submit now (0 under memory pressure or when full)."""
        ...

    def submit(self, task: PageTask, spec: WorkerSpec | None = None) -> None:
        """Queue ``task``; ``spec`` (engine, options, timeout) overrides the default."""
        ...

    def collect(self, timeout: float) -> list[PageOutcome]:
        """Outcomes finished since the last call; waits up to ``timeout`` for the first."""
        ...

    def in_flight(self) -> int: ...

    def cancel(self, task_ids: Collection[int]) -> None:
        """Drop these tasks (a job paused or cancelled): their outcomes never come back;
        a worker busy on one is stopped and replaced."""
        ...

    def stop(self) -> list[int]:
        """Stop now: kill workers, return the ids of tasks that were in flight."""
        ...

    def close(self) -> None:
        """Orderly shutdown after the last outcome was collected."""
        ...


def batch_devices(engine_options: Mapping[str, Any]) -> list[str]:
    """The GPUs a batch engine's ``device`` option asks for (empty: run on the CPU)."""
    device = str(engine_options.get("device", "auto"))
    if device == "cpu":
        return []
    from .batched import cuda_devices

    found = cuda_devices()
    if device in ("auto", "cuda"):
        return found
    if device not in found:
        raise ConfigError(f"device {device!r} not found (visible: {', '.join(found) or 'none'})")
    return [device]


def available_cores() -> int:
    """Cores this process may use (CPU affinity / cgroup aware where the OS tells)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def default_workers(memory_per_worker_mb: int, reserve_mb: int = 512) -> int:
    """One single-threaded engine per core, fewer if memory cannot hold them all."""
    cores = available_cores()
    avail_mb = psutil.virtual_memory().available // (1024 * 1024)
    by_memory = max(1, (avail_mb - reserve_mb) // max(1, memory_per_worker_mb))
    return max(1, min(cores, by_memory))


def make_executor(
    mode: str,
    workers: int | None,
    *,
    timeout: float,
    recycle_after: int,
    ray_address: str | None = None,
    ship_pages: str = "auto",
    cpus_per_worker: float = 1.0,
    gpus_per_worker: float = 0.0,
    engine: str | None = None,
    engine_options: Mapping[str, Any] | None = None,
    nice: int | None = None,
) -> Executor:
    """The executor for ``mode``: sequential, parallel (local pool) or distributed (Ray).

    ``workers`` None: one per core here, or one per ``cpus_per_worker`` of the cluster.
    In parallel mode a batch engine (GPU) on a machine with CUDA devices gets the batch
    executor: ``workers`` CPU preparation processes and one device worker per GPU. On the
    CPU the same engine runs one page per worker in the ordinary pool, which is faster
    there (no batching gain, one single-threaded engine per core).
    """
    if mode == "parallel" and engine is not None:
        from ..engines.batch import is_batch_engine

        if is_batch_engine(engine):
            devices = batch_devices(engine_options or {})
            if devices:
                from .batched import BatchedExecutor

                return BatchedExecutor(
                    workers or max(1, available_cores() - len(devices)),
                    devices,
                    timeout=timeout,
                    recycle_after=recycle_after,
                )
    if mode == "sequential":
        # One page at a time, but in one supervised worker process, so that the page
        # timeout holds here too (a page that hangs inside a C library cannot be
        # interrupted in-process). SequentialExecutor runs pages in-process (tests).
        from .local import LocalExecutor

        return LocalExecutor(1, timeout=timeout, recycle_after=recycle_after, nice=nice)
    if mode == "parallel":
        from .local import LocalExecutor

        return LocalExecutor(
            workers or default_workers(400),
            timeout=timeout,
            recycle_after=recycle_after,
            nice=nice,
        )
    if mode == "distributed":
        from .ray import RayExecutor  # imports Ray itself, with a clear error without it

        return RayExecutor(
            workers,
            timeout=timeout,
            address=ray_address,
            ship_pages=ship_pages,
            num_cpus=cpus_per_worker,
            num_gpus=gpus_per_worker,
            recycle_after=recycle_after,
        )
    raise ConfigError(f"execution mode {mode!r} is not available")
