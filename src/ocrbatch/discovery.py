"""Candidate files -> documents: content hash, page count and per-page weights, in
batches the caller stores before asking for more (the candidates come from inputs.py).

An object in a bucket is never downloaded here: its identity (the content hash of reuse
and resume) comes from its ETag and size in the listing, a PDF's or TIFF's pages from
ranges of it (the page tree, the frame headers), and a single-page image's weight from
its size.

Nothing is dropped in silence: a candidate that cannot be read or counted (a FIFO or a
device with a document's name, a truncated file, an encrypted PDF without its password)
comes out as a failed document with its one-line reason.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from .errors import DocumentError
from .inputs import SUPPORTED_EXTENSIONS, Candidate, apart, check_inputs, iter_paths
from .model import DocumentRef
from .specs import select_pages
from .tools.files import open_file
from .tools.images import MULTIPAGE_EXTENSIONS, frame_sizes
from .tools.pdf import PDF_EXTENSIONS, page_sizes, plan_render
from .tools.storage import identity, is_url, open_ranged, with_retries

__all__ = [
    "SUPPORTED_EXTENSIONS",
    "Candidate",
    "DiscoveryOptions",
    "apart",
    "check_inputs",
    "describe",
    "discover",
    "hash_file",
    "iter_paths",
    "local_stamp",
]

# Pixels per byte of a compressed page image, for the weight of an object whose header
# is not read: the median of the dev corpus's and tests/data's scans is 9.
_PIXELS_PER_BYTE = 8.0


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
    # The storage library's options (--storage-option) for object-storage inputs.
    storage_options: Mapping[str, Any] = field(default_factory=dict)


def hash_file(path: str) -> tuple[int, str]:
    """(size, blake2b-256 hex) of the file's content; raises DocumentError."""
    h = hashlib.blake2b(digest_size=32)
    size = 0
    with open_file(path) as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
            size += len(chunk)
    return size, h.hexdigest()


def local_stamp(st: os.stat_result) -> str:
    """What changes when a local file does: its size and modification time."""
    return f"size:{st.st_size}:mtime:{st.st_mtime_ns}"


def _page_weights(path: str, opts: DiscoveryOptions, size: int | None = None) -> list[float]:
    """Estimated work of each page: the pixels the worker decodes or renders for it.

    Read from headers and the PDF page tree only; nothing is decoded or rendered here.
    An object's single-page image is weighed by its size (no request at all).
    """
    ext = os.path.splitext(path)[1].lower()
    remote = is_url(path)
    if remote and ext not in PDF_EXTENSIONS and ext not in MULTIPAGE_EXTENSIONS:
        return [float(size or 0) * _PIXELS_PER_BYTE]
    if remote:
        return with_retries(lambda: _weights_of(path, ext, opts), path)
    return _weights_of(path, ext, opts)


def _weights_of(path: str, ext: str, opts: DiscoveryOptions) -> list[float]:
    with contextlib.ExitStack() as stack:
        source: Any = path
        if is_url(path):
            source = stack.enter_context(open_ranged(path, opts.storage_options))
        if ext in PDF_EXTENSIONS:
            plans = [
                plan_render(w, h, opts.dpi, opts.max_pixels)
                for w, h in page_sizes(source, opts.password)
            ]
            return [float(p.width * p.height) for p in plans]
        sizes = frame_sizes(source, opts.max_pixels, multipage=ext in MULTIPAGE_EXTENSIONS)
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
    path, rel, error = item.path, item.rel_path, item.error
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
    stamp: str | None = None
    try:
        if is_url(path):
            size, stamp = item.size, item.stamp
            digest = identity(path, stamp or "")
        else:
            with contextlib.suppress(OSError):
                stamp = local_stamp(os.stat(path))
            size, digest = hash_file(path)
        weights = _page_weights(path, opts, size)
        chosen = select_pages(opts.pages, len(weights))
        if not chosen:
            raise DocumentError(
                f"no page selected: --pages {opts.pages} but the document has "
                f"{len(weights)} page{'s' if len(weights) != 1 else ''}"
            )
    except DocumentError as exc:
        if size is None and not is_url(path):
            with contextlib.suppress(OSError):
                size = os.path.getsize(path)
        return DocumentRef(
            path=path,
            rel_path=rel,
            size=size,
            content_hash=digest,
            error=exc.message,
            stamp=stamp,
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
        stamp=stamp,
    )


def discover(
    inputs: Sequence[str],
    per_transaction: int = 500,
    threads: int = 4,
    options: DiscoveryOptions | None = None,
) -> Iterator[list[DocumentRef]]:
    """Lists of at most ``per_transaction`` documents (the store adds each list in one
    transaction). Content hashing runs in a few threads (I/O bound, and
    hashlib releases the GIL); page counting reads headers and PDF page trees only.
    A file that cannot be read or counted comes out with ``error`` set."""
    opts = options or DiscoveryOptions()
    paths = iter_paths(inputs, opts.exclude, opts.storage_options)
    describe = functools.partial(_describe_all, opts=opts)
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="ocrbatch-hash") as pool:
        while batch := list(islice(paths, per_transaction)):
            # One slice per thread, not one future per file: on a folder of small or
            # empty files the futures would cost more than the files.
            step = -(-len(batch) // threads)
            slices = [batch[i : i + step] for i in range(0, len(batch), step)]
            yield [d for part in pool.map(describe, slices) for d in part]


def _describe_all(items: list[Candidate], opts: DiscoveryOptions) -> list[DocumentRef]:
    return [_describe(item, opts) for item in items]


def describe(items: Sequence[Candidate], options: DiscoveryOptions) -> list[DocumentRef]:
    """The documents of candidates found elsewhere (a watched folder's settled files),
    described as :func:`discover` describes its own."""
    return _describe_all(list(items), options)
