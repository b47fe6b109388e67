"""Owners of running workflows.

``owner``: the token of the process that runs the workflow, set when it starts and replaced
when another process resumes it. Its lease renewals, rows, checkpoint and end are written
only while the token is still its own: a process that was only stalled (not dead) past its
lease finds, when it goes on, that the run was resumed elsewhere, and stops it. Runs stored
before have none: writes that name no owner are not checked.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("workflow_executions") as batch:
        batch.add_column(sa.Column("owner", sa.String(32)))


def downgrade() -> None:
    with op.batch_alter_table("workflow_executions") as batch:
        batch.drop_column("owner")
