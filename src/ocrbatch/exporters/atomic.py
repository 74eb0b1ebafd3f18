"""Write a file so that it appears whole or not at all."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_bytes_writer", "atomic_writer"]


@contextlib.contextmanager
def _atomic(path: Path, mode: str, **kw: Any) -> Iterator[IO[Any]]:
    """A handle to a temp file beside ``path``, fsynced and renamed over it on success."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
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


def atomic_writer(
    path: Path, *, newline: str | None = None
) -> contextlib.AbstractContextManager[IO[str]]:
    """Text file handle to a temp file beside ``path``; renamed over it on success."""
    return _atomic(path, "w", encoding="utf-8", newline=newline)


def atomic_bytes_writer(path: Path) -> contextlib.AbstractContextManager[IO[bytes]]:
    """Binary file handle to a temp file beside ``path``; renamed over it on success."""
    return _atomic(path, "wb")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
