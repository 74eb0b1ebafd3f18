"""The workers' local copies of objects ("local SSD cache"): each document's object is
downloaded once per machine, whatever number of its pages run there and in whichever
worker processes, and kept under a size cap for the next page, job or run.

An entry is ``<key[:2]>/<key>/<file name>`` (the object's own name, so that messages and
engines see it), keyed by the object's URL and identity (the content hash discovery
stored): an object that changed since is another entry. A worker downloads exactly what
discovery saw: on S3 one GET conditional on the ETag (If-Match), elsewhere a HEAD that
checks the identity first; a changed object fails its pages with a reason, never OCRs
other content than the job recorded. The download goes
to a temp file renamed into place, under an exclusive lock per entry, so two workers
never fetch the same object at once and none ever reads half a file. Least recently used
entries go first when the cap is passed, but never one used in the last minute (a
worker may be reading it).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import posixpath
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

from ..errors import DocumentError
from .storage import (
    CHANGED,
    StorageOptions,
    conditional,
    download,
    etag_of,
    identity,
    object_info,
    stamp_of,
    with_retries,
)

__all__ = ["ObjectCache", "local_copy"]

# An entry used this recently is never evicted: a worker may be about to read it. (The
# per-entry lock only saves a second download: two workers that race past it both write
# whole files renamed into place, so a reader never sees half of one.)
_IN_USE_SECONDS = 60.0


class ObjectCache:
    """A folder of local copies of objects holding about ``max_bytes`` (0: a copy is
    still made, and removed once it has not been used for a minute)."""

    def __init__(self, folder: str | os.PathLike[str], max_bytes: int) -> None:
        self.folder = Path(folder)
        self.max_bytes = max_bytes
        self._size: int | None = None

    def local(
        self,
        url: str,
        content_hash: str | None,
        options: StorageOptions | None = None,
        *,
        stamp: str | None = None,
    ) -> str:
        """A local file with the object's content (downloaded now unless the cache
        holds it); ``stamp``: the object's stamp at discovery (its ETag: a conditional
        download). Raises a DocumentError (retryable when a retry may help)."""
        name = posixpath.basename(urlsplit(url).path) or "object"
        key = hashlib.blake2b(f"{url}\0{content_hash}".encode(), digest_size=20).hexdigest()
        entry = self.folder / key[:2] / key
        path = entry / name
        if _touch(path):
            return str(path)
        entry.mkdir(parents=True, exist_ok=True)
        with _locked(entry.with_suffix(".lock")):
            if _touch(path):  # another worker fetched it while we waited
                return str(path)
            etag = etag_of(stamp) if conditional(url) else None
            if content_hash and etag is None:
                info = with_retries(lambda: object_info(url, options), url)
                if identity(url, stamp_of(info)) != content_hash:
                    raise DocumentError(CHANGED)
            fd, tmp = tempfile.mkstemp(dir=entry, prefix=".tmp-")
            os.close(fd)
            try:
                download(url, tmp, options, etag=etag)
                os.replace(tmp, path)
            finally:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
        self._grow(path.stat().st_size)
        return str(path)

    def _grow(self, added: int) -> None:
        if self._size is None:
            self._size = self.size()
        else:
            self._size += added
        if self._size > self.max_bytes:
            self._size = self.evict(int(self.max_bytes * 0.9))

    def _entries(self) -> list[tuple[Path, float, int]]:
        """(entry folder, last use, bytes) of every entry."""
        out: list[tuple[Path, float, int]] = []
        if not self.folder.is_dir():
            return out
        for sub in self.folder.iterdir():
            if not sub.is_dir():
                continue
            for entry in sub.iterdir():
                if not entry.is_dir():
                    continue
                with contextlib.suppress(OSError):
                    files = [f.stat() for f in entry.iterdir() if not f.name.startswith(".")]
                    if files:
                        out.append(
                            (entry, max(f.st_mtime for f in files), sum(f.st_size for f in files))
                        )
        return out

    def size(self) -> int:
        """Bytes in the cache now."""
        return sum(n for _, _, n in self._entries())

    def evict(self, target: int) -> int:
        """Remove least recently used entries (none used in the last minute) until at
        most ``target`` bytes remain; returns the bytes left."""
        entries = sorted(self._entries(), key=lambda e: e[1])
        total = sum(n for _, _, n in entries)
        now = time.time()
        for entry, used, n in entries:
            if total <= target:
                break
            if now - used < _IN_USE_SECONDS:
                continue
            with contextlib.suppress(OSError), _locked(entry.with_suffix(".lock"), wait=False):
                for f in entry.iterdir():
                    f.unlink()
                entry.rmdir()
                entry.with_suffix(".lock").unlink()
                total -= n
        return total


_caches: dict[tuple[str, int], ObjectCache] = {}


def local_copy(
    url: str,
    content_hash: str | None,
    options: StorageOptions | None,
    folder: str,
    max_bytes: int,
    *,
    stamp: str | None = None,
) -> str:
    """:meth:`ObjectCache.local` on this process's cache at ``folder`` (one instance per
    folder and cap, kept: it counts its bytes once)."""
    cache = _caches.get((folder, max_bytes))
    if cache is None:
        cache = _caches[(folder, max_bytes)] = ObjectCache(folder, max_bytes)
    return cache.local(url, content_hash, options, stamp=stamp)


def _touch(path: Path) -> bool:
    """Mark a cached copy used now; False when there is none."""
    try:
        os.utime(path)
    except OSError:
        return False
    return True


@contextlib.contextmanager
def _locked(lock: Path, *, wait: bool = True) -> Iterator[None]:
    """An exclusive lock on the file ``lock`` (between the processes of this machine);
    without ``wait``, BlockingIOError (an OSError) if another holds it."""
    fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        yield
    finally:
        os.close(fd)
