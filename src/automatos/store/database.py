"""Engines and migrations: SQLite by default, PostgreSQL by URL, schema by Alembic."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pydantic_core
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, event, make_url, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from automatos.settings import StoreSettings

__all__ = ["NewerSchemaError", "create_engine", "database_url", "migrate", "shown_url"]

_MIGRATIONS = Path(__file__).with_name("migrations")


def database_url(settings: StoreSettings) -> str:
    """The configured URL, or the SQLite file in the data directory."""
    if settings.url:
        return settings.url
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite+aiosqlite:///{settings.data_dir / 'automatos.db'}"


def shown_url(settings: StoreSettings) -> str:
    """Where the store is, fit to print: the URL without its password."""
    return make_url(database_url(settings)).render_as_string(hide_password=True)


def create_engine(url: str, *, timeout_s: float = 30.0, **options: Any) -> AsyncEngine:
    """An async engine; SQLite connections get WAL, a busy timeout and foreign keys.

    No database operation waits longer than ``timeout_s`` (``store.timeout_s``): on
    PostgreSQL, connecting, each statement (asyncpg's ``timeout`` and ``command_timeout``)
    and waiting for a pooled connection (``pool_timeout``); on SQLite, waiting for another
    process's lock (``busy_timeout``). A statement cut short fails with a transient error.

    Statement parameters are hidden from its errors (``hide_parameters``): they hold requests
    and outputs, which must not travel in a :class:`~automatos.errors.StoreError` into logs.

    Args:
        url: an SQLAlchemy URL with an async driver.
        timeout_s: longest one operation may wait.
        options: more arguments of ``create_async_engine``; ``connect_args`` given here are
            merged over the timeouts.
    """
    options.setdefault("hide_parameters", True)
    options.setdefault("json_serializer", dumps)
    backend = make_url(url).get_backend_name()
    # asyncpg bounds connecting and each statement; sqlite3 the wait for another's lock, until
    # the busy_timeout pragma below is set
    timeouts: dict[str, float] = {
        "postgresql": {"timeout": timeout_s, "command_timeout": timeout_s},
        "sqlite": {"timeout": timeout_s},
    }.get(backend, {})
    options["connect_args"] = {**timeouts, **options.get("connect_args", {})}
    if backend == "postgresql" and "poolclass" not in options:  # another pool may have none
        options.setdefault("pool_timeout", timeout_s)
    engine = create_async_engine(url, **options)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            # WAL lets readers (``automatos runs list``) work while a run writes; NORMAL
            # sync is durable across application crashes, which is what is promised.
            for pragma in (
                "journal_mode=WAL",
                "synchronous=NORMAL",
                f"busy_timeout={max(1, round(timeout_s * 1000))}",
                "foreign_keys=ON",
            ):
                cursor.execute(f"PRAGMA {pragma}")
            cursor.close()

    return engine


def dumps(value: Any) -> str:
    """JSON text of a column's value, by pydantic's Rust encoder: the JSON columns of a run
    (its checkpoint, plan, totals, events) are dumped for every workflow on the event loop,
    about six times faster than by :func:`json.dumps`. What it cannot encode, ``json.dumps``
    is asked for, so that a bad value fails as it always did (``TypeError``)."""
    try:
        return pydantic_core.to_json(value).decode()
    except pydantic_core.PydanticSerializationError:
        return json.dumps(value)


class NewerSchemaError(Exception):
    """The database's schema is at a migration this install does not have: a newer version
    of automatos made it. Upgrading it is that version's business; this one must not touch it.
    """

    def __init__(self, revision: str) -> None:
        super().__init__(revision)
        self.revision = revision


def _upgrade(connection: Connection) -> None:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["connection"] = connection
    # Alembic meets an unknown revision as a CommandError deep in ``upgrade``; said here, it
    # is a schema newer than this install, told apart from a database that cannot be reached.
    known = {script.revision for script in ScriptDirectory.from_config(config).walk_revisions()}
    for revision in MigrationContext.configure(connection).get_current_heads():
        if revision not in known:
            raise NewerSchemaError(revision)
    command.upgrade(config, "head")


_MIGRATION_LOCK = 0x6175746F6D61  # "automa": the advisory lock key of migrations


async def migrate(engine: AsyncEngine) -> None:
    """Bring the schema to the newest migration.

    Two processes opening a new database at once: on PostgreSQL they take turns (an
    advisory lock held by the migration's transaction); on SQLite both see it empty, the
    slower one's ``CREATE TABLE`` fails, and it then finds the schema made by the other.

    Raises:
        NewerSchemaError: a newer automatos migrated the database past what this one knows.
    """
    for attempt in range(3):
        try:
            async with engine.begin() as connection:
                if connection.dialect.name == "postgresql":
                    await connection.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK}
                    )
                await connection.run_sync(_upgrade)
            return
        except OperationalError:
            if attempt == 2:
                raise
            await asyncio.sleep(0.2 * (attempt + 1))
