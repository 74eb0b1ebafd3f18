"""Finding jobs and reading their figures: what `status`, `jobs` and the API show,
from the store alone (a job may be running in another process or on another machine)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .config import default_db_url
from .errors import ConfigError, JobNotFoundError
from .model import JobStatus
from .outputs import cli_hint
from .session import owner_alive
from .store import JobInfo, Store

__all__ = ["find_job", "job_status", "list_jobs", "open_store", "status_dict"]


def open_store(db: str | None = None, *, create: bool = True) -> Store:
    """The job store at ``db`` (default: OCRBATCH_DB or the user's data folder). With
    ``create`` False, a SQLite store that does not exist yet is an error, not a new
    empty file (commands that only read)."""
    url = db or default_db_url()
    if not create and url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///")).expanduser()
        if url != "sqlite:///:memory:" and not path.exists():
            raise JobNotFoundError(
                f"no job store at {path} (the first `ocrbatch run` creates it; "
                "give another with --db or OCRBATCH_DB)"
            )
    return Store(url)


def find_job(st: Store, ref: int | str) -> JobInfo:
    """A job by id or name; a name that several jobs share is refused (ids listed)."""
    found = st.find_jobs(ref)
    if not found:
        raise JobNotFoundError(
            f"no job {ref!r} in {st.display_url}; `{cli_hint('jobs', None, st.url)}` lists "
            "the jobs there"
        )
    if len(found) > 1:
        ids = ", ".join(str(j.id) for j in found)
        raise ConfigError(f"{len(found)} jobs are named {ref!r} (ids {ids}): give the id")
    return found[0]


def job_status(job: int | str | None = None, *, db: str | None = None) -> dict[str, Any]:
    """Figures of a job (the newest if ``job`` is None) read from the store."""
    with open_store(db, create=False) as st:
        if job is None:
            jobs = st.list_jobs(limit=1)
            if not jobs:
                raise JobNotFoundError(f"no jobs in {st.display_url} yet")
            return status_dict(jobs[0])
        return status_dict(find_job(st, job))


def status_dict(info: JobInfo) -> dict[str, Any]:
    """A job's figures as `status`, `jobs` and the API show them."""
    live = info.status == JobStatus.RUNNING and owner_alive(info)
    status = str(info.status)
    if info.status == JobStatus.RUNNING and not live:
        status = "interrupted"  # its coordinator died: `resume` continues it
    progress = info.progress if live else None
    rate = eta = None
    if progress:
        rate, eta = progress.get("pages_per_s"), progress.get("eta_s")
    elif info.summary:
        rate = info.summary.get("throughput_pages_per_s")
    return {
        "job": info.id,
        "name": info.name,
        "status": status,
        "mode": info.mode,
        "priority": info.priority,
        "queue": info.queue,
        "pages_done": info.processed_pages,
        "pages_total": info.total_pages,
        "pages_failed": info.failed_pages,
        "documents_done": info.processed_documents,
        "documents_total": info.total_documents,
        "documents_failed": info.failed_documents,
        "documents_reused": info.reused_documents,
        "percent": round(info.progress_percentage, 1),
        "pages_per_s": rate,
        "eta_s": eta,
        "estimated_completion": (
            info.estimated_completion.isoformat() if live and info.estimated_completion else None
        ),
        "created_at": info.created_at.isoformat(),
        "owner": info.owner if live else None,
        "output_path": info.output_path,
        "outputs": info.outputs,
        "error": info.error,
        # A standing job (`ocrbatch watch`): its source, settle seconds, done prefix.
        "watch": info.watch,
    }


def list_jobs(
    *, db: str | None = None, limit: int = 50, status: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """The newest jobs (of these statuses only, if given), as status dicts."""
    with open_store(db, create=False) as st:
        return [status_dict(j) for j in st.list_jobs(limit, statuses=status)]
