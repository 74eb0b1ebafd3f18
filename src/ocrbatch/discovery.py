"""Inputs -> documents: paths, folders (recursive), globs and @list files, streamed.

Nothing here holds the whole batch: folders are walked lazily and documents come out in
batches that the caller stores before asking for more. Symlinked folders are followed
once (a symlink loop ends there), hidden files and folders are skipped.
"""

from __future__ import annotations

import contextlib
import functools
import glob
import hashlib
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

from .config import select_pages
from .errors import DocumentError, InputNotFoundError
from .model import DocumentRef
from .tools.images import IMAGE_EXTENSIONS, MULTIPAGE_EXTENSIONS, frame_sizes, open_file
from .tools.pdf import PDF_EXTENSIONS, page_sizes, plan_render

__all__ = [
    "SUPPORTED_EXTENSIONS",
    "DiscoveryOptions",
    "check_inputs",
    "discover",
    "hash_file",
    "iter_paths",
]

SUPPORTED_EXTENSIONS = IMAGE_EXTENSIONS | PDF_EXTENSIONS


@dataclass(frozen=True, slots=True)
class DiscoveryOptions:
    """What discovery needs to know to turn a file into page tasks."""

    dpi: float = 300.0
    max_pixels: int = 250_000_000
    password: str | None = None
    pages: str | None = None  # a validated --pages spec


_GLOB_CHARS = frozenset("*?[")
# A folder bigger than this is walked in the OS's order instead of sorted by name, so
# that memory stays flat on folders of 100,000+ files.
_SORT_LIMIT = 20_000


def check_inputs(inputs: Sequence[str]) -> None:
    """Fail early, before a job exists, if an input root is missing or matches nothing."""
    if not inputs:
        raise InputNotFoundError("no inputs given")
    for raw in inputs:
        if raw.startswith("@"):
            if not os.path.isfile(raw[1:]):
                raise InputNotFoundError(f"list file not found: {raw[1:]}")
        elif _GLOB_CHARS & set(raw) and not os.path.exists(raw):
            if next(glob.iglob(raw, recursive=True), None) is None:
                raise InputNotFoundError(f"no files match {raw!r}")
        elif not os.path.exists(raw):
            raise InputNotFoundError(f"input not found: {raw}")


def iter_paths(inputs: Sequence[str]) -> Iterator[tuple[str, str]]:
    """(absolute path, path relative to its input root) for every candidate file."""
    prefix_roots = len(inputs) > 1
    for raw in inputs:
        if raw.startswith("@"):
            with open(raw[1:], encoding="utf-8") as f:
                for line in f:
                    entry = line.rstrip("\n")
                    if entry.strip() and not entry.lstrip().startswith("#"):
                        yield from _expand(entry, prefix_roots=True)
        else:
            yield from _expand(raw, prefix_roots=prefix_roots)


def _expand(raw: str, *, prefix_roots: bool) -> Iterator[tuple[str, str]]:
    if os.path.isdir(raw):
        root = os.path.abspath(raw)
        label = Path(root).name if prefix_roots else ""
        for path in _walk(root, set()):
            rel = os.path.relpath(path, root)
            yield path, os.path.join(label, rel) if label else rel
    elif os.path.lexists(raw):
        path = os.path.abspath(raw)
        yield path, os.path.basename(path)
    else:
        base = os.path.abspath(_glob_base(raw))
        for match in glob.iglob(raw, recursive=True):
            if os.path.isdir(match):
                yield from _expand(match, prefix_roots=True)
            elif _supported(match):
                path = os.path.abspath(match)
                yield path, os.path.relpath(path, base)


def _glob_base(pattern: str) -> str:
    parts = Path(pattern).parts
    fixed = []
    for p in parts:
        if _GLOB_CHARS & set(p):
            break
        fixed.append(p)
    return str(Path(*fixed)) if fixed else "."


def _supported(path: str) -> bool:
    return os.path.splitext(path)[1].lower() in SUPPORTED_EXTENSIONS


def _walk(folder: str, seen: set[tuple[int, int]]) -> Iterator[str]:
    try:
        st = os.stat(folder)
    except OSError:
        return
    key = (st.st_dev, st.st_ino)
    if key in seen:  # symlink loop, or the same folder reached twice
        return
    seen.add(key)
    try:
        with os.scandir(folder) as it:
            entries: Iterator[os.DirEntry[str]] | list[os.DirEntry[str]]
            head = list(islice(it, _SORT_LIMIT + 1))
            if len(head) <= _SORT_LIMIT:
                head.sort(key=lambda e: e.name)
                entries = head
            else:
                entries = _chain(head, it)
            subdirs = []
            for e in entries:
                if e.name.startswith("."):
                    continue
                try:
                    if e.is_dir(follow_symlinks=True):
                        subdirs.append(e.path)
                    elif _supported(e.name):
                        yield e.path
                except OSError:
                    continue
    except OSError:
        return
    for d in subdirs:
        yield from _walk(d, seen)


def _chain(
    head: list[os.DirEntry[str]], rest: Iterator[os.DirEntry[str]]
) -> Iterator[os.DirEntry[str]]:
    yield from head
    yield from rest


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


def _describe(item: tuple[str, str], opts: DiscoveryOptions) -> DocumentRef:
    path, rel = item
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
    paths = iter_paths(inputs)
    describe = functools.partial(_describe_all, opts=options or DiscoveryOptions())
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="ocrbatch-hash") as pool:
        while batch := list(islice(paths, batch_size)):
            # One slice per thread, not one future per file: on a folder of small or
            # empty files the futures would cost more than the files.
            step = -(-len(batch) // threads)
            slices = [batch[i : i + step] for i in range(0, len(batch), step)]
            yield [d for part in pool.map(describe, slices) for d in part]


def _describe_all(items: list[tuple[str, str]], opts: DiscoveryOptions) -> list[DocumentRef]:
    return [_describe(item, opts) for item in items]
