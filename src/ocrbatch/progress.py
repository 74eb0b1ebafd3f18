"""Progress of a job: counters, throughput, ETA, and the reporters that show them.

Counting happens in the coordinator only (principle 2). A reporter is anything with
``update(snapshot)`` and ``close(snapshot)``: a rich bar on a TTY, a structured log line
every few seconds otherwise; the API will add its own.
"""

from __future__ import annotations

import collections
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog

__all__ = [
    "JobCounts",
    "LogReporter",
    "NullReporter",
    "ProgressCounter",
    "Reporter",
    "RichReporter",
    "Snapshot",
    "make_reporter",
]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Figures of a job at one instant (also what ``ocrbatch status`` prints)."""

    job_id: int
    name: str
    total_pages: int
    done_pages: int
    failed_pages: int
    total_documents: int
    done_documents: int
    failed_documents: int
    elapsed: float
    pages_per_second: float
    eta_seconds: float | None

    @property
    def percent(self) -> float:
        return 100.0 * self.done_pages / self.total_pages if self.total_pages else 100.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "job": self.job_id,
            "pages_done": self.done_pages,
            "pages_total": self.total_pages,
            "pages_failed": self.failed_pages,
            "documents_done": self.done_documents,
            "documents_total": self.total_documents,
            "documents_failed": self.failed_documents,
            "percent": round(self.percent, 1),
            "pages_per_s": round(self.pages_per_second, 3),
            "eta_s": None if self.eta_seconds is None else round(self.eta_seconds, 1),
        }


class JobCounts(Protocol):
    """A job's counters as the store keeps them (a JobInfo)."""

    @property
    def id(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def total_pages(self) -> int: ...
    @property
    def total_documents(self) -> int: ...
    @property
    def processed_pages(self) -> int: ...
    @property
    def failed_pages(self) -> int: ...
    @property
    def processed_documents(self) -> int: ...
    @property
    def failed_documents(self) -> int: ...


@dataclass
class ProgressCounter:
    """Counts finished pages; throughput over a sliding window so the ETA follows changes."""

    job_id: int
    name: str
    total_pages: int
    total_documents: int
    done_pages: int = 0
    failed_pages: int = 0
    done_documents: int = 0
    failed_documents: int = 0
    window: float = 60.0
    _start: float = field(default_factory=lambda: time.monotonic())  # noqa: PLW0108 - looked up at each call, so tests can set the clock
    _events: collections.deque[tuple[float, int]] = field(default_factory=collections.deque)

    @classmethod
    def of(cls, job: JobCounts) -> ProgressCounter:
        """A counter starting from the job's figures in the store."""
        counter = cls(job_id=job.id, name=job.name, total_pages=0, total_documents=0)
        counter.rebase(job)
        return counter

    def rebase(self, job: JobCounts) -> None:
        """Take the job's figures from the store again (totals grow while discovery adds
        documents); the throughput window is kept."""
        self.total_pages = job.total_pages
        self.total_documents = job.total_documents
        self.done_pages = job.processed_pages
        self.failed_pages = job.failed_pages
        self.done_documents = job.processed_documents
        self.failed_documents = job.failed_documents

    def add(
        self, pages: int, failed: int = 0, documents: int = 0, failed_documents: int = 0
    ) -> None:
        now = time.monotonic()
        self.done_pages += pages
        self.failed_pages += failed
        self.done_documents += documents
        self.failed_documents += failed_documents
        if pages:
            self._events.append((now, pages))
        while self._events and now - self._events[0][0] > self.window:
            self._events.popleft()

    def snapshot(self) -> Snapshot:
        now = time.monotonic()
        elapsed = now - self._start
        span = min(self.window, elapsed)
        recent = sum(n for t, n in self._events if now - t <= self.window)
        rate = recent / span if span > 0 else 0.0
        remaining = self.total_pages - self.done_pages
        eta = remaining / rate if rate > 0 else None
        return Snapshot(
            job_id=self.job_id,
            name=self.name,
            total_pages=self.total_pages,
            done_pages=self.done_pages,
            failed_pages=self.failed_pages,
            total_documents=self.total_documents,
            done_documents=self.done_documents,
            failed_documents=self.failed_documents,
            elapsed=elapsed,
            pages_per_second=rate,
            eta_seconds=eta,
        )


class Reporter(Protocol):
    """Shows progress; called from the coordinator's loop only."""

    def update(self, snap: Snapshot) -> None: ...

    def close(self, snap: Snapshot) -> None: ...


class NullReporter:
    """Shows nothing (library use, tests)."""

    def update(self, snap: Snapshot) -> None:
        pass

    def close(self, snap: Snapshot) -> None:
        pass


class LogReporter:
    """One structured log line every ``every`` seconds (no TTY, ``--log-json``)."""

    def __init__(self, every: float = 5.0) -> None:
        self.every = every
        self._last = 0.0
        self._log = structlog.get_logger("ocrbatch.progress")

    def update(self, snap: Snapshot) -> None:
        now = time.monotonic()
        if now - self._last >= self.every:
            self._last = now
            self._log.info("progress", **snap.as_dict())

    def close(self, snap: Snapshot) -> None:
        self._log.info("progress", **snap.as_dict())


class RichReporter:
    """A live bar on a TTY: done/total pages, pages/s, ETA, failures."""

    def __init__(self) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("pages"),
            TextColumn("{task.fields[rate]}"),
            TextColumn("ETA {task.fields[eta]}"),
            TextColumn("[red]{task.fields[failed]}"),
            TimeElapsedColumn(),
            transient=False,
            redirect_stderr=False,
            redirect_stdout=False,
        )
        self._task: Any = None

    def update(self, snap: Snapshot) -> None:
        fields: dict[str, Any] = {
            "rate": f"{snap.pages_per_second:.2f} p/s",
            "eta": _hms(snap.eta_seconds),
            "failed": f"{snap.failed_pages} failed" if snap.failed_pages else "",
        }
        if self._task is None:
            self._progress.start()
            self._task = self._progress.add_task(
                f"job {snap.job_id}", total=snap.total_pages, **fields
            )
        self._progress.update(
            self._task, completed=snap.done_pages, total=snap.total_pages, **fields
        )

    def close(self, snap: Snapshot) -> None:
        self.update(snap)
        self._progress.stop()


def _hms(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def make_reporter(kind: str = "auto", *, every: float = 5.0) -> Reporter:
    """``auto``: a bar on a TTY, log lines otherwise; ``bar``, ``log`` or ``none`` to force."""
    if kind == "auto":
        kind = "bar" if sys.stderr.isatty() else "log"
    if kind == "bar":
        return RichReporter()
    if kind == "log":
        return LogReporter(every=every)
    return NullReporter()
