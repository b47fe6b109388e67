"""The store contract runs unchanged on SQLite and on the PostgreSQL server at 127.0.0.1:5432.

Each PostgreSQL test gets a schema of its own, dropped afterwards, so runs do not see each
other's data.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from automatos.settings import StoreSettings
from automatos.store.sql import SqlStore

PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"
PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SqlStore]:
    if request.param == "sqlite":
        s = await SqlStore.open(StoreSettings(data_dir=tmp_path))
        yield s
        await s.aclose()
        return
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(PG_DSN)
    await admin.execute(f'CREATE SCHEMA "{schema}"')
    try:
        s = await SqlStore.open(
            StoreSettings(url=PG_URL),
            connect_args={"server_settings": {"search_path": schema}},
        )
        yield s
        await s.aclose()
    finally:
        await admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await admin.close()
