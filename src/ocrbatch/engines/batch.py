"""The batch seam: engines that recognize many pages per call (GPU engines).

Such an engine splits a page in two: ``prepare`` (CPU: the image -> plain, picklable
data; usable before ``open`` and without the models, so executors run it in CPU worker
processes) and ``recognize_batch`` (the device: prepared pages -> PageTexts). An engine
may also split ``recognize_batch`` into ``detect`` and ``read``; an executor then overlaps
the CPU part of one batch with the device part of the next.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from ..model import PageTask, PageText
from .base import Engine, engine_class

__all__ = ["BatchEngine", "TwoPhaseEngine", "is_batch_engine"]


@runtime_checkable
class BatchEngine(Engine, Protocol):
    """An engine that takes batches of prepared pages."""

    @property
    def batch_size(self) -> int:
        """Pages per device call."""
        ...

    def prepare(self, image: Any, task: PageTask | None = None) -> Any: ...

    def recognize_batch(self, pages: Sequence[Any]) -> list[PageText]: ...


@runtime_checkable
class TwoPhaseEngine(BatchEngine, Protocol):
    """A batch engine whose device work has two phases with CPU work between them."""

    def detect(self, pages: Sequence[Any]) -> Any: ...

    def read(self, detected: Any) -> list[PageText]: ...


def is_batch_engine(name: str) -> bool:
    """True if the engine registered as ``name`` declares ``batched = True``."""
    return engine_class(name).batched
