"""The schema, as SQLAlchemy Core tables. Alembic migrations under ``migrations/`` build
it; a change here needs a new migration (``tests/unit/test_store.py`` checks they agree).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect

__all__ = [
    "EPOCH",
    "api_tokens",
    "documents",
    "job_webhooks",
    "jobs",
    "metadata",
    "tasks",
    "webhook_deliveries",
]


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC on every backend (SQLite keeps naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(dt.UTC)
            if dialect.name == "sqlite":
                value = value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# Every point in time is a UTCDateTime (``_at`` columns); every duration a Float of
# seconds (``_seconds``).
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
"""``available_at`` of a task that may run at once (never retried)."""

jobs = Table(
    "jobs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False, index=True),
    Column("description", Text),
    Column("mode", String(20), nullable=False),
    Column("priority", Integer, nullable=False, default=0),
    Column("status", String(20), nullable=False, index=True),
    # The most pages of this job running at once over all queue workers (submit
    # --max-workers); None: no cap.
    Column("max_workers", Integer),
    # Worker slots of the coordinator that ran the job last (the summary's "workers").
    Column("workers", Integer),
    Column("page_timeout", Float),
    Column("max_retries", Integer),
    Column("total_documents", Integer, nullable=False, default=0),
    Column("processed_documents", Integer, nullable=False, default=0),
    Column("successful_documents", Integer, nullable=False, default=0),
    Column("failed_documents", Integer, nullable=False, default=0),
    Column("reused_documents", Integer, nullable=False, default=0),
    Column("total_pages", Integer, nullable=False, default=0),
    Column("processed_pages", Integer, nullable=False, default=0),
    Column("successful_pages", Integer, nullable=False, default=0),
    Column("failed_pages", Integer, nullable=False, default=0),
    Column("progress_percentage", Float, nullable=False, default=0.0),
    Column("created_at", UTCDateTime, nullable=False),
    Column("started_at", UTCDateTime),
    Column("completed_at", UTCDateTime),
    Column("updated_at", UTCDateTime),
    Column("estimated_completion", UTCDateTime),
    # When the job last became running: run_seconds grows by the time until it stops.
    Column("running_since", UTCDateTime),
    Column("run_seconds", Float, nullable=False, default=0.0),
    Column("cpu_seconds", Float, nullable=False, default=0.0),
    Column("cpu_usage_avg", Float),
    Column("memory_usage_avg", Float),
    Column("memory_usage_peak", Float),
    Column("total_cost", Float, nullable=False, default=0.0),
    Column("ocr_config", JSON, nullable=False),
    Column("preprocessing_config", JSON),
    Column("result_key", String(64), nullable=False),
    Column("inputs", JSON, nullable=False),
    Column("discovery_done", Boolean, nullable=False, default=False),
    Column("force", Boolean, nullable=False, default=False),
    Column("output_path", Text),
    Column("error_log_path", Text),
    # Live figures while the job runs (pages/s, ETA), written by its coordinator.
    Column("progress", JSON),
    # The final summary (summary.json), written with the job's result files.
    Column("summary", JSON),
    # Why the job failed as a whole (e.g. its workers could not start), one line.
    Column("error", Text),
    Column("owner", String(200)),
    Column("heartbeat_at", UTCDateTime),
    # The named queue that `ocrbatch worker` processes take the job from; None for a job
    # that `ocrbatch run` runs in the foreground.
    Column("queue", String(100)),
    # The result files in output_path: None (not written yet), "complete", "partial"
    # (written at a pause, the job goes on) or "incomplete" (writing failed, e.g. a full
    # disk: `export` or `resume` writes them).
    Column("outputs", String(20)),
    # A standing job (`ocrbatch watch`): its source, settle seconds and done prefix; None
    # for a job that ends when its inputs are done.
    Column("watch", JSON),
    Index(None, "queue", "status", "priority"),
)

documents = Table(
    "documents",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("job_id", Integer, ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
    Column("path", Text, nullable=False),
    Column("rel_path", Text, nullable=False),
    Column("file_size", BigInteger),
    Column("content_hash", String(64)),
    # What the file was when taken in (size and mtime; an object's ETag and size): a
    # watched folder takes a path again only with a new stamp.
    Column("source_stamp", Text),
    Column("result_key", String(64), nullable=False),
    Column("page_count", Integer, nullable=False, default=1),
    Column("status", String(20), nullable=False),
    Column("error_message", Text),
    Column("reused_from", Integer),
    Column("processing_time", Float),
    Column("created_at", UTCDateTime, nullable=False),
    Column("completed_at", UTCDateTime),
    Index(None, "job_id", "id"),
    Index(None, "job_id", "path"),
    # rel_path names the document's output files: add_documents keeps it unique in a job.
    Index(None, "job_id", "rel_path"),
    Index(None, "result_key", "content_hash", "status"),
)

tasks = Table(
    "tasks",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("job_id", Integer, ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
    Column("document_id", Integer, ForeignKey("documents.id", ondelete="CASCADE"), nullable=False),
    Column("page_index", Integer, nullable=False),
    Column("file_path", Text, nullable=False),
    Column("status", String(20), nullable=False),
    Column("attempt", Integer, nullable=False, default=0),
    Column("retry_count", Integer, nullable=False, default=0),
    Column("max_retries", Integer, nullable=False),
    Column("weight", Float, nullable=False, default=0.0),
    Column("available_at", UTCDateTime, nullable=False, default=EPOCH),
    Column("started_at", UTCDateTime),
    Column("completed_at", UTCDateTime),
    Column("processing_time", Float),
    Column("cpu_time", Float),
    Column("result_text", Text),
    Column("confidence", Float),
    Column("result_json", JSON),
    Column("info", JSON),
    Column("error_kind", String(20)),
    Column("error_message", Text),
    Column("worker_id", String(200)),
    Column("claimed_by", String(200)),
    Column("lease_expires_at", UTCDateTime),
    UniqueConstraint("document_id", "page_index"),
    Index(None, "job_id", "status", "available_at"),
    # The claim's order (weight desc, id): no sort of a job's pending rows per claim
    # (measured: 1.5 s per claim on a job of 1M pending pages without it).
    Index("ix_tasks_claim_order", "job_id", "status", text("weight DESC"), "id"),
)

# -- the REST service (ocrbatch serve) --------------------------------------------------
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(100), nullable=False),
    # SHA-256 of the bearer token (tokens are 256 random bits: no salt or slow hash
    # needed); the token itself is shown once, when it is created.
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("scope", String(20), nullable=False),  # read | write
    # Signs the webhooks of jobs submitted with this token (HMAC-SHA256); kept in clear,
    # since the service needs it to sign.
    Column("webhook_secret", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime),
)

# The callback of a job submitted through the API (one per job), and the token whose
# secret signs its deliveries.
job_webhooks = Table(
    "job_webhooks",
    metadata,
    Column("job_id", Integer, ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
    Column("url", Text, nullable=False),
    Column("token_id", Integer, ForeignKey("api_tokens.id", ondelete="SET NULL")),
)

# Every webhook event of a job, queued in the transaction that changed the job's status,
# with each delivery attempt's outcome.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("job_id", Integer, ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
    Column("event", String(20), nullable=False),
    Column("url", Text, nullable=False),
    Column("payload", JSON, nullable=False),
    # pending (to send, at next_attempt_at), delivered, failed (gave up)
    Column("status", String(20), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("last_status_code", Integer),
    Column("last_error", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("delivered_at", UTCDateTime),
    Index(None, "job_id", "id"),
    Index(None, "status", "next_attempt_at"),
)
