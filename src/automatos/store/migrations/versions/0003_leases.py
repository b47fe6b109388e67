"""Leases of running workflows, and whether each model call had a known price.

``heartbeat_at``: a running workflow renews it; a run whose lease has expired lost its process
and is marked ``interrupted``. Runs stored before have none: their ``started_at`` stands in.
``priced``: calls stored before were all priced (an unknown model then cost a silent $0).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("workflow_executions") as batch:
        batch.add_column(sa.Column("heartbeat_at", sa.DateTime(timezone=True)))
        batch.create_index("ix_workflow_executions_status", ["status"])
    with op.batch_alter_table("llm_calls") as batch:
        batch.add_column(sa.Column("priced", sa.Boolean, nullable=False, server_default=sa.true()))


def downgrade() -> None:
    with op.batch_alter_table("llm_calls") as batch:
        batch.drop_column("priced")
    with op.batch_alter_table("workflow_executions") as batch:
        batch.drop_index("ix_workflow_executions_status")
        batch.drop_column("heartbeat_at")
