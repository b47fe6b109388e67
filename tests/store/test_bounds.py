"""The store fails closed, on SQLite and PostgreSQL: a schema from a newer automatos is refused
and left alone, every database operation ends within ``store.timeout_s``, and every error is
one line."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import asyncpg
import pytest
from sqlalchemy import text

from automatos import StoreError
from automatos.domain.event import SubtaskStarted
from automatos.store import WriteBatch
from automatos.store.database import create_engine, database_url
from automatos.store.sql import SqlStore
from tests.store.conftest import PG_DSN, StoreTarget

FUTURE = "9999_future"


async def _set_revision(store: SqlStore, revision: str) -> None:
    async with store.engine.begin() as conn:
        await conn.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": revision})


async def _revision(store_target: StoreTarget) -> str | None:
    engine = create_engine(database_url(store_target.settings), **store_target.options)
    try:
        async with engine.connect() as conn:
            revision: str | None = await conn.scalar(
                text("SELECT version_num FROM alembic_version")
            )
            return revision
    finally:
        await engine.dispose()


async def test_a_store_of_a_newer_automatos_is_refused_and_left_alone(
    store_target: StoreTarget,
) -> None:
    store = await store_target.open()
    await _set_revision(store, FUTURE)
    await store.aclose()
    # with a password in the URL, on PostgreSQL (trust authentication ignores it)
    url = store_target.settings.url
    secret = {"url": url.replace("postgres@", "postgres:s3cret@")} if url else {}
    with pytest.raises(StoreError) as caught:
        await store_target.open(**secret)
    message = str(caught.value)
    assert not caught.value.retryable
    assert f"migration {FUTURE!r}" in message
    assert "newer schema" in message and "this version of automatos" in message
    if url:
        assert "s3cret" not in message
        assert "postgres:***@127.0.0.1:5432/test" in message
    else:
        assert str(store_target.settings.data_dir / "automatos.db") in message
    assert "\n" not in message
    assert await _revision(store_target) == FUTURE  # not downgraded, not touched


async def test_a_database_error_is_one_line(store: SqlStore) -> None:
    await store.start_execution("wf", "r", {})
    async with store.engine.begin() as conn:
        await conn.execute(text("DROP TABLE events"))
    batch = WriteBatch("wf", events=[SubtaskStarted(1, "wf", 1.0, "a", "writer", 1)])
    with pytest.raises(StoreError) as caught:
        await store.write(batch)
    message = str(caught.value)
    assert "\n" not in message
    assert "sqlalche.me" not in message and "[SQL:" not in message
    assert message.startswith("the store failed in write: ")
    assert "events" in message  # the driver's first line, which names the table


@asynccontextmanager
async def _write_lock_held(store_target: StoreTarget) -> AsyncIterator[None]:
    """Another connection holds the lock that writing a run needs, until the block ends."""
    if store_target.settings.url is None:
        other = sqlite3.connect(store_target.settings.data_dir / "automatos.db")
        other.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            other.rollback()
            other.close()
        return
    schema = store_target.options["connect_args"]["server_settings"]["search_path"]
    other = await asyncpg.connect(PG_DSN, server_settings={"search_path": schema})
    transaction = other.transaction()
    await transaction.start()
    await other.execute("LOCK TABLE workflow_executions IN ACCESS EXCLUSIVE MODE")
    try:
        yield
    finally:
        await transaction.rollback()
        await other.close()


async def _timed(work: Awaitable[object]) -> tuple[BaseException | None, float]:
    started = time.monotonic()
    try:
        # The bound of the test: a statement without one (as before) waits for ever.
        async with asyncio.timeout(8):
            await work
    except BaseException as exc:
        return exc, time.monotonic() - started
    return None, time.monotonic() - started


@pytest.mark.parametrize(
    "operation",
    [
        lambda store: store.start_execution("wf-blocked", "r", {}),
        lambda store: store.heartbeat("wf"),
    ],
    ids=["insert", "update"],
)
async def test_a_statement_that_waits_on_a_lock_ends_within_the_timeout(
    store_target: StoreTarget, operation: Callable[[SqlStore], Awaitable[object]]
) -> None:
    store = await store_target.open(timeout_s=0.5)
    try:
        async with _write_lock_held(store_target):
            error, took = await _timed(operation(store))
        assert isinstance(error, StoreError), repr(error)
        assert error.retryable  # the lock may be gone on the next try
        assert "\n" not in str(error)
        assert 0.4 < took < 4
        await store.start_execution("wf-after", "r", {})  # the store still works
    finally:
        await store.aclose()


async def test_a_hung_statement_on_postgresql_ends_within_the_timeout(
    store_target: StoreTarget,
) -> None:
    if store_target.settings.url is None:
        pytest.skip("SQLite has no server that can hang; its locks are bounded above")
    store = await store_target.open(timeout_s=0.3)
    try:

        async def sleep() -> None:
            async with store.engine.connect() as conn:
                await conn.execute(text("SELECT pg_sleep(5)"))

        error, took = await _timed(sleep())
        assert isinstance(error, TimeoutError), repr(error)
        assert took < 2
    finally:
        await store.aclose()
