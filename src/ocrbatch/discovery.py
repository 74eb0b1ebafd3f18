"""Candidate files -> documents: content hash, page count and per-page weights, in
batches the caller stores before asking for more (the candidates come from inputs.py).

Nothing is dropped in silence: a candidate that cannot be read or counted (a FIFO or a
device with a document's name, a truncated file, an encrypted PDF without its password)
comes out as a failed document with its one-line reason.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import islice

from .errors import DocumentError
from .inputs import SUPPORTED_EXTENSIONS, Candidate, apart, check_inputs, iter_paths
from .model import DocumentRef
from .specs import select_pages
from .tools.files import open_file
from .tools.images import MULTIPAGE_EXTENSIONS, frame_sizes
from .tools.pdf import PDF_EXTENSIONS, page_sizes, plan_render

__all__ = [
    "SUPPORTED_EXTENSIONS",
    "Candidate",
    "DiscoveryOptions",
    "apart",
    "check_inputs",
    "discover",
    "hash_file",
    "iter_paths",
]


@dataclass(frozen=True, slots=True)
class DiscoveryOptions:
    """What discovery needs to know to turn a file into page tasks."""

    dpi: float = 300.0
    max_pixels: int = 250_000_000
    password: str | None = None
    pages: str | None = None  # a validated --pages spec
    # (real path, what) of ocrbatch's own files and folders (the output folder, the job
    # database, the page cache): nothing under them is ever an input.
    exclude: tuple[tuple[str, str], ...] = ()


def hash_file(path: str) -> tuple[int, str]:
    """(size, blake2b-256 hex) of the file's content; raises DocumentError."""
    h = hashlib.blake2b(digest_size=32)
    size = 0
    with open_file(path) as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
            size += len(chunk)
    return size, h.hexdigest()


def _page_weights(path: str, opts: DiscoveryOptions) -> list[float]:
    """Estimated work of each page: the pixels the worker decodes or renders for it.

    Read from headers and the PDF page tree only; nothing is decoded or rendered here.
    """
    ext = os.path.splitext(path)[1].lower()
    if ext in PDF_EXTENSIONS:
        plans = [
            plan_render(w, h, opts.dpi, opts.max_pixels) for w, h in page_sizes(path, opts.password)
        ]
        return [float(p.width * p.height) for p in plans]
    sizes = frame_sizes(path, opts.max_pixels, multipage=ext in MULTIPAGE_EXTENSIONS)
    return [float(w * h) for w, h in sizes]


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _shown(text: str) -> str:
    """A name that is not valid UTF-8 (Python keeps its bytes as lone surrogates), as
    text the store and the result files can hold: the odd bytes as \\xNN escapes."""
    return os.fsencode(text).decode("utf-8", "backslashreplace")


def _describe(item: Candidate, opts: DiscoveryOptions) -> DocumentRef:
    path, rel, error = item
    if not (_utf8(path) and _utf8(rel)):
        # Results, the store and every output format hold names as UTF-8 text.
        reason = "its file name is not valid UTF-8 (bytes shown as \\xNN): rename the file"
        return DocumentRef(
            path=_shown(path), rel_path=_shown(rel), size=None, content_hash=None, error=reason
        )
    if error is not None:
        return DocumentRef(path=path, rel_path=rel, size=None, content_hash=None, error=error)
    size: int | None = None
    digest: str | None = None
    try:
        size, digest = hash_file(path)
        weights = _page_weights(path, opts)
        chosen = select_pages(opts.pages, len(weights))
        if not chosen:
            raise DocumentError(
                f"no page selected: --pages {opts.pages} but the document has "
                f"{len(weights)} page{'s' if len(weights) != 1 else ''}"
            )
    except DocumentError as exc:
        if size is None:
            with contextlib.suppress(OSError):
                size = os.path.getsize(path)
        return DocumentRef(
            path=path, rel_path=rel, size=size, content_hash=digest, error=exc.message
        )
    page_weights = tuple(weights[i] for i in chosen)
    return DocumentRef(
        path=path,
        rel_path=rel,
        size=size,
        content_hash=digest,
        page_count=len(weights),
        weight=max(page_weights),
        pages=chosen if len(chosen) < len(weights) else (),
        page_weights=page_weights,
    )


def discover(
    inputs: Sequence[str],
    batch_size: int = 500,
    threads: int = 4,
    options: DiscoveryOptions | None = None,
) -> Iterator[list[DocumentRef]]:
    """Batches of documents. Content hashing runs in a few threads (I/O bound, and
    hashlib releases the GIL); page counting reads headers and PDF page trees only.
    A file that cannot be read or counted comes out with ``error`` set."""
    opts = options or DiscoveryOptions()
    paths = iter_paths(inputs, opts.exclude)
    describe = functools.partial(_describe_all, opts=opts)
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="ocrbatch-hash") as pool:
        while batch := list(islice(paths, batch_size)):
            # One slice per thread, not one future per file: on a folder of small or
            # empty files the futures would cost more than the files.
            step = -(-len(batch) // threads)
            slices = [batch[i : i + step] for i in range(0, len(batch), step)]
            yield [d for part in pool.map(describe, slices) for d in part]


def _describe_all(items: list[Candidate], opts: DiscoveryOptions) -> list[DocumentRef]:
    return [_describe(item, opts) for item in items]
