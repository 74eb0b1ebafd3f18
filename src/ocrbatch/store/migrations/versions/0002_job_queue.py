"""job queue: jobs.queue and its index; the claim-order index of tasks

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 20:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("queue", sa.String(length=100), nullable=True))
        batch_op.create_index(
            "ix_jobs_queue_status_priority", ["queue", "status", "priority"], unique=False
        )
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.create_index(
            "ix_tasks_claim_order",
            ["job_id", "status", sa.text("weight DESC"), "id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_index("ix_tasks_claim_order")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_queue_status_priority")
        batch_op.drop_column("queue")
