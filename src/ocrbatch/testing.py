"""Fakes shipped with the package, for unit tests of logic and for fault injection.

``FakeEngine`` is registered as the ``fake`` engine, so it runs through the real pool,
store and CLI: ``ocrbatch run --engine fake --engine-opt hang_on=slow``.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .engines import EngineBase, EngineInfo
from .errors import DocumentError, EngineError
from .model import Block, Line, PageTask, PageText, Word
from .store import Store

__all__ = ["FakeBatchEngine", "FakeBatchOptions", "FakeEngine", "FakeOptions", "memory_store"]


class FakeOptions(BaseModel):
    """Behaviour of the fake engine; every ``*_on`` matches a substring of the file name."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    text: str = "fake text of {name} page {page}"
    delay: float = Field(0.0, ge=0)
    read_image: bool = True  # False: skip decoding, measure the coordinator alone
    fail_on: tuple[str, ...] = ()  # raise an engine error (retryable)
    bad_on: tuple[str, ...] = ()  # raise an input error (not retryable)
    hang_on: tuple[str, ...] = ()  # sleep forever (until the pool's timeout kills it)
    crash_on: tuple[str, ...] = ()  # os._exit(3): the worker process dies
    segfault_on: tuple[str, ...] = ()  # SIGSEGV to itself
    crash_attempts: int = 1_000_000  # crash/fail only while attempt <= this

    @field_validator("fail_on", "bad_on", "hang_on", "crash_on", "segfault_on", mode="before")
    @classmethod
    def _split(cls, v: Any) -> Any:
        return tuple(p for p in v.split(",") if p) if isinstance(v, str) else v


class FakeEngine(EngineBase):
    """An engine with scripted behaviour; no models, no Tesseract."""

    name: ClassVar[str] = "fake"
    options_model: ClassVar[type[FakeOptions]] = FakeOptions
    memory_per_worker_mb: ClassVar[int] = 50
    for_tests: ClassVar[bool] = True

    def __init__(
        self, options: Mapping[str, Any], *, timeout: float | None = None, threads: int = 1
    ) -> None:
        self.options = FakeOptions(**options)
        self.timeout = timeout
        self.threads = threads
        self.reads_image = self.options.read_image
        self.opened = False

    @classmethod
    def info(cls) -> EngineInfo:
        from . import __version__

        return EngineInfo(cls.name, __version__, ("any",), "cpu")

    def open(self) -> None:
        self.opened = True

    def close(self) -> None:
        self.opened = False

    def recognize(self, image: Any, task: PageTask) -> PageText:
        o = self.options

        name = os.path.basename(task.path)

        def hit(patterns: tuple[str, ...]) -> bool:
            return task.attempt <= o.crash_attempts and any(p in name for p in patterns)

        if hit(o.segfault_on):
            os.kill(os.getpid(), signal.SIGSEGV)
        if hit(o.crash_on):
            os._exit(3)
        if hit(o.hang_on):
            while True:
                time.sleep(3600)
        if hit(o.bad_on):
            raise DocumentError("fake: unreadable document")
        if hit(o.fail_on):
            raise EngineError("fake: engine failure")
        if o.delay:
            time.sleep(o.delay)
        text = o.text.format(name=name, page=task.page_index + 1)
        w, h = image.size if image is not None else (100, 100)
        words = tuple(Word(t, (i * 10, 0, i * 10 + 9, 10), 0.9) for i, t in enumerate(text.split()))
        blocks = (Block((Line(words, (0, 0, w, 10), 0.9),), (0, 0, w, 10)),) if words else ()
        return PageText(
            text=text, confidence=0.9 if words else 0.0, width=w, height=h, blocks=blocks
        )


class FakeBatchOptions(FakeOptions):
    """The fake engine's options plus the batch size of its batch variant."""

    batch: int = Field(4, ge=1)


class _Size:
    """Stands in for an image: only its size is read."""

    def __init__(self, size: tuple[int, int]) -> None:
        self.size = size


class FakeBatchEngine(FakeEngine):
    """The fake engine as a batch engine (``fake-batch``): ``prepare`` keeps the task and
    image size, ``recognize_batch`` scripts each page like :class:`FakeEngine` (so a crash
    kills the device worker) and says in each page's text how many pages its batch had."""

    name: ClassVar[str] = "fake-batch"
    options_model: ClassVar[type[FakeOptions]] = FakeBatchOptions
    batched: ClassVar[bool] = True

    def __init__(
        self, options: Mapping[str, Any], *, timeout: float | None = None, threads: int = 1
    ) -> None:
        opts = FakeBatchOptions(**options)
        super().__init__(opts.model_dump(exclude={"batch"}), timeout=timeout)
        self.batch_size = opts.batch

    @classmethod
    def pages_per_batch(cls, options: Mapping[str, Any]) -> int:
        return FakeBatchOptions(**options).batch

    def prepare(self, image: Any, task: PageTask | None = None) -> Any:
        return (task, image.size if image is not None else (100, 100))

    def recognize_batch(self, pages: Sequence[Any]) -> list[PageText]:
        out = []
        for task, size in pages:
            page = self.recognize(_Size(size), task)
            out.append(
                PageText(
                    page.text + f" (batch of {len(pages)})",
                    page.confidence,
                    page.width,
                    page.height,
                    page.blocks,
                )
            )
        return out


def memory_store() -> Store:
    """A fresh job store in memory (same code as the SQLite file store)."""
    return Store("sqlite://")
