"""The first schema: workspaces, agents and their metrics, executions, results, events, calls.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "workspaces",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "agents",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("workspace_id", sa.String(64), sa.ForeignKey("workspaces.id"), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("spec", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("workspace_id", "name", name="uq_agents_workspace_name"),
    )
    op.create_table(
        "agent_metrics",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "agent_id", sa.Integer, sa.ForeignKey("agents.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("task_type", sa.String(64), nullable=False),
        sa.Column("success_rate", sa.Float, nullable=False),
        sa.Column("avg_quality", sa.Float, nullable=False),
        sa.Column("avg_latency_s", sa.Float, nullable=False),
        sa.Column("avg_cost_usd", sa.Float, nullable=False),
        sa.Column("total_executions", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("agent_id", "task_type", name="uq_agent_metrics_agent_type"),
    )
    op.create_table(
        "workflow_executions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("workspace_id", sa.String(64), sa.ForeignKey("workspaces.id"), nullable=False),
        sa.Column("request", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("stages", sa.JSON, nullable=False),
        sa.Column("plan", sa.JSON),
        sa.Column("totals", sa.JSON),
        sa.Column("final_answer", sa.Text),
        sa.Column("error", sa.Text),
        sa.Column("extra", sa.JSON, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_workflow_executions_started_at", "workflow_executions", ["started_at"])
    op.create_table(
        "subtask_results",
        sa.Column(
            "workflow_id",
            sa.String(64),
            sa.ForeignKey("workflow_executions.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("subtask_id", sa.String(128), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("agent", sa.String(128)),
        sa.Column("output", sa.Text),
        sa.Column("tokens_in", sa.Integer, nullable=False),
        sa.Column("tokens_out", sa.Integer, nullable=False),
        sa.Column("cost_usd", sa.Float, nullable=False),
        sa.Column("latency_s", sa.Float, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("error", sa.JSON),
    )
    op.create_table(
        "events",
        sa.Column(
            "workflow_id",
            sa.String(64),
            sa.ForeignKey("workflow_executions.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
    )
    op.create_table(
        "llm_calls",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "workflow_id",
            sa.String(64),
            sa.ForeignKey("workflow_executions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("stage", sa.String(32), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("subtask_id", sa.String(128)),
        sa.Column("tokens_in", sa.Integer, nullable=False),
        sa.Column("tokens_out", sa.Integer, nullable=False),
        sa.Column("cost_usd", sa.Float, nullable=False),
        sa.Column("latency_s", sa.Float, nullable=False),
    )
    op.create_index("ix_llm_calls_workflow", "llm_calls", ["workflow_id"])


def downgrade() -> None:
    for name in (
        "llm_calls",
        "events",
        "subtask_results",
        "workflow_executions",
        "agent_metrics",
        "agents",
        "workspaces",
    ):
        op.drop_table(name)
