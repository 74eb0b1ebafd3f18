"""Sequential mode: one page at a time in the coordinator's own process.

For debugging and tiny batches. The page timeout is cooperative here (the engine's own,
e.g. Tesseract's monitor); only the parallel pool can kill a page that truly hangs.
"""

from __future__ import annotations

import collections
from collections.abc import Collection

from ..model import PageOutcome, PageTask
from ..pipeline import WorkerSpec, close_worker, init_worker, process_page

__all__ = ["SequentialExecutor"]


class SequentialExecutor:
    """Runs each task in-process when outcomes are collected."""

    workers = 1

    def __init__(self) -> None:
        self._queue: collections.deque[tuple[PageTask, WorkerSpec | None]] = collections.deque()

    def start(self, spec: WorkerSpec | None) -> None:
        init_worker(spec, ignore_sigint=False)

    def capacity(self) -> int:
        return 0 if self._queue else 1

    def submit(self, task: PageTask, spec: WorkerSpec | None = None) -> None:
        self._queue.append((task, spec))

    def collect(self, timeout: float) -> list[PageOutcome]:
        if not self._queue:
            return []
        task, spec = self._queue[0]
        outcome = process_page(task, spec)
        self._queue.popleft()
        return [outcome]

    def in_flight(self) -> int:
        return len(self._queue)

    def cancel(self, task_ids: Collection[int]) -> None:
        drop = set(task_ids)
        self._queue = collections.deque(e for e in self._queue if e[0].task_id not in drop)

    def stop(self) -> list[int]:
        ids = [t.task_id for t, _ in self._queue]
        self._queue.clear()
        close_worker()
        return ids

    def close(self) -> None:
        close_worker()
