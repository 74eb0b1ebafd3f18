"""Job store operations on SQLAlchemy Core: the single source of truth of every job.

Invariants that make crash-safe resume work:
- a task is claimed (pending -> running, attempt + 1) and recorded (running -> terminal or
  back to pending for a retry) in single statements guarded by its status and attempt, so
  an outcome is recorded at most once, and a stale outcome of an earlier attempt is ignored;
- a document becomes terminal exactly once (guarded ``WHERE status = 'pending'``), and the
  job's counters move in the same transaction as the rows they count.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    bindparam,
    case,
    create_engine,
    event,
    func,
    insert,
    literal,
    select,
    text,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from ..errors import ConfigError, JobNotFoundError, JobStateError, StoreError
from ..model import (
    DocumentRef,
    DocumentStatus,
    JobStatus,
    PageOutcome,
    PageTask,
    TaskStatus,
    check_job_transition,
)
from ..retry import RetryPolicy
from .queue import QueueOps
from .tables import documents, jobs, tasks

__all__ = ["LEASE_SECONDS", "JobInfo", "RecordDelta", "Store", "utcnow"]

_TERMINAL_TASK = (TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED)
# Any fixed 64-bit number, the same in every process: the key of the advisory lock that
# serializes first-time migrations on PostgreSQL.
_MIGRATE_LOCK = 0x6F63726261746368  # "ocrbatch"
LEASE_SECONDS = 60.0
"""How long a claimed task stays with its coordinator without a renewal; a coordinator
renews the leases of its in-flight tasks every few seconds, and a task whose lease ran
out (its coordinator died) is claimed again by any coordinator."""


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


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

    @classmethod
    def from_row(cls, row: Any) -> JobInfo:
        return cls(**{f.name: row[f.name] for f in fields(cls)})


@dataclass(frozen=True, slots=True)
class RecordDelta:
    """What one batch of recorded outcomes changed (for the progress counter)."""

    pages_done: int = 0
    pages_failed: int = 0
    retried: int = 0
    documents_done: int = 0
    documents_failed: int = 0
    stale: int = 0


class Store(QueueOps):
    """A job store at a SQLAlchemy URL; migrates the schema to the latest on open."""

    def __init__(self, url: str) -> None:
        self.url = url
        try:
            parsed = make_url(url)
        except ArgumentError:
            raise ConfigError(
                f"malformed database URL {url!r} (expected e.g. sqlite:///jobs.db or "
                "postgresql+psycopg://user@host/db)"
            ) from None
        self.dialect = parsed.get_backend_name()
        kwargs: dict[str, Any] = {}
        if self.dialect == "sqlite":
            db = parsed.database
            if not db or db == ":memory:":
                # One shared connection, or every connection would see its own empty DB.
                kwargs["poolclass"] = StaticPool
                kwargs["connect_args"] = {"check_same_thread": False}
            else:
                parent = Path(db).expanduser().parent
                try:
                    parent.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise StoreError(
                        f"cannot create the folder of database {db}: {exc.strerror}"
                    ) from None
                kwargs["connect_args"] = {"timeout": 30}
        else:
            kwargs["pool_pre_ping"] = True
        if self.dialect == "postgresql":
            if parsed.drivername == "postgresql":
                # psycopg 3 is the driver the [postgres] extra installs.
                parsed = parsed.set(drivername="postgresql+psycopg")
            if parsed.drivername == "postgresql+psycopg":
                try:
                    import psycopg  # noqa: F401
                except ImportError:
                    raise ConfigError(
                        "a PostgreSQL store needs psycopg: pip install 'ocrbatch[postgres]'"
                    ) from None
        try:
            self.engine: Engine = create_engine(parsed, **kwargs)
        except (NoSuchModuleError, ArgumentError, ImportError) as exc:
            raise ConfigError(f"unsupported database URL {url!r}: {exc}") from None
        if self.dialect == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
            # pysqlite's own BEGIN is deferred and issued late; we issue BEGIN ourselves, and
            # BEGIN IMMEDIATE for writes, so a read-then-write (record, claim) is atomic
            # against other processes (SQLAlchemy's documented pysqlite recipe).
            event.listen(self.engine, "begin", _sqlite_begin)
        self._writer = self.engine.execution_options(ocrbatch_write=True)
        try:
            self._migrate()
        except OperationalError as exc:
            raise StoreError(f"cannot open database {_safe(url)}: {_one_line(exc)}") from None
        except SQLAlchemyError as exc:
            raise StoreError(f"database error on {_safe(url)}: {_one_line(exc)}") from None

    # -- schema -------------------------------------------------------------------
    def _migrate(self) -> None:
        from alembic import command
        from alembic.config import Config
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        cfg = Config(str(Path(__file__).with_name("alembic.ini")))
        head = ScriptDirectory.from_config(cfg).get_current_head()
        with self.engine.connect() as conn:
            if MigrationContext.configure(conn).get_current_revision() == head:
                return
        for attempt in range(3):
            try:
                with self.engine.begin() as conn:
                    if self.dialect == "postgresql":
                        # Coordinators starting together on a new database: the first
                        # migrates, the others wait here (DDL is transactional on
                        # PostgreSQL) and then find the schema at head.
                        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATE_LOCK})
                        if MigrationContext.configure(conn).get_current_revision() == head:
                            return
                    cfg.attributes["connection"] = conn
                    command.upgrade(cfg, "head")
                return
            except OperationalError:
                # Two processes creating a new SQLite database at once: the loser retries
                # and finds the schema in place.
                if attempt == 2:
                    raise
                time.sleep(0.2)

    def close(self) -> None:
        self.engine.dispose()

    def _begin(self) -> Any:
        """A write transaction (on SQLite it holds the write lock from its start)."""
        return self._writer.begin()

    # -- jobs -----------------------------------------------------------------------
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
            job_id = res.inserted_primary_key
            assert job_id is not None
            return int(job_id[0])

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
            raise JobNotFoundError(f"no job {ref!r} in {_safe(self.url)}")
        return JobInfo.from_row(row)

    def list_jobs(self, limit: int = 50) -> list[JobInfo]:
        with self.engine.connect() as c:
            rows = c.execute(select(jobs).order_by(jobs.c.id.desc()).limit(limit)).mappings()
            return [JobInfo.from_row(r) for r in rows]

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

    def job_status(self, job_id: int) -> JobStatus:
        with self.engine.connect() as c:
            return JobStatus(
                c.execute(select(jobs.c.status).where(jobs.c.id == job_id)).scalar_one()
            )

    # -- documents ------------------------------------------------------------------
    def known_paths(self, job_id: int, paths: Sequence[str]) -> set[str]:
        """Which of ``paths`` the job already has (discovery resumed after a crash)."""
        if not paths:
            return set()
        with self.engine.connect() as c:
            rows = c.execute(
                select(documents.c.path).where(
                    documents.c.job_id == job_id, documents.c.path.in_(paths)
                )
            )
            return {r[0] for r in rows}

    def add_documents(
        self,
        job_id: int,
        docs: Sequence[DocumentRef],
        *,
        max_retries: int,
        reuse: bool = True,
    ) -> tuple[int, int]:
        """Store a batch of discovered documents and their page tasks in one transaction.

        With ``reuse``, a document whose content hash was already completed under the same
        result key (same engine and options) takes that result instead of a new OCR.
        Returns (documents added, documents reused).
        """
        if not docs:
            return 0, 0
        now = utcnow()
        with self._begin() as c:
            key = c.execute(select(jobs.c.result_key).where(jobs.c.id == job_id)).scalar_one()
            previous: dict[str, int] = {}
            hashes = [d.content_hash for d in docs if d.content_hash and not d.error]
            if reuse and hashes:
                q = (
                    select(documents.c.content_hash, func.max(documents.c.id))
                    .where(
                        documents.c.result_key == key,
                        documents.c.content_hash.in_(hashes),
                        documents.c.status == DocumentStatus.COMPLETED,
                        documents.c.job_id != job_id,
                    )
                    .group_by(documents.c.content_hash)
                )
                previous = {h: i for h, i in c.execute(q)}
            rows = []
            for d in docs:
                old = previous.get(d.content_hash or "") if not d.error else None
                status = (
                    DocumentStatus.FAILED
                    if d.error
                    else DocumentStatus.COMPLETED
                    if old
                    else DocumentStatus.PENDING
                )
                rows.append(
                    dict(
                        job_id=job_id,
                        path=d.path,
                        rel_path=d.rel_path,
                        file_size=d.size,
                        content_hash=d.content_hash,
                        result_key=key,
                        page_count=0 if d.error else len(d.page_tasks()),
                        status=status,
                        error_message=d.error,
                        reused_from=old,
                        created_at=now,
                        completed_at=now if (d.error or old) else None,
                    )
                )
            ids = (
                c.execute(
                    insert(documents).returning(documents.c.id, sort_by_parameter_order=True), rows
                )
                .scalars()
                .all()
            )
            task_rows = []
            reused = failed = 0
            reused_pages = 0
            total_pages = 0
            for doc_id, d, r in zip(ids, docs, rows, strict=True):
                if d.error:
                    failed += 1
                    continue
                if r["reused_from"]:
                    reused += 1
                    reused_pages += self._copy_pages(c, job_id, doc_id, r["reused_from"], now)
                    continue
                page_tasks = d.page_tasks()
                total_pages += len(page_tasks)
                for p, weight in page_tasks:
                    task_rows.append(
                        dict(
                            job_id=job_id,
                            document_id=doc_id,
                            page_index=p,
                            file_path=d.path,
                            status=TaskStatus.PENDING,
                            attempt=0,
                            retry_count=0,
                            max_retries=max_retries,
                            weight=weight,
                            available_at=0.0,
                        )
                    )
            if task_rows:
                c.execute(insert(tasks), task_rows)
            c.execute(
                update(jobs)
                .where(jobs.c.id == job_id)
                .values(
                    total_documents=jobs.c.total_documents + len(docs),
                    processed_documents=jobs.c.processed_documents + failed + reused,
                    failed_documents=jobs.c.failed_documents + failed,
                    successful_documents=jobs.c.successful_documents + reused,
                    reused_documents=jobs.c.reused_documents + reused,
                    total_pages=jobs.c.total_pages + total_pages + reused_pages,
                    processed_pages=jobs.c.processed_pages + reused_pages,
                    successful_pages=jobs.c.successful_pages + reused_pages,
                    updated_at=now,
                )
            )
            self._refresh_progress(c, job_id)
        return len(docs), reused

    @staticmethod
    def _copy_pages(c: Connection, job_id: int, doc_id: int, old_doc: int, now: dt.datetime) -> int:
        """Copy the completed page rows of ``old_doc`` to ``doc_id``."""
        cols = [
            "page_index",
            "file_path",
            "attempt",
            "retry_count",
            "max_retries",
            "weight",
            "processing_time",
            "cpu_time",
            "result_text",
            "confidence",
            "result_json",
            "info",
            "worker_id",
        ]
        src = select(
            literal(job_id),
            literal(doc_id),
            *[tasks.c[k] for k in cols],
            literal(TaskStatus.COMPLETED.value),
            literal(0.0),
            literal(now, type_=tasks.c.completed_at.type),
        ).where(tasks.c.document_id == old_doc)
        res = c.execute(
            insert(tasks).from_select(
                ["job_id", "document_id", *cols, "status", "available_at", "completed_at"], src
            )
        )
        c.execute(
            update(documents)
            .where(documents.c.id == doc_id)
            .values(
                page_count=select(func.count())
                .where(tasks.c.document_id == doc_id)
                .scalar_subquery()
            )
        )
        return int(res.rowcount or 0)

    # -- tasks ----------------------------------------------------------------------
    def claim(
        self,
        job_id: int,
        limit: int,
        owner: str,
        lease: float = LEASE_SECONDS,
        *,
        cap: int | None = None,
    ) -> list[PageTask]:
        """Atomically move up to ``limit`` ready tasks to running, biggest pages first.

        Ready: pending and past its retry backoff; a task running under a lease that ran
        out (its coordinator died) is put back to pending first. One UPDATE ... WHERE id
        IN (SELECT ... FOR UPDATE SKIP LOCKED) RETURNING: on PostgreSQL several
        coordinators never claim the same task;
        on SQLite the statement holds the write lock. With ``cap``, the job never has more
        than ``cap`` tasks running across all coordinators: the claim first updates the
        job's row, which locks it (PostgreSQL) or takes the write lock (SQLite), so that
        the count of running tasks cannot race another coordinator's claim.
        """
        if limit <= 0:
            return []
        now = time.time()
        with self._begin() as c:
            # Tasks whose coordinator died go back to pending first (their running rows
            # are few), so that the pick below reads only pending rows, in the order of
            # the claim-order index: a claim costs the same on ten pages or ten million.
            c.execute(
                update(tasks)
                .where(
                    tasks.c.job_id == job_id,
                    tasks.c.status == TaskStatus.RUNNING,
                    tasks.c.lease_expires_at < now,
                )
                .values(status=TaskStatus.PENDING, claimed_by=None, available_at=0.0)
            )
            if cap is not None:
                c.execute(update(jobs).where(jobs.c.id == job_id).values(heartbeat_at=now))
                running = c.execute(
                    select(func.count()).where(
                        tasks.c.job_id == job_id, tasks.c.status == TaskStatus.RUNNING
                    )
                ).scalar_one()
                limit = min(limit, cap - int(running))
                if limit <= 0:
                    return []
            ready = (tasks.c.status == TaskStatus.PENDING) & (tasks.c.available_at <= now)
            pick = (
                select(tasks.c.id)
                .where(tasks.c.job_id == job_id, ready)
                .order_by(tasks.c.weight.desc(), tasks.c.id)
                .limit(limit)
            )
            if self.dialect == "postgresql":
                pick = pick.with_for_update(skip_locked=True)
            stmt = (
                update(tasks)
                .where(tasks.c.id.in_(pick.scalar_subquery()), ready)
                .values(
                    status=TaskStatus.RUNNING,
                    attempt=tasks.c.attempt + 1,
                    claimed_by=owner,
                    started_at=utcnow(),
                    lease_expires_at=now + lease,
                )
                .returning(
                    tasks.c.id,
                    tasks.c.document_id,
                    tasks.c.file_path,
                    tasks.c.page_index,
                    tasks.c.attempt,
                    tasks.c.weight,
                )
            )
            rows = c.execute(stmt).all()
            doc_ids = list({r[1] for r in rows})
            docs = (
                {
                    d[0]: (d[1], d[2])
                    for d in c.execute(
                        select(
                            documents.c.id, documents.c.content_hash, documents.c.page_count
                        ).where(documents.c.id.in_(doc_ids))
                    )
                }
                if doc_ids
                else {}
            )
        rows.sort(key=lambda r: (-r[5], r[0]))  # RETURNING order is unspecified
        return [
            PageTask(
                task_id=r[0],
                job_id=job_id,
                document_id=r[1],
                path=r[2],
                page_index=r[3],
                attempt=r[4],
                page_count=int(docs.get(r[1], (None, 1))[1] or 1),
                content_hash=docs.get(r[1], (None, 1))[0],
            )
            for r in rows
        ]

    def renew(self, task_ids: Sequence[int], owner: str, lease: float = LEASE_SECONDS) -> int:
        """Extend the leases of this coordinator's in-flight tasks."""
        if not task_ids:
            return 0
        with self._begin() as c:
            res = c.execute(
                update(tasks)
                .where(
                    tasks.c.id.in_(list(task_ids)),
                    tasks.c.status == TaskStatus.RUNNING,
                    tasks.c.claimed_by == owner,
                )
                .values(lease_expires_at=time.time() + lease)
            )
            return int(res.rowcount or 0)

    def next_ready_in(self, job_id: int) -> float | None:
        """Seconds until the next pending task is ready (backoff), None if none pending."""
        with self.engine.connect() as c:
            t = c.execute(
                select(func.min(tasks.c.available_at)).where(
                    tasks.c.job_id == job_id, tasks.c.status == TaskStatus.PENDING
                )
            ).scalar()
        return None if t is None else max(0.0, float(t) - time.time())

    def unfinished_tasks(self, job_id: int) -> int:
        with self.engine.connect() as c:
            return int(
                c.execute(
                    select(func.count()).where(
                        tasks.c.job_id == job_id,
                        tasks.c.status.in_([TaskStatus.PENDING, TaskStatus.RUNNING]),
                    )
                ).scalar_one()
            )

    def record(
        self, job_id: int, outcomes: Sequence[PageOutcome], policy: RetryPolicy
    ) -> RecordDelta:
        """Record a batch of outcomes in one transaction; failures are retried by policy.

        The rows are read under lock first (SQLite: the transaction holds the write lock
        from BEGIN IMMEDIATE; PostgreSQL: FOR UPDATE, documents before tasks, in id order),
        so an outcome whose task is no longer running that attempt is recognised as stale
        before anything is written, and the writes go out as a few executemany batches.
        """
        if not outcomes:
            return RecordDelta()
        now_dt, now = utcnow(), time.time()
        by_id = {o.task_id: o for o in outcomes}
        with self._begin() as c:
            cur_q = select(
                tasks.c.id,
                tasks.c.status,
                tasks.c.attempt,
                tasks.c.retry_count,
                tasks.c.max_retries,
                tasks.c.document_id,
            ).where(tasks.c.id.in_(sorted(by_id)))
            if self.dialect == "postgresql":
                doc_ids = select(tasks.c.document_id).where(tasks.c.id.in_(sorted(by_id)))
                c.execute(
                    select(documents.c.id)
                    .where(documents.c.id.in_(doc_ids))
                    .order_by(documents.c.id)
                    .with_for_update()
                )
                cur_q = cur_q.order_by(tasks.c.id).with_for_update()
            current = {r[0]: r for r in c.execute(cur_q)}
            completed: list[dict[str, Any]] = []
            retry: list[dict[str, Any]] = []
            final_fail: list[dict[str, Any]] = []
            touched: set[int] = set()
            stale = 0
            for o in outcomes:
                row = current.get(o.task_id)
                if row is None or row[1] != TaskStatus.RUNNING or row[2] != o.attempt:
                    stale += 1
                    continue
                common = {
                    "_id": o.task_id,
                    "worker_id": o.worker_id,
                    "processing_time": o.processing_time,
                    "cpu_time": o.cpu_time,
                    "info": dict(o.info) or None,
                }
                if o.ok:
                    page = dict(o.page or {})
                    completed.append(
                        {
                            **common,
                            "result_text": page.get("text", ""),
                            "confidence": page.get("conf"),
                            "result_json": page,
                        }
                    )
                    touched.add(row[5])
                    continue
                err = {**common, "error_kind": o.error_kind, "error_message": o.error_message}
                decision = RetryPolicy(
                    max_retries=row[4],
                    backoff=policy.backoff,
                    backoff_max=policy.backoff_max,
                    jitter=policy.jitter,
                ).decide(o.retryable, row[3])
                if decision is not None:
                    retry.append(
                        {**err, "retry_count": row[3] + 1, "available_at": now + decision.delay}
                    )
                else:
                    final_fail.append(err)
                    touched.add(row[5])
            guard = (tasks.c.id == bindparam("_id"), tasks.c.status == TaskStatus.RUNNING)
            released = {"claimed_by": None, "lease_expires_at": None}
            if completed:
                c.execute(
                    update(tasks)
                    .where(*guard)
                    .values(
                        status=TaskStatus.COMPLETED,
                        completed_at=now_dt,
                        error_kind=None,
                        error_message=None,
                        **released,
                    ),
                    completed,
                )
            if retry:
                c.execute(
                    update(tasks).where(*guard).values(status=TaskStatus.PENDING, **released), retry
                )
            if final_fail:
                c.execute(
                    update(tasks)
                    .where(*guard)
                    .values(status=TaskStatus.FAILED, completed_at=now_dt, **released),
                    final_fail,
                )
            done, failed = len(completed) + len(final_fail), len(final_fail)
            docs_done, docs_failed = self._finish_documents(c, touched, now_dt)
            c.execute(
                update(jobs)
                .where(jobs.c.id == job_id)
                .values(
                    processed_pages=jobs.c.processed_pages + done,
                    successful_pages=jobs.c.successful_pages + (done - failed),
                    failed_pages=jobs.c.failed_pages + failed,
                    processed_documents=jobs.c.processed_documents + docs_done,
                    successful_documents=jobs.c.successful_documents + (docs_done - docs_failed),
                    failed_documents=jobs.c.failed_documents + docs_failed,
                    cpu_seconds=jobs.c.cpu_seconds + sum(o.cpu_time for o in outcomes),
                    updated_at=now_dt,
                )
            )
            self._refresh_progress(c, job_id)
        return RecordDelta(done, failed, len(retry), docs_done, docs_failed, stale)

    @staticmethod
    def _finish_documents(c: Connection, doc_ids: set[int], now: dt.datetime) -> tuple[int, int]:
        """Mark documents whose pages are all terminal; each exactly once.

        Runs inside ``record``'s transaction, which holds the document rows (PostgreSQL:
        FOR UPDATE; SQLite: the write lock), so the pending check below cannot race.
        """
        if not doc_ids:
            return 0, 0
        agg = c.execute(
            select(
                tasks.c.document_id,
                func.count(),
                func.sum(case((tasks.c.status == TaskStatus.COMPLETED, 1), else_=0)),
                func.sum(case((tasks.c.status == TaskStatus.FAILED, 1), else_=0)),
                func.sum(func.coalesce(tasks.c.processing_time, 0.0)),
            )
            .select_from(tasks.join(documents, tasks.c.document_id == documents.c.id))
            .where(
                tasks.c.document_id.in_(sorted(doc_ids)),
                documents.c.status == DocumentStatus.PENDING,
            )
            .group_by(tasks.c.document_id)
        ).all()
        rows: list[dict[str, Any]] = []
        failed = 0
        for doc_id, total, ok, bad, ptime in agg:
            if ok + bad < total:
                continue
            error = None
            if bad:
                failed += 1
                errs = c.execute(
                    select(tasks.c.page_index, tasks.c.error_message)
                    .where(tasks.c.document_id == doc_id, tasks.c.status == TaskStatus.FAILED)
                    .order_by(tasks.c.page_index)
                    .limit(3)
                ).all()
                error = (
                    errs[0][1]
                    if total == 1
                    else "; ".join(f"page {p + 1}: {m}" for p, m in errs)
                    + (f" (and {bad - 3} more pages)" if bad > 3 else "")
                )
            rows.append(
                {
                    "_id": doc_id,
                    "_status": DocumentStatus.FAILED if bad else DocumentStatus.COMPLETED,
                    "_error": error,
                    "_ptime": float(ptime or 0),
                }
            )
        if rows:
            c.execute(
                update(documents)
                .where(
                    documents.c.id == bindparam("_id"), documents.c.status == DocumentStatus.PENDING
                )
                .values(
                    status=bindparam("_status"),
                    error_message=bindparam("_error"),
                    completed_at=now,
                    processing_time=bindparam("_ptime"),
                ),
                rows,
            )
        return len(rows), failed

    @staticmethod
    def _refresh_progress(c: Connection, job_id: int) -> None:
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

    def requeue(
        self, job_id: int, task_ids: Sequence[int] | None = None, *, owner: str | None = None
    ) -> int:
        """Put running tasks back to pending (all of the job's, or just ``task_ids``; only
        those claimed by ``owner`` if given, so that other coordinators keep theirs).

        The attempt they were on is not counted as a retry: a pause or a crash of the
        coordinator is not the page's fault.
        """
        stmt = (
            update(tasks)
            .where(tasks.c.job_id == job_id, tasks.c.status == TaskStatus.RUNNING)
            .values(
                status=TaskStatus.PENDING, claimed_by=None, lease_expires_at=None, available_at=0.0
            )
        )
        if owner is not None:
            stmt = stmt.where(tasks.c.claimed_by == owner)
        if task_ids is not None:
            if not task_ids:
                return 0
            stmt = stmt.where(tasks.c.id.in_(list(task_ids)))
        with self._begin() as c:
            return int(c.execute(stmt).rowcount or 0)

    def reset_failed(self, job_id: int) -> int:
        """retry-failed: failed pages back to pending with fresh retries; counters recounted.

        Documents that failed at discovery (no pages) are retried by resume's discovery.
        """
        with self._begin() as c:
            n = c.execute(
                update(tasks)
                .where(tasks.c.job_id == job_id, tasks.c.status == TaskStatus.FAILED)
                .values(
                    status=TaskStatus.PENDING, retry_count=0, available_at=0.0, completed_at=None
                )
            ).rowcount
            doc_ids = select(tasks.c.document_id).where(
                tasks.c.job_id == job_id, tasks.c.status == TaskStatus.PENDING
            )
            c.execute(
                update(documents)
                .where(documents.c.id.in_(doc_ids), documents.c.status == DocumentStatus.FAILED)
                .values(status=DocumentStatus.PENDING, error_message=None, completed_at=None)
            )
            self._recount(c, job_id)
        return int(n or 0)

    def recount(self, job_id: int) -> None:
        """Recompute a job's counters from its rows (after a crash or a reset)."""
        with self._begin() as c:
            self._recount(c, job_id)

    def _recount(self, c: Connection, job_id: int) -> None:
        t: dict[str, int] = dict(
            c.execute(
                select(tasks.c.status, func.count())
                .where(tasks.c.job_id == job_id)
                .group_by(tasks.c.status)
            ).all()
        )
        d: dict[str, int] = dict(
            c.execute(
                select(documents.c.status, func.count())
                .where(documents.c.job_id == job_id)
                .group_by(documents.c.status)
            ).all()
        )
        reused = c.execute(
            select(func.count()).where(
                documents.c.job_id == job_id, documents.c.reused_from.is_not(None)
            )
        ).scalar()
        pages_ok, pages_bad = t.get(TaskStatus.COMPLETED, 0), t.get(TaskStatus.FAILED, 0)
        docs_ok, docs_bad = d.get(DocumentStatus.COMPLETED, 0), d.get(DocumentStatus.FAILED, 0)
        c.execute(
            update(jobs)
            .where(jobs.c.id == job_id)
            .values(
                total_pages=sum(t.values()),
                processed_pages=pages_ok + pages_bad,
                successful_pages=pages_ok,
                failed_pages=pages_bad,
                total_documents=sum(d.values()),
                processed_documents=docs_ok + docs_bad,
                successful_documents=docs_ok,
                failed_documents=docs_bad,
                reused_documents=reused,
                updated_at=utcnow(),
            )
        )
        self._refresh_progress(c, job_id)

    def cancel_pending(self, job_id: int, *, running: bool = True) -> None:
        """cancel: pending (and, with ``running``, running) pages and unfinished documents
        become cancelled. Without ``running``, the coordinators that hold the running
        pages stop them and cancel them within a second."""
        statuses = [TaskStatus.PENDING, TaskStatus.RUNNING] if running else [TaskStatus.PENDING]
        with self._begin() as c:
            c.execute(
                update(tasks)
                .where(tasks.c.job_id == job_id, tasks.c.status.in_(statuses))
                .values(status=TaskStatus.CANCELLED, claimed_by=None)
            )
            c.execute(
                update(documents)
                .where(documents.c.job_id == job_id, documents.c.status == DocumentStatus.PENDING)
                .values(status=DocumentStatus.CANCELLED)
            )

    def update_task_info(self, updates: Sequence[tuple[int, dict[str, Any] | None]]) -> None:
        """Replace the ``info`` of tasks (accuracy scores, review flags), in one transaction."""
        if not updates:
            return
        stmt = (
            update(tasks).where(tasks.c.id == bindparam("tid")).values(info=bindparam("new_info"))
        )
        with self._begin() as c:
            c.execute(stmt, [{"tid": t, "new_info": info} for t, info in updates])

    # -- reading results ------------------------------------------------------------
    def iter_documents(self, job_id: int, chunk: int = 500) -> Iterator[dict[str, Any]]:
        """Every document of the job, in discovery order, with its pages: streamed in
        chunks so that exporting a million documents holds one chunk in memory."""
        last = 0
        while True:
            with self.engine.connect() as c:
                docs = (
                    c.execute(
                        select(documents)
                        .where(documents.c.job_id == job_id, documents.c.id > last)
                        .order_by(documents.c.id)
                        .limit(chunk)
                    )
                    .mappings()
                    .all()
                )
                if not docs:
                    return
                ids = [d["id"] for d in docs]
                pages: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
                for t in c.execute(
                    select(tasks)
                    .where(tasks.c.document_id.in_(ids))
                    .order_by(tasks.c.document_id, tasks.c.page_index)
                ).mappings():
                    pages[t["document_id"]].append(dict(t))
            for d in docs:
                yield {**dict(d), "pages": pages[d["id"]]}
            last = ids[-1]

    def iter_failed_pages(self, job_id: int) -> Iterator[dict[str, Any]]:
        """Failed pages and documents that failed before having pages (errors.jsonl)."""
        with self.engine.connect() as c:
            q = (
                select(
                    documents.c.path,
                    documents.c.error_message.label("doc_error"),
                    tasks.c.page_index,
                    tasks.c.error_kind,
                    tasks.c.error_message,
                    tasks.c.attempt,
                    tasks.c.retry_count,
                    tasks.c.worker_id,
                )
                .select_from(documents.outerjoin(tasks, tasks.c.document_id == documents.c.id))
                .where(
                    documents.c.job_id == job_id,
                    documents.c.status == DocumentStatus.FAILED,
                    (tasks.c.id.is_(None)) | (tasks.c.status == TaskStatus.FAILED),
                )
                .order_by(documents.c.id, tasks.c.page_index)
            )
            for r in c.execute(q.execution_options(yield_per=1000)).mappings():
                yield dict(r)

    def page_stats(self, job_id: int) -> dict[str, Any]:
        """Aggregates over the pages this job OCRed itself (not reused ones), for the summary."""
        own = documents.c.reused_from.is_(None)
        j = tasks.join(documents, tasks.c.document_id == documents.c.id)
        with self.engine.connect() as c:
            r = c.execute(
                select(
                    func.count(),
                    func.sum(tasks.c.processing_time),
                    func.avg(tasks.c.confidence),
                )
                .select_from(j)
                .where(
                    tasks.c.job_id == job_id,
                    own,
                    tasks.c.status.in_([TaskStatus.COMPLETED, TaskStatus.FAILED]),
                )
            ).one()
            retries = c.execute(
                select(func.sum(tasks.c.retry_count))
                .select_from(j)
                .where(tasks.c.job_id == job_id, own)
            ).scalar()
            docs = c.execute(
                select(func.count()).where(
                    documents.c.job_id == job_id,
                    own,
                    documents.c.page_count > 0,
                    documents.c.status.in_([DocumentStatus.COMPLETED, DocumentStatus.FAILED]),
                )
            ).scalar()
            kinds: dict[Any, int] = dict(
                c.execute(
                    select(tasks.c.error_kind, func.count())
                    .where(tasks.c.job_id == job_id, tasks.c.status == TaskStatus.FAILED)
                    .group_by(tasks.c.error_kind)
                ).all()
            )
        return {
            "ocr_pages": r[0] or 0,
            "ocr_documents": int(docs or 0),
            "processing_seconds": float(r[1] or 0.0),
            "mean_confidence": None if r[2] is None else float(r[2]),
            "retries": int(retries or 0),
            "failures_by_kind": {str(k): v for k, v in kinds.items()},
        }


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # transactions are begun by _sqlite_begin
    cur = dbapi_conn.cursor()
    # WAL: `ocrbatch status` reads while a run writes; NORMAL sync is crash-safe in WAL.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def _sqlite_begin(conn: Connection) -> None:
    # Writers take the write lock up front; readers (status, exports) stay deferred and,
    # in WAL mode, never wait for a writer.
    immediate = conn.get_execution_options().get("ocrbatch_write", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _safe(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def _one_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc)
    return " ".join(text.split())[:300]
