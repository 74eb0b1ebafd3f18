"""Write a file so that it appears whole or not at all, and clear the temp files that a
killed writer left behind.

A temp file is named ``.ocrbatch-<pid>-<host>-<random>.tmp`` beside its target: short
(never derived from the target's name, which may already be near the file-system limit
of 255 bytes), and it says who wrote it, so that :func:`remove_stale_temp_files` removes
only ours whose writer is dead on this host and never disturbs a live, concurrent one.

Inside :func:`publishing`, each file is handed on as soon as it is whole (the outputs of
a job whose ``--out`` is a bucket are written to a local staging folder, and each file is
uploaded as one object and removed there): the exporters write the same way for both.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import os
import re
import socket
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

__all__ = [
    "atomic_bytes_writer",
    "atomic_writer",
    "publishing",
    "remove_stale_temp_files",
    "temp_prefix",
]

TEMP_SUFFIX = ".tmp"
_PUBLISH: contextvars.ContextVar[Callable[[Path], None] | None] = contextvars.ContextVar(
    "ocrbatch_publish", default=None
)
# mkstemp's random part is 8 of [a-z0-9_]; the pid has at most 7 digits on Linux.
_TEMP_NAME = re.compile(r"\.ocrbatch-(\d{1,10})-([0-9a-f]{6})-[a-z0-9_]{1,32}\.tmp")


def _host_tag() -> str:
    # Output folders may be shared (NFS): a pid means something on its own host only.
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:6]


def temp_prefix() -> str:
    """The name prefix of this process's temp files (see the module docstring)."""
    return f".ocrbatch-{os.getpid()}-{_host_tag()}-"


@contextlib.contextmanager
def _atomic(path: Path, mode: str, **kw: Any) -> Iterator[IO[Any]]:
    """A handle to a temp file beside ``path``, fsynced and renamed over it on success."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(), suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; results are ordinary files
        with os.fdopen(fd, mode, **kw) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    publish = _PUBLISH.get()
    if publish is not None:
        publish(path)


@contextlib.contextmanager
def publishing(hand_on: Callable[[Path], None]) -> Iterator[None]:
    """While inside, every file written here is given to ``hand_on`` once it is whole
    (which may upload it and remove the local copy); its errors are the writer's."""
    token = _PUBLISH.set(hand_on)
    try:
        yield
    finally:
        _PUBLISH.reset(token)


def atomic_writer(
    path: Path, *, newline: str | None = None
) -> contextlib.AbstractContextManager[IO[str]]:
    """Text file handle to a temp file beside ``path``; renamed over it on success."""
    return _atomic(path, "w", encoding="utf-8", newline=newline)


def atomic_bytes_writer(path: Path) -> contextlib.AbstractContextManager[IO[bytes]]:
    """Binary file handle to a temp file beside ``path``; renamed over it on success."""
    return _atomic(path, "wb")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True  # someone else's process, or not a pid we can judge: keep the file
    return True


def remove_stale_temp_files(folder: Path, *, recursive: bool = True) -> int:
    """Remove, in ``folder`` (and below it if ``recursive``), the temp files of ocrbatch
    writers of this host whose process is gone (a writer killed with SIGKILL cannot clean
    up after itself); returns how many were removed. Other files, and those of live
    writers or of other hosts, are left alone; symlinks are not followed."""
    host = _host_tag()
    removed = 0
    for top, dirs, files in os.walk(folder):
        if not recursive:
            dirs.clear()
        for name in files:
            m = _TEMP_NAME.fullmatch(name)
            if m is None or m.group(2) != host or _alive(int(m.group(1))):
                continue
            path = os.path.join(top, name)
            with contextlib.suppress(OSError):
                if stat.S_ISREG(os.lstat(path).st_mode):
                    os.unlink(path)
                    removed += 1
    return removed


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
