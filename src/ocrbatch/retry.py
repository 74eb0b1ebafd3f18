"""When to try a failed page again: a pure decision, no clocks, no I/O."""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["Retry", "RetryPolicy"]


@dataclass(frozen=True, slots=True)
class Retry:
    """Try again after ``delay`` seconds."""

    delay: float


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with jitter, up to ``max_retries`` retries.

    Faults of the input itself (``retryable=False``: corrupt, empty, not an image) are
    never retried: the same bytes fail the same way.
    """

    max_retries: int = 3
    backoff: float = 1.0
    backoff_max: float = 60.0
    jitter: float = 0.25

    def decide(self, retryable: bool, retries_so_far: int) -> Retry | None:
        """``retries_so_far`` counts earlier retries of this task (0 after its first try)."""
        if not retryable or retries_so_far >= self.max_retries:
            return None
        delay = min(self.backoff_max, self.backoff * (2**retries_so_far))
        if self.jitter:
            delay *= 1 + random.uniform(-self.jitter, self.jitter)
        return Retry(delay=max(0.0, delay))
