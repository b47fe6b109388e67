"""The database schema (SQLAlchemy Core). Changes go through an Alembic migration."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
    true,
)

__all__ = [
    "ab_outcomes",
    "ab_tests",
    "agent_metrics",
    "agents",
    "api_keys",
    "events",
    "generations",
    "kb_chunks",
    "kb_documents",
    "llm_calls",
    "mcp_servers",
    "memories",
    "metadata",
    "prompt_active",
    "prompt_versions",
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
    Column("checkpoint", JSON),
    # What resuming the run needs that only its planning made (its plan, agents, …).
    Column("owner", String(32)),
    # The token of the process running it (a new one when it is resumed): the record takes
    # writes only from that process, so that one only stalled stops when another resumes it.
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
    Column("tool_calls", JSON),
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

prompt_versions = Table(
    "prompt_versions",
    metadata,
    Column("workspace_id", String(64), ForeignKey("workspaces.id"), primary_key=True),
    Column("slug", String(64), primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("text", Text, nullable=False),
    Column("note", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

prompt_active = Table(
    "prompt_active",
    metadata,
    Column("workspace_id", String(64), primary_key=True),
    Column("slug", String(64), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # Every write to a slug's versions or tests first locks this row (PostgreSQL).
    ForeignKeyConstraint(
        ["workspace_id", "slug", "version"],
        ["prompt_versions.workspace_id", "prompt_versions.slug", "prompt_versions.version"],
        name="fk_prompt_active_version",
    ),
)

_RUNNING = text("status = 'running'")
"""The condition of the index that keeps one running A/B test per slug."""

ab_tests = Table(
    "ab_tests",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("workspace_id", String(64), nullable=False),
    Column("slug", String(64), nullable=False),
    Column("control_version", Integer, nullable=False),
    Column("candidate_version", Integer, nullable=False),
    Column("share", Float, nullable=False),
    Column("min_per_arm", Integer, nullable=False),
    Column("looks", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("decision", Text, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("ended_at", DateTime(timezone=True)),
    ForeignKeyConstraint(
        ["workspace_id", "slug", "control_version"],
        ["prompt_versions.workspace_id", "prompt_versions.slug", "prompt_versions.version"],
        name="fk_ab_tests_control",
    ),
    ForeignKeyConstraint(
        ["workspace_id", "slug", "candidate_version"],
        ["prompt_versions.workspace_id", "prompt_versions.slug", "prompt_versions.version"],
        name="fk_ab_tests_candidate",
    ),
    # At most one running test per slug, whatever races the check before inserting.
    Index(
        "uq_ab_tests_running",
        "workspace_id",
        "slug",
        unique=True,
        sqlite_where=_RUNNING,
        postgresql_where=_RUNNING,
    ),
)

ab_outcomes = Table(
    "ab_outcomes",
    metadata,
    Column("test_id", Integer, ForeignKey("ab_tests.id", ondelete="CASCADE"), primary_key=True),
    Column("workflow_id", String(64), primary_key=True),
    Column("arm", String(16), nullable=False),
    Column("quality", Float),
    Column("success", Boolean, nullable=False),
    Column("tokens", Integer, nullable=False),
    Column("latency_s", Float, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
)

kb_documents = Table(
    "kb_documents",
    metadata,
    Column("workspace_id", String(64), ForeignKey("workspaces.id"), primary_key=True),
    # The sha256 of the path: a path may be longer than a PostgreSQL index entry can be.
    Column("path_key", String(64), primary_key=True),
    Column("path", Text, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("chunks", Integer, nullable=False),
    Column("tokens", Integer, nullable=False),
    Column("embedder", String(200), nullable=False),
    Column("tokenizer", String(200), nullable=False),
    Column("added_at", DateTime(timezone=True), nullable=False),
)

kb_chunks = Table(
    "kb_chunks",
    metadata,
    Column("workspace_id", String(64), primary_key=True),
    Column("id", String(64), primary_key=True),
    Column("path_key", String(64), nullable=False),
    Column("path", Text, nullable=False),
    Column("ordinal", Integer, nullable=False),
    Column("heading", Text, nullable=False),
    Column("text", Text, nullable=False),
    Column("tokens", Integer, nullable=False),
    Column("entropy", Float, nullable=False),
    Column("page", Integer),
    Column("embedder", String(200), nullable=False),
    Column("dimension", Integer, nullable=False),
    # float32, little-endian, ``dimension`` of them
    Column("vector", LargeBinary, nullable=False),
    ForeignKeyConstraint(
        ["workspace_id", "path_key"],
        ["kb_documents.workspace_id", "kb_documents.path_key"],
        name="fk_kb_chunks_document",
        ondelete="CASCADE",
    ),
    Index("ix_kb_chunks_document", "workspace_id", "path_key"),
)

memories = Table(
    "memories",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("workspace_id", String(64), ForeignKey("workspaces.id"), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("text", Text, nullable=False),
    Column("workflow_id", String(64), nullable=False),
    Column("agent", String(128)),
    Column("task_type", String(64)),
    Column("quality", Float),
    Column("succeeded", Boolean),
    Column("count", Integer, nullable=False),
    Column("tokens", Integer, nullable=False),
    Column("entropy", Float, nullable=False),
    Column("embedder", String(200), nullable=False),
    Column("dimension", Integer),  # NULL while pending: not embedded yet
    Column("vector", LargeBinary),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_memories_kind", "workspace_id", "kind"),
    Index("ix_memories_workflow", "workspace_id", "workflow_id"),
)

generations = Table(
    "generations",
    metadata,
    Column("workspace_id", String(64), ForeignKey("workspaces.id"), primary_key=True),
    # ``kb`` or ``memory``: bumped by each change to it, so that indexes know when to reload
    Column("subject", String(16), primary_key=True),
    Column("generation", Integer, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    # A random public id, not the row's order: ids say nothing of how many keys there are.
    Column("id", String(32), primary_key=True),
    Column("workspace_id", String(64), ForeignKey("workspaces.id"), nullable=False),
    Column("name", String(200), nullable=False),
    # The first characters of the secret, shown in lists; the secret itself is never kept.
    Column("prefix", String(16), nullable=False),
    # The hex sha256 of the whole secret: what a request's key is looked up by.
    Column("hash", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
    Column("last_used_at", DateTime(timezone=True)),
    UniqueConstraint("hash", name="uq_api_keys_hash"),
    Index("ix_api_keys_workspace", "workspace_id"),
)

mcp_servers = Table(
    "mcp_servers",
    metadata,
    # One server of a name per workspace: agents name it as ``mcp:NAME``.
    Column("workspace_id", String(64), ForeignKey("workspaces.id"), primary_key=True),
    Column("name", String(64), primary_key=True),
    # Its MCPServerConfig as JSON: how to start or reach it (command, env, URL, headers).
    Column("config", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
