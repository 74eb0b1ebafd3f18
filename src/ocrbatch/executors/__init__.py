"""Executors: the only code that knows about processes (and later Ray)."""

from __future__ import annotations

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
