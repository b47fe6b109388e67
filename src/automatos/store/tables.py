"""The database schema (SQLAlchemy Core). Changes go through an Alembic migration."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    true,
)

__all__ = [
    "agent_metrics",
    "agents",
    "events",
    "llm_calls",
    "metadata",
    "subtask_results",
    "workflow_executions",
    "workspaces",
]

metadata = MetaData()

workspaces = Table(
    "workspaces",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

agents = Table(
    "agents",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("workspace_id", String(64), ForeignKey("workspaces.id"), nullable=False),
    Column("name", String(128), nullable=False),
    Column("spec", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("workspace_id", "name", name="uq_agents_workspace_name"),
)

agent_metrics = Table(
    "agent_metrics",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("agent_id", Integer, ForeignKey("agents.id", ondelete="CASCADE"), nullable=False),
    Column("task_type", String(64), nullable=False),
    Column("success_rate", Float, nullable=False),
    Column("avg_quality", Float, nullable=False),
    Column("avg_latency_s", Float, nullable=False),
    Column("avg_cost_usd", Float, nullable=False),
    Column("total_executions", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("agent_id", "task_type", name="uq_agent_metrics_agent_type"),
)

workflow_executions = Table(
    "workflow_executions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("workspace_id", String(64), ForeignKey("workspaces.id"), nullable=False),
    Column("request", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("stages", JSON, nullable=False),
    Column("plan", JSON),
    Column("totals", JSON),
    Column("final_answer", Text),
    Column("error", Text),
    Column("quality", JSON),
    Column("extra", JSON, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Column("heartbeat_at", DateTime(timezone=True)),
    # When the running workflow last renewed its lease; an old one means its process died.
    Index("ix_workflow_executions_started_at", "started_at"),
    Index("ix_workflow_executions_status", "status"),
)

subtask_results = Table(
    "subtask_results",
    metadata,
    Column(
        "workflow_id",
        String(64),
        ForeignKey("workflow_executions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("subtask_id", String(128), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("agent", String(128)),
    Column("output", Text),
    Column("tokens_in", Integer, nullable=False),
    Column("tokens_out", Integer, nullable=False),
    Column("cost_usd", Float, nullable=False),
    Column("latency_s", Float, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("error", JSON),
)

events = Table(
    "events",
    metadata,
    Column(
        "workflow_id",
        String(64),
        ForeignKey("workflow_executions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("seq", Integer, primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("at", Float, nullable=False),
    Column("data", JSON, nullable=False),
)

llm_calls = Table(
    "llm_calls",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "workflow_id",
        String(64),
        ForeignKey("workflow_executions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("stage", String(32), nullable=False),
    Column("model", String(200), nullable=False),
    Column("subtask_id", String(128)),
    Column("tokens_in", Integer, nullable=False),
    Column("tokens_out", Integer, nullable=False),
    Column("cost_usd", Float, nullable=False),
    Column("latency_s", Float, nullable=False),
    Column("priced", Boolean, nullable=False, server_default=true()),
    Index("ix_llm_calls_workflow", "workflow_id"),
)
