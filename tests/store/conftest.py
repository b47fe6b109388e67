"""The store contract runs unchanged on SQLite and on the PostgreSQL server at 127.0.0.1:5432.

Each PostgreSQL test gets a schema of its own, dropped afterwards, so runs do not see each
other's data. ``store_target`` says where the test's database is, for tests that open it more
than once or from other processes; ``store`` is that database, opened.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect

import automatos.store
from automatos.settings import StoreSettings
from automatos.store.sql import SqlStore
from automatos.store.tables import metadata

PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"
PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


@dataclass(frozen=True)
class StoreTarget:
    """One test's database: its settings, and the engine options that reach its schema."""

    settings: StoreSettings
    options: dict[str, Any] = field(default_factory=dict)

    async def open(self, **settings: Any) -> SqlStore:
        """The store, opened with these settings changed (``lease_s=0.1``)."""
        return await SqlStore.open(self.settings.model_copy(update=settings), **self.options)

    def as_json(self) -> dict[str, Any]:
        """What a child process needs to open the same database."""
        return {"settings": self.settings.model_dump(mode="json"), "options": self.options}


@pytest.fixture(params=["sqlite", "postgresql"])
async def store_target(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[StoreTarget]:
    if request.param == "sqlite":
        yield StoreTarget(StoreSettings(data_dir=tmp_path))
        return
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(PG_DSN)
    await admin.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield StoreTarget(
            StoreSettings(url=PG_URL),
            {"connect_args": {"server_settings": {"search_path": schema}}},
        )
    finally:
        await admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await admin.close()


@pytest.fixture
async def store(store_target: StoreTarget) -> AsyncIterator[SqlStore]:
    s = await store_target.open()
    yield s
    await s.aclose()


def alembic(connection: Connection, action: str, revision: str) -> None:
    """Run the store's migrations ``action`` (``upgrade``, ``downgrade``) to ``revision``."""
    config = Config()
    config.set_main_option(
        "script_location", str(Path(automatos.store.__file__).with_name("migrations"))
    )
    config.attributes["connection"] = connection
    getattr(command, action)(config, revision)


def differences(connection: Connection, tables: set[str]) -> list[Any]:
    """How the database differs from the metadata, in what names one of ``tables``."""
    context = MigrationContext.configure(connection)
    return [
        diff
        for diff in compare_metadata(context, metadata)
        if any(name in str(diff) for name in tables)
    ]


def table_names(connection: Connection) -> set[str]:
    """The tables the database has."""
    return set(inspect(connection).get_table_names())
