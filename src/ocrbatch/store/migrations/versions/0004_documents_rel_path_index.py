"""documents: index on (job_id, rel_path), so each new document's output name is checked
against the job's in an index lookup (rel paths are unique per job)

Not a unique index: a database written before this revision may hold duplicates (two
inputs of the same base name), and those jobs must still open and export.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 12:00:00.000000
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_documents_job_id_rel_path"), ["job_id", "rel_path"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_documents_job_id_rel_path"))
