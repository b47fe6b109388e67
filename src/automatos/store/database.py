"""Engines and migrations: SQLite by default, PostgreSQL by URL, schema by Alembic."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, event, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from automatos.settings import StoreSettings

__all__ = ["create_engine", "database_url", "migrate", "shown_url"]

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


def create_engine(url: str, **options: Any) -> AsyncEngine:
    """An async engine; SQLite connections get WAL, a busy timeout and foreign keys.

    Statement parameters are hidden from its errors (``hide_parameters``): they hold requests
    and outputs, which must not travel in a :class:`~automatos.errors.StoreError` into logs.
    """
    options.setdefault("hide_parameters", True)
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
                "busy_timeout=10000",
                "foreign_keys=ON",
            ):
                cursor.execute(f"PRAGMA {pragma}")
            cursor.close()

    return engine


def _upgrade(connection: Connection) -> None:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


async def migrate(engine: AsyncEngine) -> None:
    """Bring the schema to the newest migration.

    Two processes opening a new database at once both see it empty, and the slower one's
    ``CREATE TABLE`` fails; it then finds the schema made by the other and goes on.
    """
    for attempt in range(3):
        try:
            async with engine.begin() as connection:
                await connection.run_sync(_upgrade)
            return
        except OperationalError:
            if attempt == 2:
                raise
            await asyncio.sleep(0.2 * (attempt + 1))
