"""The job store: the only code that imports SQLAlchemy. SQLite by default, any
SQLAlchemy URL (PostgreSQL for several coordinators) through ``--db``/OCRBATCH_DB."""

from __future__ import annotations

from .lifecycle import RunFigures
from .queue import QueuedJob
from .store import LEASE_SECONDS, JobInfo, RecordDelta, Store

__all__ = ["LEASE_SECONDS", "JobInfo", "QueuedJob", "RecordDelta", "RunFigures", "Store"]
