"""standing jobs and what each document was when it was taken in

- jobs.watch: the settings of a standing job (`ocrbatch watch SOURCE`: its source, the
  settle time, the done prefix); None for a job that ends when its inputs are done;
- documents.source_stamp: what the file or object was when it was taken in (size and
  modification time; an object's ETag or version and size), so that a watched folder or
  prefix takes a file again only when it changed, across restarts.

(After 0006, the REST service's tables: one line of revisions, one head.)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 12:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("watch", sa.JSON(), nullable=True))
    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("source_stamp", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.drop_column("source_stamp")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("watch")
