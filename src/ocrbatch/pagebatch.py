"""Pages in batches, for batch (GPU) engines: the worker-side functions.

Two kinds of worker run these (executors decide where; nothing here knows about
processes or Ray): CPU *preparation* workers turn a task into a :class:`Prepared` (load,
render, engine.prepare), and one *device* worker per GPU turns batches of them into
outcomes. Both are synchronous and hold no pool; a device worker is a plain object, so
the Ray executor can host it as an actor with ``num_gpus=1``.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .engines.base import engine_class
from .engines.batch import BatchEngine, TwoPhaseEngine
from .errors import DocumentError, page_error
from .model import PageOutcome, PageTask, PageText
from .pipeline import WorkerSpec, init_preprocess, load_page, on_original_page

__all__ = ["DeviceWorker", "Prepared", "init_prep_worker", "prepare_task"]


@dataclass(frozen=True, slots=True)
class Prepared:
    """A page after the CPU stage: the engine's prepared data plus its timings."""

    task: PageTask
    payload: Any
    seconds: float
    cpu_seconds: float
    info: Mapping[str, Any] = field(default_factory=dict)


_prep_engine: BatchEngine | None = None
_prep_spec: WorkerSpec | None = None
_prep_pre: Any = None
_prep_cache: Any = None


def init_prep_worker(spec: WorkerSpec) -> None:
    """Build (never open) the engine of a CPU preparation worker: no models, no torch;
    and the worker's preprocessor and page cache (as :func:`pipeline.init_worker`)."""
    global _prep_engine, _prep_spec, _prep_pre, _prep_cache
    for var in ("OMP_THREAD_LIMIT", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the coordinator decides what Ctrl-C means
    engine = engine_class(spec.engine)(spec.engine_options, timeout=spec.timeout)
    _prep_engine = engine  # type: ignore[assignment]
    _prep_spec = spec
    _prep_pre, _prep_cache = init_preprocess(spec)


def prepare_task(task: PageTask) -> Prepared | PageOutcome:
    """CPU stage of one page: the PDF text layer (a finished outcome, no device work) or
    the loaded, rendered and preprocessed page made ready by ``engine.prepare``. A
    per-page problem comes back as a failed outcome."""
    if _prep_engine is None or _prep_spec is None:
        raise RuntimeError("prepare_task called before init_prep_worker")
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        layer, image, info = load_page(task, _prep_spec, _prep_pre, _prep_cache)
        if layer is not None:
            return PageOutcome(
                task_id=task.task_id,
                attempt=task.attempt,
                ok=True,
                page=layer.to_dict(),
                worker_id=f"{socket.gethostname()}:{os.getpid()}",
                processing_time=time.perf_counter() - t0,
                cpu_time=time.process_time() - c0,
                info=info,
            )
        payload = _prep_engine.prepare(image, task)
    except Exception as exc:  # the boundary of one page's preparation
        return _failure(task, page_error(exc, "preparation error: "), time.perf_counter() - t0)
    return Prepared(task, payload, time.perf_counter() - t0, time.process_time() - c0, info)


class DeviceWorker:
    """One engine opened on one device (``cuda:0``, ``cpu``...): batches in, outcomes out.

    ``detect``/``read`` split a batch where the engine has two phases, so a caller can
    overlap the CPU half of one batch with the device half of the next; ``process`` is
    both at once. A batch that fails as a whole is retried page by page, so one bad page
    fails alone.
    """

    def __init__(self, spec: WorkerSpec, device: str | None = None) -> None:
        options = dict(spec.engine_options)
        cls = engine_class(spec.engine)
        model = cls.options_model
        if device is not None and model is not None and "device" in model.model_fields:
            options["device"] = device  # each device worker gets its own GPU
        engine = cls(options, timeout=spec.timeout)
        engine.open()
        self.engine: BatchEngine = engine  # type: ignore[assignment]
        self.batch_size = self.engine.batch_size
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{device or 'default'}"

    @property
    def two_phase(self) -> bool:
        return isinstance(self.engine, TwoPhaseEngine)

    def detect(self, batch: Sequence[Prepared]) -> tuple[Sequence[Prepared], Any, float]:
        t0 = time.perf_counter()
        try:
            assert isinstance(self.engine, TwoPhaseEngine)
            return batch, self.engine.detect([p.payload for p in batch]), t0
        except Exception:
            return batch, None, t0  # ``read`` falls back to page by page

    def read(self, detected: tuple[Sequence[Prepared], Any, float]) -> list[PageOutcome]:
        batch, det, t0 = detected
        if det is None:
            return self._one_by_one(batch)
        assert isinstance(self.engine, TwoPhaseEngine)
        try:
            pages = self.engine.read(det)
        except Exception:
            return self._one_by_one(batch)
        return self._outcomes(batch, pages, time.perf_counter() - t0)

    def process(self, batch: Sequence[Prepared]) -> list[PageOutcome]:
        """Recognize a batch of prepared pages."""
        if self.two_phase:
            return self.read(self.detect(batch))
        t0 = time.perf_counter()
        try:
            pages = self.engine.recognize_batch([p.payload for p in batch])
        except Exception:
            return self._one_by_one(batch)
        return self._outcomes(batch, pages, time.perf_counter() - t0)

    def close(self) -> None:
        self.engine.close()

    def _outcomes(
        self, batch: Sequence[Prepared], pages: Sequence[PageText], seconds: float
    ) -> list[PageOutcome]:
        share = seconds / max(1, len(batch))  # device time is shared by the batch's pages
        return [
            PageOutcome(
                task_id=p.task.task_id,
                attempt=p.task.attempt,
                ok=True,
                page=on_original_page(page, p.info).to_dict(),
                worker_id=self.worker_id,
                processing_time=p.seconds + share,
                cpu_time=p.cpu_seconds,
                info={**p.info, "batch": len(batch), "device_s": round(seconds, 4)},
            )
            for p, page in zip(batch, pages, strict=True)
        ]

    def _one_by_one(self, batch: Sequence[Prepared]) -> list[PageOutcome]:
        out: list[PageOutcome] = []
        for p in batch:
            t0 = time.perf_counter()
            try:
                page = self.engine.recognize_batch([p.payload])[0]
            except Exception as exc:  # one page of the batch: its own outcome
                err = page_error(exc)
                out.append(_failure(p.task, err, time.perf_counter() - t0, self.worker_id))
                continue
            out.extend(self._outcomes([p], [page], time.perf_counter() - t0))
        return out


def _failure(
    task: PageTask, exc: DocumentError, seconds: float, worker_id: str | None = None
) -> PageOutcome:
    return PageOutcome.failure(task, exc, worker_id=worker_id, processing_time=seconds)
