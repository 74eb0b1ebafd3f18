"""Sequential mode: one page at a time in the coordinator's own process.

For debugging and tiny batches. The page timeout is cooperative here (the engine's own,
e.g. Tesseract's monitor); only the parallel pool can kill a page that truly hangs.
"""

from __future__ import annotations

import collections

from ..model import PageOutcome, PageTask
from ..pipeline import WorkerSpec, close_worker, init_worker, process_page

__all__ = ["SequentialExecutor"]


class SequentialExecutor:
    """Runs each task in-process when outcomes are collected."""

    workers = 1

    def __init__(self) -> None:
        self._queue: collections.deque[PageTask] = collections.deque()

    def start(self, spec: WorkerSpec) -> None:
        init_worker(spec, ignore_sigint=False)

    def capacity(self) -> int:
        return 0 if self._queue else 1

    def submit(self, task: PageTask) -> None:
        self._queue.append(task)

    def collect(self, timeout: float) -> list[PageOutcome]:
        if not self._queue:
            return []
        task = self._queue[0]
        outcome = process_page(task)
        self._queue.popleft()
        return [outcome]

    def in_flight(self) -> int:
        return len(self._queue)

    def stop(self) -> list[int]:
        ids = [t.task_id for t in self._queue]
        self._queue.clear()
        close_worker()
        return ids

    def close(self) -> None:
        close_worker()
