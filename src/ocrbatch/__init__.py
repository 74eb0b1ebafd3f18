"""ocrbatch: resumable, supervised batch OCR.

The Python API mirrors the CLI: ``ocrbatch.run(inputs, out=...)`` returns the summary;
``submit``, ``resume``, ``retry_failed``, ``export``, ``job_status``, ``cancel``;
``submit(..., queue=...)``, ``work`` and ``release`` for the job queue.
The API is imported lazily so that worker processes, which import
``ocrbatch.pipeline``, never load the store or SQLAlchemy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
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
    "work",
]

if TYPE_CHECKING:
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


def __getattr__(name: str) -> Any:
    if name in __all__ and name != "__version__":
        from . import service

        return getattr(service, name)
    raise AttributeError(f"module 'ocrbatch' has no attribute {name!r}")
