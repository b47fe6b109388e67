"""The knowledge base and memories: documents, their chunks, memories, and generations.

``kb_documents``: one row per file of a workspace's knowledge base, keyed by the sha256 of its
path (``path_key``): a path may be longer than a PostgreSQL index entry can be (about 2,700
bytes), so the path itself is kept, but not indexed. ``kb_chunks``: its chunks, each with its
vector (float32, little-endian bytes) and the embedder and dimension of it. ``memories``: what
workflows left for later ones (episodic, agent, collective). ``generations``: one counter per
workspace and subject (``kb``, ``memory``), bumped by every change, so that an index loaded in
memory knows when to reload.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "kb_documents",
        sa.Column("workspace_id", sa.String(64), sa.ForeignKey("workspaces.id"), primary_key=True),
        sa.Column("path_key", sa.String(64), primary_key=True),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("chunks", sa.Integer, nullable=False),
        sa.Column("tokens", sa.Integer, nullable=False),
        sa.Column("embedder", sa.String(200), nullable=False),
        sa.Column("tokenizer", sa.String(200), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "kb_chunks",
        sa.Column("workspace_id", sa.String(64), primary_key=True),
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("path_key", sa.String(64), nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("ordinal", sa.Integer, nullable=False),
        sa.Column("heading", sa.Text, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("tokens", sa.Integer, nullable=False),
        sa.Column("entropy", sa.Float, nullable=False),
        sa.Column("page", sa.Integer),
        sa.Column("embedder", sa.String(200), nullable=False),
        sa.Column("dimension", sa.Integer, nullable=False),
        sa.Column("vector", sa.LargeBinary, nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id", "path_key"],
            ["kb_documents.workspace_id", "kb_documents.path_key"],
            name="fk_kb_chunks_document",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_kb_chunks_document", "kb_chunks", ["workspace_id", "path_key"])
    op.create_table(
        "memories",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("workspace_id", sa.String(64), sa.ForeignKey("workspaces.id"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("workflow_id", sa.String(64), nullable=False),
        sa.Column("agent", sa.String(128)),
        sa.Column("task_type", sa.String(64)),
        sa.Column("quality", sa.Float),
        sa.Column("succeeded", sa.Boolean),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("tokens", sa.Integer, nullable=False),
        sa.Column("entropy", sa.Float, nullable=False),
        sa.Column("embedder", sa.String(200), nullable=False),
        # NULL until embedded: a run whose embedder is not loaded yet keeps its memories
        # pending, and the first recall embeds them
        sa.Column("dimension", sa.Integer),
        sa.Column("vector", sa.LargeBinary),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_memories_kind", "memories", ["workspace_id", "kind"])
    op.create_index("ix_memories_workflow", "memories", ["workspace_id", "workflow_id"])
    op.create_table(
        "generations",
        sa.Column("workspace_id", sa.String(64), sa.ForeignKey("workspaces.id"), primary_key=True),
        sa.Column("subject", sa.String(16), primary_key=True),
        sa.Column("generation", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_index("ix_memories_workflow", table_name="memories")
    op.drop_index("ix_memories_kind", table_name="memories")
    op.drop_index("ix_kb_chunks_document", table_name="kb_chunks")
    for name in ("generations", "memories", "kb_chunks", "kb_documents"):
        op.drop_table(name)
