"""Quality of each execution: stage 7's Q, interval, dimensions and gate.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("workflow_executions") as batch:
        batch.add_column(sa.Column("quality", sa.JSON))


def downgrade() -> None:
    with op.batch_alter_table("workflow_executions") as batch:
        batch.drop_column("quality")
