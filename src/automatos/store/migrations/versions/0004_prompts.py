"""The prompt registry: versions of each stage's template, the active one, A/B tests, outcomes.

``prompt_versions``: every version of a slug's template, numbered from 1 (the built-in text).
``prompt_active``: the version in use of each slug. ``ab_tests``: tests of a candidate version
against the active one, at most one running per slug (a partial unique index, which SQLite
and PostgreSQL both have). ``ab_outcomes``: what each workflow of a test achieved, once.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_VERSION = ["prompt_versions.workspace_id", "prompt_versions.slug", "prompt_versions.version"]
_RUNNING = sa.text("status = 'running'")


def upgrade() -> None:
    op.create_table(
        "prompt_versions",
        sa.Column("workspace_id", sa.String(64), sa.ForeignKey("workspaces.id"), primary_key=True),
        sa.Column("slug", sa.String(64), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "prompt_active",
        sa.Column("workspace_id", sa.String(64), primary_key=True),
        sa.Column("slug", sa.String(64), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id", "slug", "version"], _VERSION, name="fk_prompt_active_version"
        ),
    )
    op.create_table(
        "ab_tests",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("workspace_id", sa.String(64), nullable=False),
        sa.Column("slug", sa.String(64), nullable=False),
        sa.Column("control_version", sa.Integer, nullable=False),
        sa.Column("candidate_version", sa.Integer, nullable=False),
        sa.Column("share", sa.Float, nullable=False),
        sa.Column("min_per_arm", sa.Integer, nullable=False),
        sa.Column("looks", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("decision", sa.Text, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True)),
        sa.ForeignKeyConstraint(
            ["workspace_id", "slug", "control_version"], _VERSION, name="fk_ab_tests_control"
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id", "slug", "candidate_version"], _VERSION, name="fk_ab_tests_candidate"
        ),
    )
    op.create_index(
        "uq_ab_tests_running",
        "ab_tests",
        ["workspace_id", "slug"],
        unique=True,
        sqlite_where=_RUNNING,
        postgresql_where=_RUNNING,
    )
    op.create_table(
        "ab_outcomes",
        sa.Column(
            "test_id",
            sa.Integer,
            sa.ForeignKey("ab_tests.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("workflow_id", sa.String(64), primary_key=True),
        sa.Column("arm", sa.String(16), nullable=False),
        sa.Column("quality", sa.Float),
        sa.Column("success", sa.Boolean, nullable=False),
        sa.Column("tokens", sa.Integer, nullable=False),
        sa.Column("latency_s", sa.Float, nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_index("uq_ab_tests_running", table_name="ab_tests")
    for name in ("ab_outcomes", "ab_tests", "prompt_active", "prompt_versions"):
        op.drop_table(name)
