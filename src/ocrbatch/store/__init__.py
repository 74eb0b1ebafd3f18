"""The job store: the only code that imports SQLAlchemy. SQLite by default, any
SQLAlchemy URL (PostgreSQL for several coordinators) through ``--db``/OCRBATCH_DB."""

from __future__ import annotations

from .store import JobInfo, RecordDelta, Store

__all__ = ["JobInfo", "RecordDelta", "Store"]
