"""Checkpoints: what resuming a run needs that only its planning made.

``checkpoint``: JSON saved once a running workflow has its plan and agents (again if a later
planning stage changes them); ``automatos runs resume`` restores the plan from it instead of
planning again. Runs stored before have none: resumed, they start over.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("workflow_executions") as batch:
        batch.add_column(sa.Column("checkpoint", sa.JSON))


def downgrade() -> None:
    with op.batch_alter_table("workflow_executions") as batch:
        batch.drop_column("checkpoint")
