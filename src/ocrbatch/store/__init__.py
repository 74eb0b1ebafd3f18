"""The job store: the only code that imports SQLAlchemy. SQLite by default, any
SQLAlchemy URL (PostgreSQL for several coordinators) through ``--db``/OCRBATCH_DB."""

from __future__ import annotations

from .access import SCOPES, hash_token
from .lifecycle import RunFigures
from .queue import QueuedJob
from .store import LEASE_SECONDS, Delivery, JobInfo, RecordDelta, Store, TokenInfo

__all__ = [
    "LEASE_SECONDS",
    "SCOPES",
    "Delivery",
    "JobInfo",
    "QueuedJob",
    "RecordDelta",
    "RunFigures",
    "Store",
    "TokenInfo",
    "hash_token",
]
