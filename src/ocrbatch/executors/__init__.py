"""Executors: the only code that knows about processes (and later Ray).

Imported lazily (PEP 562), so that :mod:`ocrbatch.executors.forkserver` can start the
pool's forkserver at the command's entry without importing the pipeline first.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .base import (
        Executor,
        available_cores,
        default_workers,
        make_executor,
        preflight,
        refuse_in_worker_startup,
    )

__all__ = [
    "Executor",
    "available_cores",
    "default_workers",
    "make_executor",
    "preflight",
    "refuse_in_worker_startup",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module(".base", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
