"""One page, start to finish, in the calling process:
text layer | (load or render -> preprocess -> engine) -> outcome.

Synchronous, no database, no pools (executors run it). The engine, the preprocessor and
the page cache live in module state: :func:`init_worker` builds them once per worker
process, never per page. A page's image exists only here, one page at a time.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .config import RunConfig, default_cache_dir
from .engines.base import Engine, engine_class
from .errors import DocumentError, page_error
from .model import PageOutcome, PageTask, PageText
from .tools.images import load_image
from .tools.pdf import PDF_EXTENSIONS, render_page, text_layer

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
    "process_page",
]


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    """Everything a worker needs to build its engine: plain data, picklable."""

    engine: str
    engine_options: Mapping[str, Any] = field(default_factory=dict)
    timeout: float | None = None
    max_pixels: int = 250_000_000
    dpi: float = 300.0
    force_ocr: bool = False
    password: str | None = None
    preprocess: str = "auto"
    cache_dir: str | None = None
    cache_max_mb: int = 2048
    image_dpi: float | None = None
    # Cores one engine may use: 1 in a pool (one engine per core), more when it runs alone.
    threads: int = 1

    @classmethod
    def of(cls, cfg: RunConfig, *, threads: int = 1) -> WorkerSpec:
        """The spec of a job's config: the one place that maps a config onto workers (the
        scheduler of `run` and the queue worker both use it)."""
        return cls(
            engine=cfg.engine,
            engine_options=cfg.engine_options,
            timeout=cfg.timeout,
            max_pixels=cfg.max_pixels,
            dpi=cfg.dpi,
            force_ocr=cfg.force_ocr,
            password=cfg.password,
            preprocess=cfg.preprocess,
            cache_dir=cfg.cache_dir,
            cache_max_mb=cfg.cache_max_mb,
            image_dpi=cfg.image_dpi,
            threads=threads,
        )


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


def init_worker(spec: WorkerSpec | None, *, ignore_sigint: bool = True) -> None:
    """Prepare this process and build the engine for ``spec`` (None: build it from the
    spec the first task brings, see :func:`process_page`).

    Pool workers ignore SIGINT: Ctrl-C reaches the whole process group, and the
    coordinator, not the workers, decides what a pause means.
    """
    global _worker_id
    # One single-threaded engine per core: OpenMP/BLAS threads would fight the pool.
    _set_threads(spec.threads if spec is not None else 1)
    if ignore_sigint:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    close_worker()
    _worker_id = f"{socket.gethostname()}:{os.getpid()}"
    if spec is not None:
        _use(spec)


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
        cls = engine_class(spec.engine)
        engine = cls(spec.engine_options, timeout=spec.timeout, threads=spec.threads)
        engine.open()
        _built.insert(0, (spec, engine, *_init_preprocess(spec)))
        while len(_built) > _BUILT_MAX:
            _built.pop()[1].close()
    _spec, _engine, _pre, _cache = _built[0]


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


def _is_pdf(path: str) -> bool:
    return os.path.splitext(path)[1].lower() in PDF_EXTENSIONS


def _recognize(engine: Engine, spec: WorkerSpec, task: PageTask) -> tuple[PageText, dict[str, Any]]:
    """The page's text and the facts of how it was made (PageOutcome.info)."""
    pdf = _is_pdf(task.path)
    info: dict[str, Any] = {"source": "pdf" if pdf else "image"}
    layer = _text_layer(task, spec, pdf, info)
    if layer is not None:
        return layer, info
    if not engine.reads_image:
        return engine.recognize(None, task), info
    pre, cache = _pre, _cache
    image, original, key, pinfo = _prepared_image(spec, task, pdf, info, pre, cache)
    info.update(pinfo)
    _page_dpi(spec, info, original)
    t = time.perf_counter()
    page = engine.recognize(image, task)
    info["ocr_s"] = _since(t)
    if pre is not None and pre.reviews_after_ocr and "reviewed" not in info:
        first = original

        def load_original() -> Image.Image:
            return first if first is not None else _load(task, spec, {})

        t = time.perf_counter()
        page, better = pre.review(
            page, image, load_original, lambda im: engine.recognize(im, task), info
        )
        info["review_s"] = _since(t)
        if better is not None and key and cache is not None:
            # the cache keeps the better page, so a re-run with another engine reads it
            keep = {k: v for k, v in info.items() if k not in _NOT_CACHED}
            cache.put(key, keep, better)
    return on_original_page(page, info), info


def _text_layer(
    task: PageTask, spec: WorkerSpec, pdf: bool, info: dict[str, Any]
) -> PageText | None:
    """The PDF page's own text when it has a usable layer (and OCR is not forced)."""
    if pdf and not spec.force_ocr:
        t = time.perf_counter()
        layer = text_layer(
            task.path,
            task.page_index,
            dpi=spec.dpi,
            max_pixels=spec.max_pixels,
            password=spec.password,
        )
        if layer is not None:
            info.update(path="text-layer", dpi=layer.dpi, text_s=_since(t))
            return layer
    info["path"] = "ocr"
    return None


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


def load_page(
    task: PageTask,
    spec: WorkerSpec,
    pre: Preprocessor | None,
    cache: PageCache | None,
) -> tuple[PageText | None, Any, dict[str, Any]]:
    """A page up to the engine, for engines that recognize elsewhere (batch engines):
    the PDF text layer when it is used (then no image), else the loaded or rendered page
    after preprocessing (from the page cache where it is). The post-OCR review of
    preprocessing (a second reading) is not part of it.
    """
    pdf = _is_pdf(task.path)
    info: dict[str, Any] = {"source": "pdf" if pdf else "image"}
    layer = _text_layer(task, spec, pdf, info)
    if layer is not None:
        return layer, None, info
    image, original, _key, pinfo = _prepared_image(spec, task, pdf, info, pre, cache)
    info.update(pinfo)
    _page_dpi(spec, info, original)
    return None, image, info


def _prepared_image(
    spec: WorkerSpec,
    task: PageTask,
    pdf: bool,
    info: dict[str, Any],
    pre: Preprocessor | None,
    cache: PageCache | None,
) -> tuple[Image.Image, Image.Image | None, str | None, dict[str, Any]]:
    """Load (or take from the page cache) and preprocess the page: the image for the
    engine, the original when it was loaded, the cache key and the preprocessing facts."""
    key = None
    if pre is not None and pre.active and cache is not None and task.content_hash:
        from .preprocess import cache_key

        params = {**pre.params(), "dpi": spec.dpi if pdf else None}
        key = cache_key(task.content_hash, task.page_index, params)
    hit = cache.get(key) if key and cache is not None else None
    original: Image.Image | None = None
    if hit is not None:
        # The entry holds the page's load facts (its dpi as decoded or rendered) with the
        # preprocessing's: the page info of a hit is that of a fresh run, less timings.
        pinfo, image = hit
        pinfo = {**pinfo, "cache": "hit"}
        if image is None:
            image = original = _load(task, spec, info)
    else:
        image = original = _load(task, spec, info)
        pinfo = {"steps": []}
        if pre is not None:
            image, pinfo = pre.run(image)
            pinfo["source_size"] = list(original.size)  # to map words back (geometry.py)
            if key and cache is not None:
                loaded = {k: info[k] for k in _LOAD_FACTS if k in info}
                cache.put(key, {**loaded, **pinfo}, image if pinfo["steps"] else None)
                pinfo = {**pinfo, "cache": "miss"}
    return image, original, key, pinfo


# Facts of this run, not of the page (nor of its preprocessing).
_NOT_CACHED = frozenset({"cache", "source", "path", "ocr_s", "review_s", "load_s"})
# What loading the page found out about it (see _load), kept with its cache entry.
_LOAD_FACTS = ("dpi", "dpi_reduced_from")


def _page_dpi(spec: WorkerSpec, info: dict[str, Any], original: Image.Image | None) -> None:
    """The resolution a page's size is computed from (a searchable PDF page), for an
    image that states none: --image-dpi, else estimated from its letter height (the
    quality check's, or measured now). Recorded as page_dpi with where it came from."""
    dpi = info.get("dpi")
    if dpi and 70 <= float(dpi) <= 2400:
        return
    if spec.image_dpi:
        info.update(page_dpi=spec.image_dpi, page_dpi_from="--image-dpi")
        return
    height = (info.get("quality") or {}).get("char_height")
    if height is None and original is not None:
        import numpy as np

        from .preprocess import char_height

        height = char_height(np.asarray(original.convert("L")))[0]
    from .preprocess import estimate_dpi

    estimate = estimate_dpi(float(height or 0))
    if estimate is not None:
        info.update(page_dpi=estimate, page_dpi_from="letter height")


def _load(task: PageTask, spec: WorkerSpec, info: dict[str, Any]) -> Image.Image:
    t = time.perf_counter()
    if _is_pdf(task.path):
        image, plan = render_page(
            task.path,
            task.page_index,
            dpi=spec.dpi,
            max_pixels=spec.max_pixels,
            password=spec.password,
        )
        info["dpi"] = round(plan.dpi, 2)
        if plan.reduced:
            info["dpi_reduced_from"] = spec.dpi
    else:
        image = load_image(task.path, task.page_index, max_pixels=spec.max_pixels)
        dpi = image.info.get("dpi")
        if dpi:
            info["dpi"] = round(float(dpi[0] if isinstance(dpi, tuple) else dpi), 2)
    info["load_s"] = _since(t)
    return image


def _since(t: float) -> float:
    return round(time.perf_counter() - t, 4)


def _failure(task: PageTask, exc: DocumentError, t0: float) -> PageOutcome:
    return PageOutcome.failure(
        task, exc, worker_id=_worker_id, processing_time=time.perf_counter() - t0
    )
