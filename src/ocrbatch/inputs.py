"""The inputs a user names -> candidate files: paths, folders (recursive), globs and
@list files, walked lazily (a folder of millions of files never sits in memory); and
object-storage URLs (``s3://bucket/prefix/``, ``gs://...``, ``az://...``, ``https://...``),
listed a page at a time, each object with its size and stamp (ETag...).

Symlinked folders are followed once (a symlink loop ends there), hidden files and
folders are skipped. Nothing is dropped in silence: a folder that cannot be read, a
missing @list entry come out as candidates with their reason. Only ocrbatch's own files
(the output folder, the job database, the page cache) are left out, so that a run never
reads what an earlier run wrote.
"""

from __future__ import annotations

import errno
import glob
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import NamedTuple

from .errors import ConfigError, InputNotFoundError, OcrbatchError
from .tools.images import IMAGE_EXTENSIONS
from .tools.listing import check_source, iter_objects
from .tools.pdf import PDF_EXTENSIONS
from .tools.storage import StorageOptions, edge_error, is_url, local_path, scheme

__all__ = [
    "SUPPORTED_EXTENSIONS",
    "Candidate",
    "apart",
    "check_inputs",
    "iter_paths",
    "place",
]

SUPPORTED_EXTENSIONS = IMAGE_EXTENSIONS | PDF_EXTENSIONS

_GLOB_CHARS = frozenset("*?[")
# A folder bigger than this is walked in the OS's order instead of sorted by name, so
# that memory stays flat on folders of 100,000+ files.
_SORT_LIMIT = 20_000


def place(path: str) -> str:
    """How a place is compared with others: a local path by its real path, a URL as
    written, without a trailing slash."""
    return path.rstrip("/") if is_url(path) else os.path.realpath(local_path(path))


def check_inputs(
    inputs: Sequence[str],
    own: Sequence[tuple[str, str]] = (),
    storage_options: StorageOptions | None = None,
) -> None:
    """Fail early, before a job exists, if an input root is missing, matches nothing,
    cannot be read, or lies in one of ocrbatch's own places: ``own`` is (real path or
    URL, what) of the output folder, the job database and the caches."""
    if not inputs:
        raise InputNotFoundError("no inputs given")
    for given in inputs:
        raw = local_path(given)
        if is_url(raw):
            if scheme(raw) not in ("http", "https") and _GLOB_CHARS & set(raw.split("://")[1]):
                raise ConfigError(f"{raw}: patterns are not taken in URLs; name the prefix")
            _check_not_own(raw, raw, own)
            check_source(raw, storage_options)
            continue
        if raw.startswith("@"):
            listfile = raw[1:]
            if not os.path.isfile(listfile):
                raise InputNotFoundError(f"list file not found: {listfile}")
            try:
                with open(listfile, "rb"):
                    pass
            except OSError as exc:
                raise ConfigError(f"cannot read list file {listfile}: {_reason(exc)}") from None
            continue
        if _GLOB_CHARS & set(raw) and not os.path.exists(raw):
            _check_not_own(raw, _glob_base(raw), own)
            if next(glob.iglob(raw, recursive=True), None) is None:
                raise InputNotFoundError(f"no files match {raw!r}")
            continue
        if not os.path.exists(raw):
            raise InputNotFoundError(f"input not found: {raw}")
        _check_not_own(raw, raw, own)
        if os.path.isdir(raw):
            try:
                with os.scandir(raw) as it:
                    next(it, None)
                if not os.access(raw, os.X_OK):  # its names list, but none opens
                    raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
            except OSError as exc:
                raise ConfigError(f"cannot read input folder {raw}: {_reason(exc)}") from None
        elif not os.access(raw, os.R_OK):
            raise ConfigError(f"cannot read input file {raw}: {os.strerror(errno.EACCES)}")


def _check_not_own(raw: str, path: str, own: Sequence[tuple[str, str]]) -> None:
    hit = _owner(place(path), _places(own))
    if hit is not None:
        raise ConfigError(
            f"input {raw} is in {hit[1]} {hit[0]}: ocrbatch never reads its own files"
        )


def _places(own: Iterable[tuple[str, str]]) -> dict[str, str]:
    places: dict[str, str] = {}
    for path, what in own:
        places.setdefault(path, what)  # the first says it best: "the output folder"
    return places


def _owner(real: str, own: Mapping[str, str]) -> tuple[str, str] | None:
    """The (path, what) of ``own`` that the real path ``real`` is, or lies under: one
    look-up per folder up the path, however many places ``own`` has."""
    if not own:
        return None
    path = real
    while True:
        what = own.get(path)
        if what is not None:
            return path, what
        parent = os.path.dirname(path)
        if parent == path:
            return None
        path = parent


def apart(inputs: Sequence[str], places: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The (real path, what) of ``places`` that hold none of the inputs named on the
    command line: an input the user names inside such a place (the output folder of an
    earlier job) is read as asked, while a walk from elsewhere still leaves it out."""
    named = [
        place(raw if is_url(raw) or not _GLOB_CHARS & set(raw) else _glob_base(raw))
        for raw in inputs
        if not raw.startswith("@")
    ]
    return [(p, what) for p, what in places if not any(_owner(n, {p: what}) for n in named)]


def _reason(exc: OSError) -> str:
    return exc.strerror or os.strerror(exc.errno or errno.EIO)


class Candidate(NamedTuple):
    """A path discovery found: a file to describe, or (``error`` set) an entry it could not
    read, such as a folder without permission or a missing @list entry, which is
    recorded as a failed document so that nothing is silently left out. An object found
    in a listing comes with its ``size`` and ``stamp`` (what changes when it does)."""

    path: str
    rel_path: str
    error: str | None = None
    size: int | None = None
    stamp: str | None = None


@dataclass
class _Walk:
    """The exclusions of one discovery, and the folders one root has already walked."""

    own: dict[str, str]
    seen: set[tuple[int, int]] = field(default_factory=set)

    def owned(self, path: str) -> tuple[str, str] | None:
        return _owner(os.path.realpath(path), self.own) if self.own else None


def iter_paths(
    inputs: Sequence[str],
    exclude: Sequence[tuple[str, str]] = (),
    storage_options: StorageOptions | None = None,
) -> Iterator[Candidate]:
    """Every candidate file of ``inputs``, with its path relative to its input.

    One input keeps paths relative to it (a folder's tree, a glob's fixed part, a file's
    name). With several, each path starts with its input as written (``r1/data/x.png``,
    ``r2/data/x.png``), as do @list entries; an absolute input, or one that climbs out
    with ``..``, as its absolute path without the leading ``/``. Nothing under
    ``exclude`` (real path, what), the tool's own files, is ever a candidate.
    """
    own = tuple(exclude)
    several = len(inputs) > 1
    for given in inputs:
        if given.startswith("@"):
            listfile = given[1:]
            with open(listfile, encoding="utf-8") as f:
                for line in f:
                    text = line.rstrip("\r\n")
                    if text.strip() and not text.lstrip().startswith("#"):
                        entry = local_path(text)
                        yield from _expand(
                            entry, _label(entry), own, storage_options, listed=listfile
                        )
        else:
            raw = local_path(given)
            yield from _expand(raw, _label(raw) if several else None, own, storage_options)


def _label(raw: str) -> str:
    if is_url(raw):  # s3://scans/2026/ -> scans/2026
        return raw.split("://", 1)[1].strip("/")
    norm = os.path.normpath(raw)
    if os.path.isabs(norm) or norm == os.pardir or norm.startswith(os.pardir + os.sep):
        norm = os.path.abspath(raw).lstrip(os.sep)
    return "" if norm == os.curdir else norm


def _join(label: str | None, rel: str) -> str:
    return f"{label}{os.sep}{rel}" if label and rel else label or rel


def _expand(
    raw: str,
    label: str | None,
    own: tuple[tuple[str, str], ...],
    storage_options: StorageOptions | None = None,
    *,
    listed: str | None = None,
) -> Iterator[Candidate]:
    """The candidates of one input the user named (``label``: its rel path prefix, None
    when it is the only input)."""
    if is_url(raw):
        yield from _objects(raw, label, own, storage_options)
        return
    ctx = _Walk(_places(own))
    path = os.path.abspath(raw)
    if os.path.lexists(raw):
        name = _label(raw) if label is None else label
        hit = ctx.owned(path)
        if hit is not None:  # named by the user, so reported, never silently dropped
            reason = f"is in {hit[1]} {hit[0]}: ocrbatch never reads its own files"
            yield Candidate(path, name or os.path.basename(path), reason)
        elif os.path.isdir(raw):
            for c in _walk(path, "", ctx):
                yield c._replace(rel_path=_join(label, c.rel_path) or os.path.basename(path))
        else:
            yield Candidate(path, label or os.path.basename(path))
    elif _GLOB_CHARS & set(raw):
        base = os.path.abspath(_glob_base(raw))
        matched = False
        for match in glob.iglob(raw, recursive=True):
            matched = True
            if not (os.path.isdir(match) or _supported(match)) or ctx.owned(match):
                continue
            found = os.path.abspath(match)
            prefix = _label(match) if label is not None else _below(found, base)
            if os.path.isdir(match):
                for c in _walk(found, "", ctx):
                    rel = _join(prefix, c.rel_path) or os.path.basename(found)
                    yield c._replace(rel_path=rel)
            else:
                yield Candidate(found, prefix)
        if not matched and listed is not None:
            yield Candidate(path, label or raw, f"no files match {raw!r} (listed in {listed})")
    else:
        where = f" (listed in {listed})" if listed is not None else ""
        yield Candidate(path, label or os.path.basename(path), f"file not found{where}")


def _objects(
    url: str,
    label: str | None,
    own: tuple[tuple[str, str], ...],
    storage_options: StorageOptions | None,
) -> Iterator[Candidate]:
    """The objects at or below ``url``; ocrbatch's own outputs there are left out. A
    listing that fails midway is one failed candidate with its reason."""
    places = _places(own)
    hit = _owner(place(url), places)
    if hit is not None:
        reason = f"is in {hit[1]} {hit[0]}: ocrbatch never reads its own files"
        yield Candidate(url, label or _label(url), reason)
        return
    try:
        for o in iter_objects(
            url, storage_options, want=_supported, skip=lambda u: _owner(u, places) is not None
        ):
            # A prefix's objects keep their tree below it; an object named alone, its name.
            rel = (label or o.rel) if o.url == url else _join(label, o.rel)
            yield Candidate(o.url, rel, None, o.size, o.stamp)
    except OcrbatchError as exc:
        yield Candidate(url, label or _label(url), exc.message)
    except Exception as exc:
        yield Candidate(url, label or _label(url), edge_error(exc, url, "list").message)


def _below(path: str, base: str) -> str:
    rel = os.path.relpath(path, base)
    # A glob like */../../x.png matches outside its fixed part.
    if rel == os.pardir or rel.startswith(os.pardir + os.sep):
        return path.lstrip(os.sep)
    return "" if rel == os.curdir else rel


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


def _walk(folder: str, rel: str, ctx: _Walk) -> Iterator[Candidate]:
    """Candidates under ``folder`` (``rel``: its path below the root). A folder that cannot
    be read is a failed candidate, and so is an entry that cannot even be stat'ed."""
    try:
        st = os.stat(folder)
    except OSError as exc:
        yield Candidate(folder, rel, f"cannot read folder: {_reason(exc)}")
        return
    key = (st.st_dev, st.st_ino)
    if key in ctx.seen:  # symlink loop, or the same folder reached twice
        return
    ctx.seen.add(key)
    real = os.path.realpath(folder) if ctx.own else ""
    subdirs: list[tuple[str, str]] = []
    try:
        with os.scandir(folder) as it:
            entries: Iterator[os.DirEntry[str]] | list[os.DirEntry[str]]
            head = list(islice(it, _SORT_LIMIT + 1))
            if len(head) <= _SORT_LIMIT:
                head.sort(key=lambda e: e.name)
                entries = head
            else:
                entries = _chain(head, it)
            for e in entries:
                if e.name.startswith("."):
                    continue
                child = _join(rel, e.name)
                try:
                    # The tool's own output, database or cache. Not a symlink: its real
                    # path is its folder's plus its name, and the folders above were
                    # checked on the way down (one look-up per entry).
                    if ctx.own and (
                        ctx.owned(e.path)
                        if e.is_symlink()
                        else os.path.join(real, e.name) in ctx.own
                    ):
                        continue
                    is_dir = e.is_dir(follow_symlinks=True)
                except OSError as exc:  # e.g. a symlink loop: reported, never dropped
                    if _supported(e.name):
                        yield Candidate(e.path, child)  # its reason comes from opening it
                    else:
                        yield Candidate(e.path, child, f"cannot read: {_reason(exc)}")
                    continue
                if is_dir:
                    subdirs.append((e.path, child))
                elif _supported(e.name):
                    yield Candidate(e.path, child)
    except OSError as exc:
        yield Candidate(folder, rel, f"cannot read folder: {_reason(exc)}")
    for d, child in subdirs:
        yield from _walk(d, child, ctx)


def _chain(
    head: list[os.DirEntry[str]], rest: Iterator[os.DirEntry[str]]
) -> Iterator[os.DirEntry[str]]:
    yield from head
    yield from rest
