"""One page, start to finish, in the calling process:
text layer | (load or render -> preprocess -> engine) -> outcome.

Synchronous, no database, no pools (executors run it). The engine, the preprocessor and
the page cache live in module state: :func:`init_worker` builds them once per worker
process, never per page. A page's image exists only here, one page at a time.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .config import default_cache_dir
from .engines.base import Engine, engine_class
from .errors import DocumentError, page_error
from .model import PageOutcome, PageTask, PageText
from .pageload import (
    NOT_CACHED,
    is_pdf,
    load,
    load_page,
    page_dpi,
    prepared_image,
    since,
    text_layer_of,
)
from .workerspec import WorkerSpec

if TYPE_CHECKING:
    from PIL import Image

    from .preprocess import PageCache, Preprocessor

__all__ = [
    "WorkerSpec",
    "close_worker",
    "init_preprocess",
    "init_worker",
    "load_page",
    "on_original_page",
    "open_before_fork",
    "process_page",
    "ready",
]


_engine: Engine | None = None
_spec: WorkerSpec | None = None
_pre: Preprocessor | None = None
_cache: PageCache | None = None
_worker_id = ""
# What this process built per spec, most recently used first. A queue worker serves jobs
# with different engines or options: keeping the last two avoids rebuilding an engine
# each time the pages of two jobs alternate, and bounds the memory.
_built: list[tuple[WorkerSpec, Engine, Preprocessor | None, PageCache | None]] = []
_BUILT_MAX = 2
# An engine opened with default options in the pool's forkserver, before the workers
# forked (:func:`open_before_fork`): the first spec it can serve takes it over.
_forked_engine: tuple[str, Engine] | None = None


def init_worker(
    spec: WorkerSpec | None, *, ignore_sigint: bool = True, nice: int | None = None
) -> None:
    """Prepare this process and build the engine for ``spec`` (None: build it from the
    spec the first task brings, see :func:`process_page`).

    Pool workers ignore SIGINT: Ctrl-C reaches the whole process group, and the
    coordinator, not the workers, decides what a pause means. ``nice``: this worker
    process's CPU priority (batch work yields to the coordinator, a service, a shell).
    """
    global _worker_id
    # One single-threaded engine per core: OpenMP/BLAS threads would fight the pool.
    _set_threads(spec.threads if spec is not None else 1)
    if ignore_sigint:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    if nice is not None:
        _lower_priority(nice)
    close_worker()
    _worker_id = f"{socket.gethostname()}:{os.getpid()}"
    if spec is not None:
        _use(spec)


def _lower_priority(nice: int) -> None:
    """Raise this process's niceness to ``nice`` (never lower it: that needs root)."""
    with contextlib.suppress(OSError):
        now = os.nice(0)
        if nice > now:
            os.nice(nice - now)


def _set_threads(n: int) -> None:
    # Libraries with their own thread pools (OpenMP, BLAS) read these when they start.
    for var in ("OMP_THREAD_LIMIT", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(n)


def _use(spec: WorkerSpec) -> None:
    """Make ``spec``'s engine and preprocessing current: built and opened once, then
    kept (see ``_built``)."""
    global _engine, _spec, _pre, _cache
    if spec == _spec and _engine is not None:
        return
    for i, entry in enumerate(_built):
        if entry[0] == spec:
            _built.insert(0, _built.pop(i))
            break
    else:
        _set_threads(spec.threads)
        engine = _take_forked_engine(spec)
        if engine is None:
            cls = engine_class(spec.engine)
            engine = cls(spec.engine_options, timeout=spec.timeout, threads=spec.threads)
            engine.open()
        _built.insert(0, (spec, engine, *_init_preprocess(spec)))
        while len(_built) > _BUILT_MAX:
            _built.pop()[1].close()
    _spec, _engine, _pre, _cache = _built[0]


def open_before_fork(name: str) -> None:
    """In the pool's forkserver, after its imports: open engine ``name`` with its default
    options if it declares ``opens_before_fork``, so that every worker forks with it
    open (a worker's first page then waits for no model: Tesseract's took 0.076 s to
    open on the dev machine, on the critical path of a job's start) and its model pages
    are shared by the workers until one writes them. Never raises (see warm.py)."""
    global _forked_engine
    try:
        cls = engine_class(name)
        if cls.opens_before_fork:
            engine = cls({}, timeout=None, threads=1)
            engine.open()
            _forked_engine = (name, engine)
    except Exception:  # noqa: S110 - the worker builds its engine as it always did
        pass


def _take_forked_engine(spec: WorkerSpec) -> Engine | None:
    """The engine opened before the fork, if it can serve ``spec`` (taken once)."""
    global _forked_engine
    if _forked_engine is None or _forked_engine[0] != spec.engine:
        return None
    engine = _forked_engine[1]
    if not engine.takes_over(spec.engine_options, timeout=spec.timeout, threads=spec.threads):
        return None
    _forked_engine = None
    return engine


def _init_preprocess(spec: WorkerSpec) -> tuple[Preprocessor, PageCache | None]:
    # OpenCV loads here, in workers only: the coordinator and the CLI never need it.
    import cv2

    from .preprocess import PageCache, Preprocessor

    cv2.setNumThreads(1)  # one core per worker, like the engine
    pre = Preprocessor(spec.preprocess)
    cache = None
    if pre.active and spec.cache_max_mb > 0:
        folder = spec.cache_dir or str(default_cache_dir())
        cache = PageCache(folder, spec.cache_max_mb * 2**20)
    return pre, cache


def ready() -> None:
    """Nothing: a task that only makes a pool start its workers."""


def close_worker() -> None:
    """Release the engines of this process (sequential mode, tests)."""
    global _engine, _spec, _pre, _cache
    while _built:
        _built.pop()[1].close()
    _engine = _spec = _pre = _cache = None


def process_page(task: PageTask, spec: WorkerSpec | None = None) -> PageOutcome:
    """Recognize one page. Never raises for a per-page problem: failures come back as an
    outcome with a one-line reason (the pool reports timeouts and dead workers).

    ``spec`` selects the engine and options (default: those :func:`init_worker` built).
    """
    t0, c0 = time.perf_counter(), time.process_time()
    if spec is not None:
        try:
            _use(spec)
        except Exception as exc:
            return _failure(task, page_error(exc, "engine failed to start: "), t0)
    if _engine is None or _spec is None:
        raise RuntimeError("process_page called before init_worker")
    try:
        page, info = _recognize(_engine, _spec, task)
    except Exception as exc:  # the boundary of one page: everything becomes its outcome
        return _failure(task, page_error(exc), t0)
    return PageOutcome(
        task_id=task.task_id,
        attempt=task.attempt,
        ok=True,
        page=_storable(page).to_dict(),
        worker_id=_worker_id,
        processing_time=time.perf_counter() - t0,
        cpu_time=time.process_time() - c0,
        info=info,
    )


def _storable(page: PageText) -> PageText:
    """``page`` with text the store can hold: an engine that returns lone surrogates
    (invalid UTF-8) would otherwise fail the whole batch's commit, not just this page."""
    try:
        page.text.encode("utf-8")
        "".join(w.text for w in page.words).encode("utf-8")
    except UnicodeEncodeError:
        return PageText.from_dict(_fix_strings(page.to_dict()))
    return page


def _fix_strings(obj: Any) -> Any:
    if isinstance(obj, str):
        return obj.encode("utf-8", "replace").decode("utf-8")  # lone surrogates -> "?"
    if isinstance(obj, dict):
        return {k: _fix_strings(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_fix_strings(v) for v in obj]
    return obj


def _recognize(engine: Engine, spec: WorkerSpec, task: PageTask) -> tuple[PageText, dict[str, Any]]:
    """The page's text and the facts of how it was made (PageOutcome.info)."""
    pdf = is_pdf(task.path)
    info: dict[str, Any] = {"source": "pdf" if pdf else "image"}
    layer = text_layer_of(task, spec, pdf, info)
    if layer is not None:
        return layer, info
    if not engine.reads_image:
        return engine.recognize(None, task), info
    pre, cache = _pre, _cache
    image, original, key, pinfo = prepared_image(spec, task, pdf, info, pre, cache)
    info.update(pinfo)
    page_dpi(spec, info, original)
    t = time.perf_counter()
    page = engine.recognize(image, task)
    info["ocr_s"] = since(t)
    if pre is not None and pre.reviews_after_ocr and "reviewed" not in info:
        first = original

        def load_original() -> Image.Image:
            return first if first is not None else load(task, spec, {})

        t = time.perf_counter()
        page, better = pre.review(
            page, image, load_original, lambda im: engine.recognize(im, task), info
        )
        info["review_s"] = since(t)
        if better is not None and key and cache is not None:
            # the cache keeps the better page, so a re-run with another engine reads it
            keep = {k: v for k, v in info.items() if k not in NOT_CACHED}
            cache.put(key, keep, better)
    info.update(page.info)  # the engine's own facts (a routing engine's route and why)
    return on_original_page(page, info), info


def init_preprocess(spec: WorkerSpec) -> tuple[Preprocessor, PageCache | None]:
    """A preprocessor and page cache for ``spec`` (workers only; see :func:`load_page`)."""
    return _init_preprocess(spec)


def on_original_page(page: PageText, info: Mapping[str, Any]) -> PageText:
    """``page`` with its words where they lie on the page as decoded (hOCR, ALTO and the
    searchable PDF place them there): preprocessing that turned or enlarged the page
    (``info["steps"]``) is undone on the boxes (see ``preprocess/geometry.py``)."""
    if {"orientation", "deskew", "upscale"} & set(info.get("steps", ())) and "source_size" in info:
        from .preprocess.geometry import to_original  # workers only: loads OpenCV

        w, h = info["source_size"]
        return to_original(page, (int(w), int(h)), info)
    return page


def _failure(task: PageTask, exc: DocumentError, t0: float) -> PageOutcome:
    return PageOutcome.failure(
        task, exc, worker_id=_worker_id, processing_time=time.perf_counter() - t0
    )
