"""Jobs in the store: create, find, list, change status."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import (
    func,
    insert,
    select,
    update,
)

from ..errors import JobNotFoundError, JobStateError
from ..model import (
    JobStatus,
    check_job_transition,
)
from .common import StoreParts, safe_url, utcnow
from .tables import jobs

__all__ = ["JobInfo", "JobOps"]

from dataclasses import dataclass, fields


@dataclass(frozen=True, slots=True)
class JobInfo:
    """A job row as plain data."""

    id: int
    name: str
    description: str | None
    mode: str
    priority: int
    status: str
    max_workers: int | None
    batch_size: int | None
    timeout_per_document: float | None
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
    summary: dict[str, Any] | None
    owner: str | None
    heartbeat_at: float | None
    queue: str | None
    outputs: str | None

    @classmethod
    def from_row(cls, row: Any) -> JobInfo:
        return cls(**{f.name: row[f.name] for f in fields(cls)})


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
        batch_size: int | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
        preprocessing_config: dict[str, Any] | None = None,
        queue: str | None = None,
    ) -> int:
        with self._begin() as c:
            res = c.execute(
                insert(jobs).values(
                    name=name,
                    description=description,
                    mode=mode,
                    priority=priority,
                    status=JobStatus.PENDING,
                    max_workers=max_workers,
                    batch_size=batch_size,
                    timeout_per_document=timeout,
                    max_retries=max_retries,
                    created_at=utcnow(),
                    updated_at=utcnow(),
                    ocr_config=config,
                    preprocessing_config=preprocessing_config,
                    result_key=result_key,
                    inputs=list(inputs),
                    output_path=output_path,
                    error_log_path=f"{output_path}/errors.jsonl" if output_path else None,
                    force=force,
                    total_documents=0,
                    processed_documents=0,
                    successful_documents=0,
                    failed_documents=0,
                    reused_documents=0,
                    total_pages=0,
                    processed_pages=0,
                    successful_pages=0,
                    failed_pages=0,
                    progress_percentage=0.0,
                    run_seconds=0.0,
                    cpu_seconds=0.0,
                    total_cost=0.0,
                    discovery_done=False,
                    queue=queue,
                )
            )
            key = res.inserted_primary_key
            assert key is not None
            job_id = int(key[0])
            if output_path is not None and "{id}" in output_path:
                # The default output folder is named after the job: set in the same
                # transaction, so a crash never leaves a job without its folder.
                path = output_path.replace("{id}", str(job_id))
                c.execute(
                    update(jobs)
                    .where(jobs.c.id == job_id)
                    .values(output_path=path, error_log_path=f"{path}/errors.jsonl")
                )
            return job_id

    def get_job(self, ref: int | str) -> JobInfo:
        """A job by id, or by name (the newest job of that name)."""
        with self.engine.connect() as c:
            row = None
            if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
                row = c.execute(select(jobs).where(jobs.c.id == int(ref))).mappings().first()
            if row is None and isinstance(ref, str):
                row = (
                    c.execute(
                        select(jobs).where(jobs.c.name == ref).order_by(jobs.c.id.desc()).limit(1)
                    )
                    .mappings()
                    .first()
                )
        if row is None:
            raise JobNotFoundError(f"no job {ref!r} in {safe_url(self.url)}")
        return JobInfo.from_row(row)

    def list_jobs(self, limit: int = 50) -> list[JobInfo]:
        with self.engine.connect() as c:
            rows = c.execute(select(jobs).order_by(jobs.c.id.desc()).limit(limit)).mappings()
            return [JobInfo.from_row(r) for r in rows]

    def output_folders(self) -> list[tuple[int, str]]:
        """(job id, output folder) of every job: what ocrbatch wrote, never an input."""
        with self.engine.connect() as c:
            q = select(jobs.c.id, jobs.c.output_path).where(jobs.c.output_path.is_not(None))
            return [(int(i), str(p)) for i, p in c.execute(q.order_by(jobs.c.id))]

    def update_job(self, job_id: int, **values: Any) -> None:
        with self._begin() as c:
            c.execute(update(jobs).where(jobs.c.id == job_id).values(updated_at=utcnow(), **values))

    def transition(
        self,
        job_id: int,
        new: JobStatus,
        *,
        only_from: Iterable[JobStatus] | None = None,
        **values: Any,
    ) -> JobInfo:
        """Move a job to ``new`` if the move is legal (and it is in ``only_from``)."""
        with self._begin() as c:
            row = c.execute(select(jobs.c.status).where(jobs.c.id == job_id)).first()
            if row is None:
                raise JobNotFoundError(f"no job {job_id}")
            old = JobStatus(row[0])
            allowed = set(only_from) if only_from is not None else None
            if not check_job_transition(old, new) or (allowed is not None and old not in allowed):
                raise JobStateError(f"job {job_id} is {old}; it cannot become {new}")
            c.execute(
                update(jobs)
                .where(jobs.c.id == job_id, jobs.c.status == old)
                .values(status=new, updated_at=utcnow(), **values)
            )
        return self.get_job(job_id)

    def take_job(self, job: JobInfo, owner: str) -> bool:
        """Make ``owner`` the one coordinator running ``job``, if the job is still as it
        was read (same status, same owner): one conditional UPDATE in one transaction,
        so of two coordinators that read the job at once, exactly one gets True."""
        old = JobStatus(job.status)
        if not check_job_transition(old, JobStatus.RUNNING):
            raise JobStateError(f"job {job.id} is {old}; it cannot run")
        now = utcnow()
        same_owner = jobs.c.owner.is_(None) if job.owner is None else jobs.c.owner == job.owner
        with self._begin() as c:
            res = c.execute(
                update(jobs)
                .where(jobs.c.id == job.id, jobs.c.status == old, same_owner)
                .values(
                    status=JobStatus.RUNNING,
                    owner=owner,
                    heartbeat_at=time.time(),
                    started_at=func.coalesce(jobs.c.started_at, now),
                    completed_at=None,
                    updated_at=now,
                )
            )
            return bool(res.rowcount)

    def set_outputs(self, job_id: int, state: str) -> None:
        """Record whether the job's result files are "complete", "partial" (written at
        a pause) or "incomplete" (writing them failed)."""
        with self._begin() as c:
            c.execute(update(jobs).where(jobs.c.id == job_id).values(outputs=state))

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

    def job_status(self, job_id: int) -> JobStatus:
        with self.engine.connect() as c:
            return JobStatus(
                c.execute(select(jobs.c.status).where(jobs.c.id == job_id)).scalar_one()
            )
