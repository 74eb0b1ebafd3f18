"""Executors: the only code that knows about processes (and later Ray)."""

from __future__ import annotations

from .base import Executor, default_workers, make_executor

__all__ = ["Executor", "default_workers", "make_executor"]
