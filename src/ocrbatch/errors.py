"""One error tree for ocrbatch.

Every error a person can see is an :class:`OcrbatchError`; each class carries the exit
code the CLI returns for it. Foreign exceptions are translated at the boundary that meets
them (image loading, the store, the pool), so the message is a one-line reason a person
can act on, never a traceback.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

__all__ = [
    "EXIT_CANCELLED",
    "EXIT_DOCUMENTS_FAILED",
    "EXIT_JOB_FAILED",
    "EXIT_PAUSED",
    "ConfigError",
    "DocumentError",
    "EngineError",
    "InputNotFoundError",
    "JobNotFoundError",
    "JobStateError",
    "ObjectStorageError",
    "OcrbatchError",
    "OutputError",
    "StoreError",
    "TaskCancelledError",
    "TaskTimeoutError",
    "Translation",
    "WorkerCrashedError",
    "WorkerStartError",
    "one_line",
    "page_error",
    "reason",
    "translate",
]


# Exit codes of a job that ran to its end without an error of its own (the errors below
# carry theirs: 2 usage or config, 3 output, 4 store, 5 no such job, 6 job state,
# 7 workers could not start; 1 is an unexpected error).
EXIT_DOCUMENTS_FAILED = 8  # finished, but some documents failed (see --fail-under)
EXIT_JOB_FAILED = 9  # finished, and every document failed
EXIT_CANCELLED = 10  # the job was cancelled
EXIT_PAUSED = 130  # paused (Ctrl-C, `ocrbatch pause`): `resume` continues it


class OcrbatchError(Exception):
    """Base of every ocrbatch error; ``exit_code`` is what the CLI exits with."""

    exit_code: int = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(OcrbatchError):
    """A bad option, flag, environment variable or URL."""

    exit_code = 2


class InputNotFoundError(ConfigError):
    """An input root (path, folder, glob, list file) that does not exist or matches nothing."""


class OutputError(OcrbatchError):
    """The output folder cannot be created or written."""

    exit_code = 3


class StoreError(OcrbatchError):
    """The job store cannot be opened, migrated or written."""

    exit_code = 4


class JobNotFoundError(OcrbatchError):
    """No job with that id or name."""

    exit_code = 5


class JobStateError(OcrbatchError):
    """The job is in a state that does not allow the request (e.g. resume a completed job)."""

    exit_code = 6


class WorkerStartError(OcrbatchError):
    """Worker processes cannot start (they exit while starting up): no page can run, so
    the job stops at once instead of failing every page or waiting forever."""

    exit_code = 7


class DocumentError(OcrbatchError):
    """One document or page cannot be processed: the batch records it and goes on.

    ``retryable`` is False for faults of the input itself (corrupt, empty, not an image):
    trying again cannot help.
    """

    kind = "input"
    retryable = False


class EngineError(DocumentError):
    """The OCR engine failed on a page (may be transient)."""

    kind = "engine"
    retryable = True


class TaskTimeoutError(DocumentError):
    """A page ran past the per-document timeout; its worker was killed and replaced."""

    kind = "timeout"
    retryable = True


class WorkerCrashedError(DocumentError):
    """The worker process died (segfault, os._exit, OOM kill) while on this page."""

    kind = "crash"
    retryable = True


class ObjectStorageError(DocumentError):
    """Object storage (S3, GCS, Azure, HTTP) failed on a document's object in a way that
    a retry may cure: throttled past the storage library's own retries, a 5xx, a
    connection that dropped. Not found and access denied are plain DocumentErrors."""

    kind = "storage"
    retryable = True


class TaskCancelledError(DocumentError):
    """The page's job was paused or cancelled while the page ran (not the page's fault)."""

    kind = "cancelled"
    retryable = True


Translation = Callable[[BaseException], OcrbatchError]


def one_line(text: str, limit: int = 300) -> str:
    """``text`` on one line (runs of white space, newlines included, become one space),
    at most ``limit`` characters."""
    return " ".join(text.split())[:limit]


def reason(exc: BaseException, limit: int = 300, *, with_type: bool = True) -> str:
    """``exc`` as one line a person can act on: an ocrbatch error's own message; an
    OSError's text and file; anything else as ``Type: message`` (just the message
    without ``with_type``, where the caller's words already say what failed)."""
    if isinstance(exc, OcrbatchError):
        text = exc.message
    elif isinstance(exc, OSError) and exc.strerror:
        text = f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    elif str(exc):
        text = f"{type(exc).__name__}: {exc}" if with_type else str(exc)
    else:
        text = type(exc).__name__
    return one_line(text, limit)


def translate(
    exc: BaseException,
    mapping: Mapping[type[BaseException], Translation] | None = None,
    *,
    default: type[OcrbatchError] = EngineError,
    prefix: str = "",
) -> OcrbatchError:
    """Any exception as an ocrbatch error with its one-line reason: the one place where
    foreign exceptions become ours (as httpx's ``map_httpcore_exceptions``). The
    boundary that meets a foreign library passes its ``mapping`` (foreign type -> how
    it reads as ours: pebble's expired process is a crash, SQLAlchemy's errors are the
    store's...); ocrbatch errors pass through; anything else becomes ``default`` with
    ``prefix`` before its reason."""
    if isinstance(exc, OcrbatchError):
        return exc
    for foreign, ours in (mapping or {}).items():
        if isinstance(exc, foreign):
            return ours(exc)
    if isinstance(exc, MemoryError):
        return EngineError("out of memory on this page")
    return default(prefix + reason(exc))


def page_error(exc: BaseException, prefix: str = "engine error: ") -> DocumentError:
    """What one page failed with, for its outcome: a DocumentError passes through,
    another ocrbatch error (a bad option met while reading the page) is an engine error
    with its message, anything else an engine error ``prefix`` + its reason."""
    err = translate(exc, prefix=prefix)
    return err if isinstance(err, DocumentError) else EngineError(err.message)
