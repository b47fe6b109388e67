"""The tool calls of a subtask's result.

``subtask_results.tool_calls``: the tools its agent called in the attempt that answered (or,
for a subtask that failed, in its last attempt), in order, as a JSON list of
``{tool, call_id, arguments_digest, latency_s, outcome, error}`` (a
:class:`~automatos.llm.base.ToolUse` each); never the arguments or results themselves.
Null for a subtask that called none, and for the rows stored before.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("subtask_results") as batch:
        batch.add_column(sa.Column("tool_calls", sa.JSON))


def downgrade() -> None:
    with op.batch_alter_table("subtask_results") as batch:
        batch.drop_column("tool_calls")
