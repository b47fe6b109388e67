"""The MCP servers of a workspace in the store (added, listed, read, removed) on SQLite and
PostgreSQL, agents' tools kept with their specs, and the 0009 migration."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select, update

from automatos.domain.agent import AgentSpec
from automatos.domain.tools import MCPServerConfig
from automatos.errors import InvalidRequestError, StoreError
from automatos.store.base import MCPServerStore
from automatos.store.database import create_engine, database_url
from automatos.store.sql import SqlStore
from automatos.store.tables import agents, mcp_servers, workspaces
from tests.store.conftest import StoreTarget, alembic, differences, table_names

FILES = MCPServerConfig(
    name="files",
    command=("npx", "-y", "@modelcontextprotocol/server-filesystem", "/srv/data"),
    env={"FILES_TOKEN": "t0ps3cret"},
    cwd="/srv",
)
SEARCH = MCPServerConfig(
    name="search",
    url="https://mcp.example.test/mcp",
    headers={"Authorization": "Bearer abc123"},
)


async def test_a_server_is_added_listed_read_and_removed(store: SqlStore) -> None:
    assert isinstance(store, MCPServerStore)
    before = datetime.now(UTC)
    added = await store.add_mcp_server(SEARCH)
    await store.add_mcp_server(FILES)
    assert added.name == "search" and added.config == SEARCH
    assert before <= added.created_at <= datetime.now(UTC)

    listed = await store.mcp_servers()
    assert [r.name for r in listed] == ["files", "search"]  # by name
    assert [r.config for r in listed] == [FILES, SEARCH]  # every field as it was given
    assert listed[0].config.env == {"FILES_TOKEN": "t0ps3cret"}
    assert listed[1].created_at == added.created_at
    assert listed[1].created_at.tzinfo is not None

    found = await store.mcp_server("files")
    assert found is not None and found.config == FILES and found.config.transport == "stdio"
    assert await store.mcp_server("nothing") is None
    assert await store.mcp_server("x" * 10_000) is None

    await store.remove_mcp_server("files")
    assert await store.mcp_server("files") is None
    assert [r.name for r in await store.mcp_servers()] == ["search"]


async def test_a_name_already_there_is_refused_and_the_first_kept(store: SqlStore) -> None:
    await store.add_mcp_server(FILES)
    other = MCPServerConfig(name="files", url="http://127.0.0.1:9/mcp")
    with pytest.raises(InvalidRequestError, match="already has an MCP server 'files'"):
        await store.add_mcp_server(other)
    (kept,) = await store.mcp_servers()
    assert kept.config == FILES


async def test_removing_an_unknown_server_is_refused_naming_those_there(store: SqlStore) -> None:
    with pytest.raises(InvalidRequestError, match=r"no MCP server 'files'; its servers: none"):
        await store.remove_mcp_server("files")
    await store.add_mcp_server(SEARCH)
    await store.add_mcp_server(FILES)
    with pytest.raises(InvalidRequestError, match=r"no MCP server 'file'; its servers: files, se"):
        await store.remove_mcp_server("file")
    assert len(await store.mcp_servers()) == 2


async def test_each_workspace_has_its_own_servers(store_target: StoreTarget) -> None:
    first = await store_target.open(workspace="alpha")
    second = await store_target.open(workspace="beta")
    try:
        await first.add_mcp_server(FILES)
        # The same name in another workspace is another server.
        await second.add_mcp_server(FILES.model_copy(update={"cwd": "/beta"}))
        await second.add_mcp_server(SEARCH)
        assert [r.name for r in await first.mcp_servers()] == ["files"]
        assert [r.name for r in await second.mcp_servers()] == ["files", "search"]
        assert await first.mcp_server("search") is None
        found = await second.mcp_server("files")
        assert found is not None and found.config.cwd == "/beta"
        with pytest.raises(InvalidRequestError, match="workspace 'alpha' has no MCP server"):
            await first.remove_mcp_server("search")
        await second.remove_mcp_server("files")
        assert [r.name for r in await first.mcp_servers()] == ["files"]
    finally:
        await first.aclose()
        await second.aclose()


async def test_of_adds_of_one_name_at_once_exactly_one_is_kept(
    store_target: StoreTarget,
) -> None:
    """Two stores (two processes) add 'files' ten times each at once: one add wins."""
    first, second = await store_target.open(), await store_target.open()
    try:
        configs = [FILES.model_copy(update={"cwd": f"/d{i}"}) for i in range(20)]
        stores = [first, second] * 10
        outcomes = await asyncio.gather(
            *(s.add_mcp_server(c) for s, c in zip(stores, configs, strict=True)),
            return_exceptions=True,
        )
        won = [o for o in outcomes if not isinstance(o, BaseException)]
        lost = [o for o in outcomes if isinstance(o, BaseException)]
        assert len(won) == 1
        assert all(isinstance(e, InvalidRequestError) for e in lost), lost
        (kept,) = await second.mcp_servers()
        assert kept.config == won[0].config
    finally:
        await first.aclose()
        await second.aclose()


async def test_a_stored_config_that_no_longer_validates_names_its_server(
    store: SqlStore,
) -> None:
    await store.add_mcp_server(FILES)
    await store.add_mcp_server(SEARCH)
    async with store.engine.begin() as conn:
        await conn.execute(
            update(mcp_servers)
            .where(mcp_servers.c.name == "search")
            .values(config={"name": "search", "command": ["x"], "url": "http://h/mcp"})
        )
    with pytest.raises(StoreError, match="config of MCP server 'search' is not valid") as info:
        await store.mcp_servers()
    assert not info.value.retryable
    with pytest.raises(StoreError, match="'search'"):
        await store.mcp_server("search")
    found = await store.mcp_server("files")  # the others still read
    assert found is not None and found.config == FILES
    await store.remove_mcp_server("search")  # and the bad one can be removed
    assert [r.name for r in await store.mcp_servers()] == ["files"]


async def test_an_agent_s_tools_and_servers_are_kept(store: SqlStore) -> None:
    spec = AgentSpec(
        name="fs",
        tools=("calculator", "mcp:files", "search__web"),
        mcp_servers=(FILES,),
    )
    await store.save_agents([spec, AgentSpec(name="plain")])
    found = {a.name: a for a in await store.agents()}
    assert found["fs"] == spec
    assert found["fs"].mcp_servers[0].env == {"FILES_TOKEN": "t0ps3cret"}
    assert found["plain"].tools == () and found["plain"].mcp_servers == ()


async def test_an_agent_stored_before_tools_loads_without_them(store: SqlStore) -> None:
    """A row written by a version whose specs had neither ``tools`` nor ``mcp_servers``."""
    old = {
        "name": "veteran",
        "description": "from before tools",
        "capabilities": ["analysis"],
        "model": None,
        "system_prompt": "You are old.",
        "temperature": 0.3,
        "max_tokens": None,
        "cost_hint_usd": None,
    }
    async with store.engine.begin() as conn:
        await conn.execute(
            insert(agents).values(
                workspace_id=store.workspace,
                name="veteran",
                spec=old,
                created_at=datetime.now(UTC) - timedelta(days=400),
            )
        )
    (veteran,) = [a for a in await store.agents() if a.name == "veteran"]
    assert veteran.tools == () and veteran.mcp_servers == ()
    assert (veteran.description, veteran.temperature) == ("from before tools", 0.3)
    # Saved again (an edit), it keeps the new fields.
    await store.save_agent(veteran.model_copy(update={"tools": ("current_time",)}))
    (veteran,) = [a for a in await store.agents() if a.name == "veteran"]
    assert veteran.tools == ("current_time",)


async def test_the_0009_migration_makes_the_table_of_the_metadata(
    store_target: StoreTarget,
) -> None:
    engine = create_engine(database_url(store_target.settings), **store_target.options)
    now = datetime.now(UTC)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(alembic, "upgrade", "0008")
            assert "mcp_servers" not in await conn.run_sync(table_names)
            # A database in use at 0008: a workspace with an agent.
            await conn.execute(insert(workspaces).values(id="w", name="w", created_at=now))
            await conn.execute(
                insert(agents).values(
                    workspace_id="w", name="old", spec={"name": "old"}, created_at=now
                )
            )
            await conn.run_sync(alembic, "upgrade", "0009")
            assert "mcp_servers" in await conn.run_sync(table_names)
            assert await conn.run_sync(differences, {"mcp_servers"}) == []
            assert (await conn.execute(select(agents.c.name))).scalars().all() == ["old"]
            await conn.run_sync(alembic, "downgrade", "0008")
            assert "mcp_servers" not in await conn.run_sync(table_names)
            assert "agents" in await conn.run_sync(table_names)
    finally:
        await engine.dispose()
    store = await store_target.open(workspace="w")  # upgrades again
    try:
        await store.add_mcp_server(SEARCH)
        assert [r.name for r in await store.mcp_servers()] == ["search"]
        assert [a.name for a in await store.agents()] == ["old"]
    finally:
        await store.aclose()


async def test_a_server_of_a_workspace_that_is_not_there_is_refused(store: SqlStore) -> None:
    """The table's foreign key holds: no server names a workspace the database lacks."""
    with pytest.raises(StoreError):
        await SqlStore(store.engine, "nowhere").add_mcp_server(FILES)
    assert await SqlStore(store.engine, "nowhere").mcp_servers() == []
