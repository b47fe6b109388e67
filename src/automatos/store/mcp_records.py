"""The MCP servers of a workspace in SQL: added, listed, read and removed by name.

:class:`MCPRecords` is the part of :class:`~automatos.store.sql.SqlStore` that implements
:class:`~automatos.store.base.MCPServerStore`, scoped to the store's workspace: the servers
``automatos mcp add`` configures, which every agent of the workspace may name in its tools
(``mcp:NAME``). A server configured on one agent is part of that agent's spec, not kept here.

A config is kept as the JSON of its :class:`~automatos.domain.tools.MCPServerConfig` and
validated again when it is read: a row that no longer validates (edited by hand, or written by
a version whose configs had another shape) fails with a :class:`StoreError` naming the server,
not deep inside a run that starts it.
"""

from __future__ import annotations

from typing import Any, TypeAlias

from pydantic import ValidationError
from sqlalchemy import Row, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from automatos.domain.tools import MCPServerConfig
from automatos.errors import InvalidRequestError, StoreError
from automatos.store import kb_records
from automatos.store.base import MCPServerRecord
from automatos.store.failures import typed
from automatos.store.tables import mcp_servers

__all__ = ["MCPRecords"]

_AnyRow: TypeAlias = Row[*tuple[Any, ...]]

_MAX_NAME_CHARS = 64
"""The longest name the table holds; a longer one names no server."""


def _record(row: _AnyRow) -> MCPServerRecord:
    try:
        config = MCPServerConfig.model_validate(row.config)
    except ValidationError as exc:
        raise StoreError(
            f"the stored config of MCP server {row.name!r} is not valid: "
            f"{exc.error_count()} problem(s), first: {exc.errors()[0]['msg']}; remove it and "
            "add it again",
            transient=False,
        ) from None
    created = kb_records.aware(row.created_at)
    assert created is not None  # NOT NULL
    return MCPServerRecord(config=config, created_at=created)


class MCPRecords:
    """The MCP servers configured for the store's workspace."""

    engine: AsyncEngine
    workspace: str

    @typed
    async def add_mcp_server(self, config: MCPServerConfig) -> MCPServerRecord:
        """Keep ``config`` as the workspace's server of its name.

        Raises:
            InvalidRequestError: the workspace has a server of that name already (the one
                kept is left as it is: remove it first to replace it).
        """
        record = MCPServerRecord(config=config, created_at=kb_records.now())
        insert_into = (
            postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert
        )
        statement = (
            insert_into(mcp_servers)
            .values(
                workspace_id=self.workspace,
                name=config.name,
                config=config.model_dump(mode="json"),
                created_at=record.created_at,
            )
            # One statement, so that of two adds of a name at once exactly one is kept.
            .on_conflict_do_nothing(index_elements=["workspace_id", "name"])
            .returning(mcp_servers.c.name)
        )
        async with self.engine.begin() as conn:
            added = (await conn.execute(statement)).first()
        if added is None:
            raise InvalidRequestError(
                f"workspace {self.workspace!r} already has an MCP server {config.name!r}; "
                "remove it first to replace it"
            )
        return record

    @typed
    async def mcp_servers(self) -> list[MCPServerRecord]:
        """The workspace's servers, by name.

        Raises:
            StoreError: a stored config is no longer valid (the message names its server).
        """
        m = mcp_servers.c
        query = select(m.name, m.config, m.created_at).where(m.workspace_id == self.workspace)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query.order_by(m.name))).all()
        return [_record(row) for row in rows]

    @typed
    async def mcp_server(self, name: str) -> MCPServerRecord | None:
        """The workspace's server ``name``, or ``None``.

        Raises:
            StoreError: its stored config is no longer valid.
        """
        if len(name) > _MAX_NAME_CHARS:
            return None
        m = mcp_servers.c
        query = select(m.name, m.config, m.created_at).where(
            m.workspace_id == self.workspace, m.name == name
        )
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).one_or_none()
        return None if row is None else _record(row)

    @typed
    async def remove_mcp_server(self, name: str) -> None:
        """Forget the workspace's server ``name``; agents that name it no longer find it.

        Raises:
            InvalidRequestError: the workspace has no server of that name (the message names
                those it has).
        """
        m = mcp_servers.c
        mine = m.workspace_id == self.workspace
        async with self.engine.begin() as conn:
            removed = await conn.execute(
                delete(mcp_servers).where(mine, m.name == name).returning(m.name)
            )
            if removed.first() is not None:
                return
            known = list(
                (await conn.execute(select(m.name).where(mine).order_by(m.name))).scalars()
            )
        raise InvalidRequestError(
            f"workspace {self.workspace!r} has no MCP server {name[:80]!r}; its servers: "
            f"{', '.join(known) or 'none'}"
        )
