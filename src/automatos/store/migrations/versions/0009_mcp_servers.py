"""MCP servers of a workspace: the tool servers every agent of the workspace may name.

``mcp_servers``: one row per server, keyed by the workspace it belongs to and its name (agents
name it as ``mcp:NAME``), how to start or reach it (the JSON of an
``MCPServerConfig``: a command with its environment, or a URL with its headers) and when it
was added.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mcp_servers",
        sa.Column("workspace_id", sa.String(64), sa.ForeignKey("workspaces.id"), primary_key=True),
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("config", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("mcp_servers")
