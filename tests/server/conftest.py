"""A real server on a loopback port, over a SQLite store in the test's directory or PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI

from automatos import Settings
from automatos.domain.level import Level
from automatos.server.app import create_app
from automatos.settings import (
    ContextSettings,
    MemorySettings,
    PlanLimits,
    ServerSettings,
    StoreSettings,
)
from automatos.testing import ScriptedLLM
from tests.conftest import planner

PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


@pytest.fixture(params=["sqlite", "postgresql"])
def store_settings(request: pytest.FixtureRequest, tmp_path: Path) -> StoreSettings:
    """A SQLite file in the test's directory, or the PostgreSQL server in a workspace of
    the test's own (the API's scoping keeps tests apart in one database)."""
    if request.param == "sqlite":
        return StoreSettings(data_dir=tmp_path)
    return StoreSettings(url=PG_URL, data_dir=tmp_path, workspace=f"t{uuid.uuid4().hex[:12]}")


def settings_in(
    data: Path, server: ServerSettings | None = None, store: StoreSettings | None = None
) -> Settings:
    return Settings(
        store=store or StoreSettings(data_dir=data),
        plan=PlanLimits(level=Level.ORGAN),
        context=ContextSettings(enabled=False),
        memory=MemorySettings(enabled=False),
        # 100 requests at once in the idempotency test
        server=server or ServerSettings(burst=1_000, rate_per_s=1_000, shutdown_grace_s=2),
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def serving(
    data: Path,
    *,
    anonymous: bool,
    server: ServerSettings | None = None,
    store: StoreSettings | None = None,
) -> AsyncIterator[str]:
    """The server's base URL while it runs (a scripted model plans three steps)."""
    async with serving_app(data, anonymous=anonymous, server=server, store=store) as (url, _):
        yield url


@contextlib.asynccontextmanager
async def serving_app(
    data: Path,
    *,
    anonymous: bool,
    server: ServerSettings | None = None,
    store: StoreSettings | None = None,
    latency: float = 0.05,
    settings: Settings | None = None,
    llm: ScriptedLLM | None = None,
) -> AsyncIterator[tuple[str, FastAPI]]:
    """The server's base URL and its app while it runs (a scripted model plans three steps,
    each model call taking ``latency`` seconds); ``settings`` and ``llm`` replace the test
    settings and that model."""
    llm = llm or ScriptedLLM(
        rules=[
            planner(
                {"id": "pg", "description": "Describe PostgreSQL"},
                {"id": "redis", "description": "Describe Redis"},
                {"id": "compare", "description": "Compare them", "depends_on": ["pg", "redis"]},
            )
        ],
        default="A fair and specific answer about databases, with facts and a conclusion.",
        latency=latency,
    )
    settings = settings or settings_in(data, server, store)
    app = create_app(settings, llm=llm, anonymous=anonymous)
    port = free_port()
    uv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(uv.serve())
    while not uv.started:  # noqa: ASYNC110 - uvicorn has no event for it
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        uv.should_exit = True
        await task
