"""Plain data that flows through ocrbatch: tasks in, outcomes out, recognized text.

Everything here is a frozen dataclass of builtins so it pickles cheaply across a process
or Ray boundary (principle 1). ``to_dict``/``from_dict`` give the JSON shape stored in the
job store and written by the exporters.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import DocumentError

__all__ = [
    "Block",
    "Box",
    "DocumentRef",
    "DocumentStatus",
    "JobStatus",
    "Line",
    "PageOutcome",
    "PageTask",
    "PageText",
    "TaskStatus",
    "Word",
    "check_job_transition",
    "finished_status",
]

Box = tuple[int, int, int, int]
"""Axis-aligned box in page pixels: left, top, right, bottom."""


class JobStatus(enum.StrEnum):
    """Lifecycle of a job."""

    PENDING = "pending"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class TaskStatus(enum.StrEnum):
    """Lifecycle of one page task."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class DocumentStatus(enum.StrEnum):
    """A document is done when all its page tasks are; failed if any page failed."""

    PENDING = "pending"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


_JOB_TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.PENDING: frozenset({JobStatus.RUNNING, JobStatus.CANCELLED, JobStatus.PAUSED}),
    JobStatus.RUNNING: frozenset(
        {JobStatus.PAUSED, JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED}
    ),
    JobStatus.PAUSED: frozenset({JobStatus.RUNNING, JobStatus.CANCELLED, JobStatus.PENDING}),
    # retry-failed and --force reopen finished jobs.
    JobStatus.COMPLETED: frozenset({JobStatus.RUNNING, JobStatus.PENDING}),
    JobStatus.FAILED: frozenset({JobStatus.RUNNING, JobStatus.PENDING}),
    JobStatus.CANCELLED: frozenset(),
}


def check_job_transition(old: JobStatus, new: JobStatus) -> bool:
    """True if a job may move from ``old`` to ``new`` (a no-op move is always legal)."""
    return old == new or new in _JOB_TRANSITIONS[old]


def finished_status(total_documents: int, failed_documents: int) -> JobStatus:
    """How a job with no page left ends: failed when every document failed, else
    completed (documents that failed are counted, and the exit code says so)."""
    if total_documents and failed_documents == total_documents:
        return JobStatus.FAILED
    return JobStatus.COMPLETED


@dataclass(frozen=True, slots=True)
class Word:
    """One recognized word; ``confidence`` is 0..1; ``polygon`` only where text is rotated."""

    text: str
    box: Box
    confidence: float
    polygon: tuple[tuple[int, int], ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"text": self.text, "box": list(self.box), "conf": self.confidence}
        if self.polygon is not None:
            d["poly"] = [list(p) for p in self.polygon]
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Word:
        poly = d.get("poly")
        return cls(
            text=d["text"],
            box=_box(d["box"]),
            confidence=float(d["conf"]),
            polygon=tuple((int(x), int(y)) for x, y in poly) if poly else None,
        )


@dataclass(frozen=True, slots=True)
class Line:
    """A text line: its words in reading order."""

    words: tuple[Word, ...]
    box: Box
    confidence: float

    @property
    def text(self) -> str:
        return " ".join(w.text for w in self.words)

    def to_dict(self) -> dict[str, Any]:
        return {
            "box": list(self.box),
            "conf": self.confidence,
            "words": [w.to_dict() for w in self.words],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Line:
        return cls(
            words=tuple(Word.from_dict(w) for w in d["words"]),
            box=_box(d["box"]),
            confidence=float(d["conf"]),
        )


@dataclass(frozen=True, slots=True)
class Block:
    """A block (paragraph or region) of lines."""

    lines: tuple[Line, ...]
    box: Box

    def to_dict(self) -> dict[str, Any]:
        return {"box": list(self.box), "lines": [ln.to_dict() for ln in self.lines]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Block:
        return cls(lines=tuple(Line.from_dict(ln) for ln in d["lines"]), box=_box(d["box"]))


@dataclass(frozen=True, slots=True)
class PageText:
    """What an engine returns for one page. An empty page is a result, not an error."""

    text: str
    confidence: float
    width: int
    height: int
    blocks: tuple[Block, ...] = ()
    dpi: float | None = None
    # Facts of how the engine read the page (an engine that routes pages says which
    # route and why): merged into the page's info (PageOutcome.info), not into its text.
    info: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @property
    def words(self) -> Iterable[Word]:
        for b in self.blocks:
            for ln in b.lines:
                yield from ln.words

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "conf": self.confidence,
            "width": self.width,
            "height": self.height,
            "dpi": self.dpi,
            "blocks": [b.to_dict() for b in self.blocks],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PageText:
        return cls(
            text=d["text"],
            confidence=float(d["conf"]),
            width=int(d["width"]),
            height=int(d["height"]),
            dpi=d.get("dpi"),
            blocks=tuple(Block.from_dict(b) for b in d.get("blocks", ())),
        )


def _box(v: Iterable[Any]) -> Box:
    a, b, c, d = (int(x) for x in v)
    return (a, b, c, d)


@dataclass(frozen=True, slots=True)
class PageTask:
    """One unit of work: page ``page_index`` (0-based) of the document at ``path``."""

    task_id: int
    job_id: int
    document_id: int
    path: str
    page_index: int
    attempt: int
    page_count: int = 1
    options: Mapping[str, Any] = field(default_factory=dict)
    # The document's content hash: the key of the worker's preprocessed-image cache.
    content_hash: str | None = None
    # Retries so far and allowed (the coordinator's retry decision reads them).
    retry_count: int = 0
    max_retries: int = 0
    # What the document was at discovery (an object's ETag and size): a worker fetches
    # exactly that version (one conditional GET) or fails the page with a reason.
    stamp: str | None = None


@dataclass(frozen=True, slots=True)
class PageOutcome:
    """What came back for a task: a page or a one-line error, plus timings."""

    task_id: int
    attempt: int
    ok: bool
    page: Mapping[str, Any] | None = None
    error_kind: str | None = None
    error_message: str | None = None
    retryable: bool = False
    worker_id: str | None = None
    processing_time: float = 0.0
    cpu_time: float = 0.0
    info: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def failure(
        cls,
        task: PageTask,
        error: DocumentError,
        *,
        worker_id: str | None = None,
        processing_time: float = 0.0,
    ) -> PageOutcome:
        """The outcome of a page that failed with ``error`` (its kind, its one-line
        reason, whether a retry may help)."""
        return cls(
            task_id=task.task_id,
            attempt=task.attempt,
            ok=False,
            error_kind=error.kind,
            error_message=error.message,
            retryable=error.retryable,
            worker_id=worker_id,
            processing_time=processing_time,
        )


@dataclass(frozen=True, slots=True)
class DocumentRef:
    """A document found by discovery, before it is stored.

    ``error`` is set when the file cannot even be opened or counted (it is recorded as a
    failed document with that reason, so nothing is silently dropped). ``weight`` is the
    estimated work of one of its pages (bigger runs first): pixels to decode or render.
    ``pages`` are the 0-based page indexes to process (all ``page_count`` pages when
    empty) and ``page_weights`` their weights, when they differ page by page.
    ``stamp``: what changes when the file does (see :func:`ocrbatch.discovery.local_stamp`).
    """

    path: str
    rel_path: str
    size: int | None
    content_hash: str | None
    page_count: int = 1
    error: str | None = None
    weight: float = 0.0
    pages: tuple[int, ...] = ()
    page_weights: tuple[float, ...] = ()
    # What changes when the file does (size and mtime; an object's ETag and size): a
    # watched folder takes a file again when its stamp is new.
    stamp: str | None = None

    def page_tasks(self) -> list[tuple[int, float]]:
        """(page index, weight) of every page task this document becomes."""
        indexes = self.pages or tuple(range(self.page_count))
        if len(self.page_weights) == len(indexes):
            return list(zip(indexes, self.page_weights, strict=True))
        return [(i, self.weight) for i in indexes]
