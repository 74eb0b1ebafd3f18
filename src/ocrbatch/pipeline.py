"""One page, start to finish, in the calling process: load -> engine -> outcome.

Synchronous, no database, no pools (executors run it). The engine lives in module
state: :func:`init_worker` builds it once per worker process, never per page.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .engines.base import Engine, engine_class
from .errors import DocumentError, EngineError, OcrbatchError
from .model import PageOutcome, PageTask
from .tools.images import load_image

__all__ = ["WorkerSpec", "close_worker", "init_worker", "process_page"]


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    """Everything a worker needs to build its engine: plain data, picklable."""

    engine: str
    engine_options: Mapping[str, Any] = field(default_factory=dict)
    timeout: float | None = None
    max_image_pixels: int = 250_000_000


_engine: Engine | None = None
_spec: WorkerSpec | None = None
_worker_id = ""


def init_worker(spec: WorkerSpec, *, ignore_sigint: bool = True) -> None:
    """Build and open the engine for this process.

    Pool workers ignore SIGINT: Ctrl-C reaches the whole process group, and the
    coordinator, not the workers, decides what a pause means.
    """
    global _engine, _spec, _worker_id
    # One single-threaded engine per core: OpenMP/BLAS threads would fight the pool.
    for var in ("OMP_THREAD_LIMIT", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    if ignore_sigint:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    close_worker()
    engine = engine_class(spec.engine)(spec.engine_options, timeout=spec.timeout)
    engine.open()
    _engine, _spec = engine, spec
    _worker_id = f"{socket.gethostname()}:{os.getpid()}"


def close_worker() -> None:
    """Release the engine of this process (sequential mode, tests)."""
    global _engine
    if _engine is not None:
        _engine.close()
        _engine = None


def process_page(task: PageTask) -> PageOutcome:
    """Recognize one page. Never raises for a per-page problem: failures come back as an
    outcome with a one-line reason (the pool reports timeouts and dead workers)."""
    t0, c0 = time.perf_counter(), time.process_time()
    if _engine is None or _spec is None:
        raise RuntimeError("process_page called before init_worker")
    try:
        image = (
            load_image(task.path, task.page_index, max_pixels=_spec.max_image_pixels)
            if getattr(_engine, "reads_image", True)
            else None
        )
        page = _engine.recognize(image, task)
    except DocumentError as exc:
        return _failure(task, exc, t0)
    except OcrbatchError as exc:
        return _failure(task, EngineError(exc.message), t0)
    except MemoryError:
        return _failure(task, EngineError("out of memory on this page"), t0)
    except Exception as exc:
        msg = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
        return _failure(task, EngineError(f"engine error: {msg}"), t0)
    return PageOutcome(
        task_id=task.task_id,
        attempt=task.attempt,
        ok=True,
        page=page.to_dict(),
        worker_id=_worker_id,
        processing_time=time.perf_counter() - t0,
        cpu_time=time.process_time() - c0,
    )


def _failure(task: PageTask, exc: DocumentError, t0: float) -> PageOutcome:
    return PageOutcome.failure(
        task,
        exc.kind,
        exc.message,
        retryable=exc.retryable,
        worker_id=_worker_id,
        processing_time=time.perf_counter() - t0,
    )
