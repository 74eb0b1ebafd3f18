"""Jobs in the store: create, find and list them, and what is recorded about them
outside their lifecycle (discovery, queue, password, summary and result files).
Status changes live in :mod:`.lifecycle`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import insert, null, select, update

from ..errors import JobNotFoundError
from ..model import JobStatus
from .common import StoreParts, safe_url, utcnow
from .tables import jobs

__all__ = ["JobInfo", "JobOps"]


@dataclass(frozen=True, slots=True)
class JobInfo:
    """A job row as plain data (columns: store/tables.py)."""

    id: int
    name: str
    description: str | None
    mode: str
    priority: int
    status: str
    max_workers: int | None
    workers: int | None
    page_timeout: float | None
    max_retries: int | None
    total_documents: int
    processed_documents: int
    successful_documents: int
    failed_documents: int
    reused_documents: int
    total_pages: int
    processed_pages: int
    successful_pages: int
    failed_pages: int
    progress_percentage: float
    created_at: dt.datetime
    started_at: dt.datetime | None
    completed_at: dt.datetime | None
    updated_at: dt.datetime | None
    estimated_completion: dt.datetime | None
    running_since: dt.datetime | None
    run_seconds: float
    cpu_seconds: float
    cpu_usage_avg: float | None
    memory_usage_avg: float | None
    memory_usage_peak: float | None
    total_cost: float
    ocr_config: dict[str, Any]
    preprocessing_config: dict[str, Any] | None
    result_key: str
    inputs: list[str]
    discovery_done: bool
    force: bool
    output_path: str | None
    error_log_path: str | None
    progress: dict[str, Any] | None
    summary: dict[str, Any] | None
    error: str | None
    owner: str | None
    heartbeat_at: dt.datetime | None
    queue: str | None
    outputs: str | None
    watch: dict[str, Any] | None

    @classmethod
    def from_row(cls, row: Any) -> JobInfo:
        return cls(**{f.name: row[f.name] for f in fields(cls)})


# A new job's counters and figures.
_ZERO = (
    "total_documents",
    "processed_documents",
    "successful_documents",
    "failed_documents",
    "reused_documents",
    "total_pages",
    "processed_pages",
    "successful_pages",
    "failed_pages",
    "progress_percentage",
    "run_seconds",
    "cpu_seconds",
    "total_cost",
)


class JobOps(StoreParts):
    """Job rows of :class:`~ocrbatch.store.Store` (a mixin over its engine)."""

    def create_job(
        self,
        *,
        name: str,
        config: dict[str, Any],
        result_key: str,
        inputs: Sequence[str],
        mode: str,
        description: str | None = None,
        priority: int = 0,
        output_path: str | None = None,
        force: bool = False,
        max_workers: int | None = None,
        page_timeout: float | None = None,
        max_retries: int | None = None,
        watch: dict[str, Any] | None = None,
    ) -> int:
        """A new pending job. ``output_path`` may hold ``{id}``, filled in with the job's
        id in the same transaction (the default output folder is named after the job),
        so a crash never leaves a job without its folder. ``watch``: the settings of a
        standing job (`ocrbatch watch`), which never runs out of inputs."""
        now = utcnow()
        with self._begin() as c:
            res = c.execute(
                insert(jobs).values(
                    name=name,
                    description=description,
                    mode=mode,
                    priority=priority,
                    status=JobStatus.PENDING,
                    max_workers=max_workers,
                    page_timeout=page_timeout,
                    max_retries=max_retries,
                    created_at=now,
                    updated_at=now,
                    ocr_config=config,
                    result_key=result_key,
                    inputs=list(inputs),
                    force=force,
                    discovery_done=False,
                    # SQL NULL, not JSON null, for a job that is not standing.
                    watch=watch if watch is not None else null(),
                    **dict.fromkeys(_ZERO, 0),
                )
            )
            key = res.inserted_primary_key
            assert key is not None
            job_id = int(key[0])
            if output_path is not None:
                path = output_path.replace("{id}", str(job_id))
                c.execute(
                    update(jobs)
                    .where(jobs.c.id == job_id)
                    .values(output_path=path, error_log_path=f"{path}/errors.jsonl")
                )
            return job_id

    def get_job(self, ref: int | str) -> JobInfo:
        """A job by id, or by name (the newest job of that name; see :meth:`find_jobs`)."""
        found = self.find_jobs(ref, limit=1)
        if not found:
            raise JobNotFoundError(f"no job {ref!r} in {safe_url(self.url)}")
        return found[0]

    def find_jobs(self, ref: int | str, limit: int = 20) -> list[JobInfo]:
        """The job with id ``ref``, else the jobs named ``ref``, newest first."""
        with self._read() as c:
            if isinstance(ref, int) or ref.isdigit():
                row = c.execute(select(jobs).where(jobs.c.id == int(ref))).mappings().first()
                if row is not None:
                    return [JobInfo.from_row(row)]
            if isinstance(ref, int):
                return []
            rows = c.execute(
                select(jobs).where(jobs.c.name == ref).order_by(jobs.c.id.desc()).limit(limit)
            ).mappings()
            return [JobInfo.from_row(r) for r in rows]

    def list_jobs(
        self, limit: int = 50, *, statuses: Sequence[str] | None = None, offset: int = 0
    ) -> list[JobInfo]:
        """The newest jobs (optionally of these statuses only)."""
        q = select(jobs).order_by(jobs.c.id.desc()).limit(limit).offset(offset)
        if statuses:
            q = q.where(jobs.c.status.in_(list(statuses)))
        with self._read() as c:
            return [JobInfo.from_row(r) for r in c.execute(q).mappings()]

    def standing_jobs(self) -> list[JobInfo]:
        """The standing jobs (`ocrbatch watch`) not cancelled, newest first."""
        q = (
            select(jobs)
            .where(jobs.c.watch.is_not(None), jobs.c.status != JobStatus.CANCELLED)
            .order_by(jobs.c.id.desc())
        )
        with self._read() as c:
            return [JobInfo.from_row(r) for r in c.execute(q).mappings()]

    def set_watch(self, job_id: int, watch: dict[str, Any]) -> None:
        """A standing job's settings as its watcher runs it now (settle time, done prefix)."""
        self._set(job_id, watch=watch)

    def output_folders(self) -> list[tuple[int, str]]:
        """(job id, output folder) of every job: what ocrbatch wrote, never an input."""
        with self._read() as c:
            q = select(jobs.c.id, jobs.c.output_path).where(jobs.c.output_path.is_not(None))
            return [(int(i), str(p)) for i, p in c.execute(q.order_by(jobs.c.id))]

    def job_status(self, job_id: int) -> JobStatus:
        with self._read() as c:
            return JobStatus(
                c.execute(select(jobs.c.status).where(jobs.c.id == job_id)).scalar_one()
            )

    def job_statuses(self, job_ids: Sequence[int]) -> dict[int, JobStatus]:
        """Statuses of several jobs in one query (a queue worker's once-a-second check)."""
        if not job_ids:
            return {}
        with self._read() as c:
            rows = c.execute(select(jobs.c.id, jobs.c.status).where(jobs.c.id.in_(job_ids)))
            return {r[0]: JobStatus(r[1]) for r in rows}

    def _set(self, job_id: int, **values: Any) -> None:
        with self._begin() as c:
            c.execute(update(jobs).where(jobs.c.id == job_id).values(updated_at=utcnow(), **values))

    def finish_discovery(self, job_id: int) -> None:
        """Every input of the job is in the store (a crash before this re-walks them)."""
        self._set(job_id, discovery_done=True)

    def enqueue(self, job_id: int, queue: str) -> None:
        """Put a job whose discovery is done into a queue (`ocrbatch worker` takes it)."""
        self._set(job_id, queue=queue)

    def remember_password(self, job_id: int, password: str | None) -> None:
        """Keep the PDF password with the job while it may run (its workers, here or on
        other machines, open the files with it); see :meth:`forget_password`."""
        with self._begin() as c:
            cfg = c.execute(select(jobs.c.ocr_config).where(jobs.c.id == job_id)).scalar()
            if cfg is not None and cfg.get("password") != password:
                cfg = {**cfg, "password": password}
                c.execute(update(jobs).where(jobs.c.id == job_id).values(ocr_config=cfg))

    def forget_password(self, job_id: int) -> None:
        """Drop the PDF password of a job that has ended: resume, retry-failed and
        export take it again from --password or OCRBATCH_PDF_PASSWORD."""
        self.remember_password(job_id, None)

    def record_outputs(
        self, job_id: int, state: str, summary: dict[str, Any] | None = None
    ) -> None:
        """The job's result files are ``state`` ("complete", "partial": written while
        the job has pages left, "incomplete": writing them failed), with the summary
        they carry."""
        values: dict[str, Any] = {"outputs": state}
        if summary is not None:
            values["summary"] = summary
        self._set(job_id, **values)
