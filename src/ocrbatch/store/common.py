"""What the parts of the store share: the clock, the lease length, the progress figure."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Connection, Engine, case, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from .tables import jobs

__all__ = ["LEASE_SECONDS", "StoreParts", "refresh_progress", "safe_url", "utcnow"]

LEASE_SECONDS = 60.0
"""How long a claimed task stays with its coordinator without a renewal; a coordinator
renews the leases of its in-flight tasks every few seconds, and a task whose lease ran
out (its coordinator died) is claimed again by any coordinator."""


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def refresh_progress(c: Connection, job_id: int) -> None:
    """progress_percentage from the job's own counters, in the caller's transaction."""
    c.execute(
        update(jobs)
        .where(jobs.c.id == job_id)
        .values(
            progress_percentage=case(
                (jobs.c.total_pages > 0, 100.0 * jobs.c.processed_pages / jobs.c.total_pages),
                else_=0.0,
            )
        )
    )


class StoreParts:
    """What every part of :class:`~ocrbatch.store.Store` relies on (set in its __init__)."""

    url: str
    dialect: str
    engine: Engine

    def _begin(self) -> Any:
        """A write transaction; Store provides it."""
        raise NotImplementedError

    def _read(self) -> Any:
        """A connection for reading; Store provides it."""
        raise NotImplementedError


def safe_url(url: str) -> str:
    """The URL as it may be shown: without its password."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url
