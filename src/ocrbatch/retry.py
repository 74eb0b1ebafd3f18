"""When to try a failed page again: a pure decision, no clocks, no I/O."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Protocol

__all__ = ["Retry", "RetryPolicy", "RetrySettings"]


class RetrySettings(Protocol):
    """Where a policy's figures come from (a job's RunConfig)."""

    @property
    def max_retries(self) -> int: ...
    @property
    def retry_backoff(self) -> float: ...
    @property
    def retry_backoff_max(self) -> float: ...


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

    @classmethod
    def of(cls, config: RetrySettings) -> RetryPolicy:
        """The policy a job's config asks for."""
        return cls(
            max_retries=config.max_retries,
            backoff=config.retry_backoff,
            backoff_max=config.retry_backoff_max,
        )

    def decide(
        self, retryable: bool, retries_so_far: int, max_retries: int | None = None
    ) -> Retry | None:
        """``retries_so_far`` counts earlier retries of this task (0 after its first try);
        ``max_retries``: the task's own allowance where it has one (else the policy's)."""
        limit = self.max_retries if max_retries is None else max_retries
        if not retryable or retries_so_far >= limit:
            return None
        delay = min(self.backoff_max, self.backoff * (2**retries_so_far))
        if self.jitter:
            delay *= 1 + random.uniform(-self.jitter, self.jitter)
        return Retry(delay=max(0.0, delay))
