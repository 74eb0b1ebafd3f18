"""A page up to the engine, in a worker: the PDF page's own text layer when it is used,
else the page loaded or rendered, preprocessed (from the page cache where it is), with
the facts of how (its info: dpi, steps, quality, page size for images without a dpi).
A document in a bucket is read from the worker's own local copy (see :func:`source`):
the worker fetches it, never the coordinator."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

from .locations import default_object_cache_dir, object_cache_bytes
from .model import PageTask, PageText
from .tools.images import load_image
from .tools.objectcache import local_copy
from .tools.pdf import PDF_EXTENSIONS, render_page, text_layer
from .tools.storage import is_url
from .workerspec import WorkerSpec

if TYPE_CHECKING:
    from PIL import Image

    from .preprocess import PageCache, Preprocessor

__all__ = [
    "NOT_CACHED",
    "is_pdf",
    "load",
    "load_page",
    "page_dpi",
    "prepared_image",
    "since",
    "source",
    "text_layer_of",
]


def is_pdf(path: str) -> bool:
    return os.path.splitext(path)[1].lower() in PDF_EXTENSIONS


def source(task: PageTask, spec: WorkerSpec) -> str:
    """The local file of the task's document: its own path, or for an object in a
    bucket this machine's copy of it (fetched now unless the object cache holds it)."""
    if not is_url(task.path):
        return task.path
    folder, cap = str(default_object_cache_dir()), object_cache_bytes()
    return local_copy(
        task.path, task.content_hash, spec.storage_options, folder, cap, stamp=task.stamp
    )


def text_layer_of(
    task: PageTask, spec: WorkerSpec, pdf: bool, info: dict[str, Any]
) -> PageText | None:
    """The PDF page's own text when it has a usable layer (and OCR is not forced)."""
    if pdf and not spec.force_ocr:
        t = time.perf_counter()
        layer = text_layer(
            source(task, spec),
            task.page_index,
            dpi=spec.dpi,
            max_pixels=spec.max_pixels,
            password=spec.password,
        )
        if layer is not None:
            info.update(path="text-layer", dpi=layer.dpi, text_s=since(t))
            return layer
    info["path"] = "ocr"
    return None


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
    pdf = is_pdf(task.path)
    info: dict[str, Any] = {"source": "pdf" if pdf else "image"}
    layer = text_layer_of(task, spec, pdf, info)
    if layer is not None:
        return layer, None, info
    image, original, _key, pinfo = prepared_image(spec, task, pdf, info, pre, cache)
    info.update(pinfo)
    page_dpi(spec, info, original)
    return None, image, info


def prepared_image(
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
            image = original = load(task, spec, info)
    else:
        image = original = load(task, spec, info)
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
NOT_CACHED = frozenset({"cache", "source", "path", "ocr_s", "review_s", "load_s"})
# What loading the page found out about it (see load), kept with its cache entry.
_LOAD_FACTS = ("dpi", "dpi_reduced_from")


def page_dpi(spec: WorkerSpec, info: dict[str, Any], original: Image.Image | None) -> None:
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


def load(task: PageTask, spec: WorkerSpec, info: dict[str, Any]) -> Image.Image:
    t = time.perf_counter()
    if is_pdf(task.path):
        image, plan = render_page(
            source(task, spec),
            task.page_index,
            dpi=spec.dpi,
            max_pixels=spec.max_pixels,
            password=spec.password,
        )
        info["dpi"] = round(plan.dpi, 2)
        if plan.reduced:
            info["dpi_reduced_from"] = spec.dpi
    else:
        image = load_image(source(task, spec), task.page_index, max_pixels=spec.max_pixels)
        dpi = image.info.get("dpi")
        if dpi:
            info["dpi"] = round(float(dpi[0] if isinstance(dpi, tuple) else dpi), 2)
    info["load_s"] = since(t)
    return image


def since(t: float) -> float:
    return round(time.perf_counter() - t, 4)
