"""ocrbatch: resumable, supervised batch OCR.

The Python API mirrors the CLI, with its option names: ``ocrbatch.run(inputs,
out=..., workers=2, format="jsonl,pdf")`` returns the summary; ``submit``, ``resume``,
``retry_failed``, ``export``, ``evaluate``, ``job_status``, ``list_jobs``, ``pause``,
``cancel``; ``submit(..., queue=...)``, ``work`` and ``release`` for the job queue;
``watch`` for a standing job on a folder or bucket prefix.
:class:`RunConfig` holds every option (its fields are the CLI's options); every error
is an :class:`OcrbatchError` with a one-line message (``ConfigError`` for bad options).
The API is imported lazily so that worker processes, which import
``ocrbatch.pipeline``, never load the store or SQLAlchemy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "OcrbatchError",
    "RunConfig",
    "__version__",
    "cancel",
    "evaluate",
    "export",
    "job_status",
    "list_jobs",
    "pause",
    "release",
    "resume",
    "retry_failed",
    "run",
    "submit",
    "watch",
    "work",
]

if TYPE_CHECKING:
    from .config import RunConfig
    from .errors import ConfigError, OcrbatchError
    from .service import (
        cancel,
        evaluate,
        export,
        job_status,
        list_jobs,
        pause,
        release,
        resume,
        retry_failed,
        run,
        submit,
        work,
    )
    from .standing import watch


_LIGHT = {"ConfigError": "errors", "OcrbatchError": "errors", "RunConfig": "config"}


def __getattr__(name: str) -> Any:
    if name in _LIGHT:
        import importlib

        return getattr(importlib.import_module(f".{_LIGHT[name]}", __name__), name)
    if name == "watch":
        from . import standing

        return standing.watch
    if name in __all__ and name != "__version__":
        from . import service

        return getattr(service, name)
    raise AttributeError(f"module 'ocrbatch' has no attribute {name!r}")
