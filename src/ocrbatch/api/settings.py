"""What ``ocrbatch serve`` is started with: the store, the folders the API may touch,
the embedded worker, the size limits."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..config import default_data_dir, default_db_url

__all__ = ["ServiceSettings"]


@dataclass(frozen=True)
class ServiceSettings:
    """The service's settings (the options of ``ocrbatch serve``)."""

    db: str = field(default_factory=default_db_url)
    # Inputs and outputs only below these folders (the inbox and the default results
    # folder are added to them).
    allow_roots: tuple[str, ...] = ()
    # Where uploads land (inbox/) and jobs without "out" write (results/).
    state_dir: str = field(default_factory=lambda: str(default_data_dir() / "service"))
    # Embedded queue worker: its worker processes (None: from cores and memory); 0: none
    # (`ocrbatch worker` processes elsewhere take the jobs).
    workers: int | None = None
    embedded_worker: bool = True
    queue: str = "default"
    max_body_bytes: int = 1 << 20  # a JSON body
    max_upload_bytes: int = 100 << 20  # one upload request, all its files
    max_upload_files: int = 1000
    # Webhooks: attempts before a delivery is given up, first backoff (doubled each time).
    webhook_attempts: int = 6
    webhook_backoff: float = 1.0
    webhook_timeout: float = 10.0
    # A token's lookup is cached this long (a revoke takes effect within it).
    token_cache_seconds: float = 5.0

    @property
    def inbox(self) -> Path:
        return Path(self.state_dir) / "inbox"

    @property
    def results(self) -> Path:
        return Path(self.state_dir) / "results"

    def roots(self) -> tuple[str, ...]:
        """Every folder the API may read or write under, as real paths."""
        own = (str(self.inbox), str(self.results))
        return tuple(dict.fromkeys(os.path.realpath(p) for p in (*self.allow_roots, *own)))
