"""What a coordinator measures of its own machine: the memory of its process family
(itself and its workers) and its own CPU time. The workers' CPU time per page comes
back with each outcome; what is measured here is the rest."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import psutil

__all__ = ["CpuMeter", "MemorySampler", "cores"]


def cores() -> int:
    """Logical cores of this machine (the CPU average's denominator)."""
    return psutil.cpu_count() or 1


@dataclass
class MemorySampler:
    """Resident memory of this process and its children, sampled every ``every`` s."""

    every: float = 2.0
    proc: psutil.Process = field(default_factory=psutil.Process)
    samples: int = 0
    total_mb: float = 0.0
    peak_mb: float = 0.0
    _last: float = 0.0

    def maybe_sample(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        if now - self._last >= self.every:
            self._last = now
            self.sample()

    def sample(self) -> None:
        try:
            family = [self.proc, *self.proc.children(recursive=True)]
        except psutil.Error:
            return
        mb = 0.0
        for p in family:
            try:
                mb += p.memory_info().rss / 2**20
            except psutil.Error:
                continue
        self.samples += 1
        self.total_mb += mb
        self.peak_mb = max(self.peak_mb, mb)

    @property
    def average_mb(self) -> float | None:
        return self.total_mb / self.samples if self.samples else None


@dataclass
class CpuMeter:
    """This process's CPU seconds, handed out in deltas (each recorded once)."""

    _last: float = field(default_factory=time.process_time)

    def take(self) -> float:
        now = time.process_time()
        spent, self._last = now - self._last, now
        return spent
