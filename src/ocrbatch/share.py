"""How a queue worker splits its free worker slots among the jobs of its queue (pure).

Strict priority between levels (a higher number is more urgent): a job of a lower
priority gets slots only when every job above it is at its cap or has nothing ready.
Within one priority, fair share by water-filling on the tasks each job has running on
*all* coordinators (read from the store), so that several coordinators together share
fairly too: the job with the fewest running tasks gets the next slot, ties to the older.
A job never goes past its own cap (``max_workers``).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Demand", "share"]


@dataclass(frozen=True, slots=True)
class Demand:
    """A job with ready work: its priority, tasks running now, and its cap (None: none)."""

    job_id: int
    priority: int
    running: int = 0
    cap: int | None = None


def share(slots: int, demands: Sequence[Demand]) -> dict[int, int]:
    """Slots per job id (jobs that get none are left out). ``demands`` come oldest
    first within a priority (the order ties are broken in)."""
    plan: dict[int, int] = {}
    left = slots
    by_priority = sorted(enumerate(demands), key=lambda e: (-e[1].priority, e[0]))
    for _, level in itertools.groupby(by_priority, key=lambda e: e[1].priority):
        heap = [(d.running, age, d) for age, d in level if d.cap is None or d.running < d.cap]
        heapq.heapify(heap)
        while left > 0 and heap:
            running, age, d = heapq.heappop(heap)
            plan[d.job_id] = plan.get(d.job_id, 0) + 1
            left -= 1
            if d.cap is None or running + 1 < d.cap:
                heapq.heappush(heap, (running + 1, age, d))
        if left <= 0:
            break
    return plan
