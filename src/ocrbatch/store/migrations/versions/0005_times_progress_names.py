"""one time type, live progress apart from the summary, names that say what they hold

- every point in time is a timezone-aware datetime: jobs.heartbeat_at, tasks.available_at
  and tasks.lease_expires_at were epoch floats (values converted);
- jobs.progress (live figures) apart from jobs.summary (the final summary); jobs.error
  (why a job failed as a whole); jobs.running_since (run time accounting); jobs.workers
  (worker slots of the last run; max_workers is only the per-job cap now);
- jobs.timeout_per_document (a per-page timeout) renamed page_timeout; jobs.batch_size
  (never read) dropped;
- the stored job configs take the option names of the CLI: formats -> format,
  max_image_pixels -> max_pixels; batch_size (outcomes per commit) is no job option any
  more; a queued job's workers (its cap) -> max_workers.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 12:00:00.000000
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_TIME = sa.DateTime(timezone=True)


def _to_datetime(column: str) -> str:
    """SQL turning an epoch-seconds float column into the datetime SQLAlchemy stores."""
    if op.get_bind().dialect.name == "sqlite":
        # SQLAlchemy keeps SQLite datetimes as 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC, naive).
        return (
            f"CASE WHEN {column} IS NULL THEN NULL ELSE "
            f"strftime('%Y-%m-%d %H:%M:%S', {column}, 'unixepoch') || '.' || "
            f"printf('%06d', CAST(({column} - CAST({column} AS INTEGER)) * 1000000 AS INTEGER))"
            " END"
        )
    return f"to_timestamp({column})"


def _convert_times(table: str, columns: list[str]) -> None:
    with op.batch_alter_table(table, schema=None) as b:
        for col in columns:
            b.add_column(sa.Column(f"{col}_new", _TIME, nullable=True))
    sets = ", ".join(f"{col}_new = {_to_datetime(col)}" for col in columns)
    op.execute(f"UPDATE {table} SET {sets}")  # noqa: S608 - fixed column names


def _rename_config_keys() -> None:
    conn = op.get_bind()
    jobs = sa.table("jobs", sa.column("id"), sa.column("ocr_config", sa.JSON), sa.column("queue"))
    for job_id, cfg, queue in conn.execute(sa.select(jobs.c.id, jobs.c.ocr_config, jobs.c.queue)):
        if not isinstance(cfg, dict):
            continue  # not a config this release wrote: left as it is
        new: dict[str, Any] = dict(cfg)
        for old, name in (("formats", "format"), ("max_image_pixels", "max_pixels")):
            if old in new:
                new[name] = new.pop(old)
        new.pop("batch_size", None)
        if queue is not None and "workers" in new:
            new["max_workers"] = new.pop("workers")
        if new != cfg:
            conn.execute(sa.update(jobs).where(jobs.c.id == job_id).values(ocr_config=new))


def upgrade() -> None:
    _convert_times("tasks", ["available_at", "lease_expires_at"])
    with op.batch_alter_table("tasks", schema=None) as b:
        b.drop_index("ix_tasks_job_id_status_available_at")
        b.drop_column("available_at")
        b.drop_column("lease_expires_at")
    with op.batch_alter_table("tasks", schema=None) as b:
        b.alter_column(
            "available_at_new", new_column_name="available_at", existing_type=_TIME, nullable=False
        )
        b.alter_column(
            "lease_expires_at_new", new_column_name="lease_expires_at", existing_type=_TIME
        )
    with op.batch_alter_table("tasks", schema=None) as b:
        b.create_index("ix_tasks_job_id_status_available_at", ["job_id", "status", "available_at"])

    _convert_times("jobs", ["heartbeat_at"])
    with op.batch_alter_table("jobs", schema=None) as b:
        b.drop_column("heartbeat_at")
        b.drop_column("batch_size")
        b.alter_column(
            "timeout_per_document", new_column_name="page_timeout", existing_type=sa.Float()
        )
        b.add_column(sa.Column("workers", sa.Integer(), nullable=True))
        b.add_column(sa.Column("running_since", _TIME, nullable=True))
        b.add_column(sa.Column("progress", sa.JSON(), nullable=True))
        b.add_column(sa.Column("error", sa.Text(), nullable=True))
    with op.batch_alter_table("jobs", schema=None) as b:
        b.alter_column("heartbeat_at_new", new_column_name="heartbeat_at", existing_type=_TIME)
    _rename_config_keys()


def downgrade() -> None:
    raise NotImplementedError("0005 converts data; restore a backup to go back")
