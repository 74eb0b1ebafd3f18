"""Opening an input file without ever blocking: only regular files are documents.

A FIFO named ``pipe.png`` blocks a plain ``open()`` until a writer comes (forever), a
symlink to ``/dev/zero`` reads forever, a socket cannot be opened at all. The file is
stat'ed first (a device is never even opened: opening some has side effects), then
opened non-blocking and checked again on the open handle, in case it was swapped.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from typing import IO

from ..errors import DocumentError

__all__ = ["check_regular", "open_file"]

_KINDS = (
    (stat.S_ISFIFO, "FIFO"),
    (stat.S_ISSOCK, "socket"),
    (stat.S_ISCHR, "character device"),
    (stat.S_ISBLK, "block device"),
)


def _not_regular(mode: int) -> DocumentError | None:
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return DocumentError("is a directory, not a file")
    kind = next((name for test, name in _KINDS if test(mode)), "unknown kind")
    return DocumentError(f"not a regular file ({kind})")


def _os_error(path: str, exc: OSError) -> DocumentError:
    if isinstance(exc, FileNotFoundError):
        if os.path.islink(path):
            return DocumentError("broken symbolic link (its target does not exist)")
        return DocumentError("file not found (moved or deleted after discovery?)")
    if isinstance(exc, PermissionError):
        return DocumentError("permission denied: cannot read the file")
    if isinstance(exc, IsADirectoryError):
        return DocumentError("is a directory, not a file")
    return DocumentError(f"cannot open file: {os.strerror(exc.errno or errno.EIO)}")


def check_regular(path: str) -> os.stat_result:
    """The stat of ``path`` (symlinks followed) if it is a regular file; else a one-line
    DocumentError (missing, unreadable, a folder, a FIFO, socket or device)."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise _os_error(path, exc) from None
    bad = _not_regular(st.st_mode)
    if bad is not None:
        raise bad
    return st


def open_file(path: str) -> IO[bytes]:
    """Open ``path`` for reading, translating OS errors into one-line document errors.

    Never blocks: anything but a non-empty regular file is a DocumentError.
    """
    check_regular(path)
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise _os_error(path, exc) from None
    try:
        st = os.fstat(fd)
        bad = _not_regular(st.st_mode)  # swapped for a FIFO or device since the stat
        if bad is not None:
            raise bad
        if st.st_size == 0:
            raise DocumentError("empty file (0 bytes)")
        # Reads of a regular file never block; blocking mode keeps file objects simple.
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
