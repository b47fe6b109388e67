"""A real server on a loopback port, over a SQLite store in the test's directory."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import uvicorn

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


def settings_in(data: Path, server: ServerSettings | None = None) -> Settings:
    return Settings(
        store=StoreSettings(data_dir=data),
        plan=PlanLimits(level=Level.ORGAN),
        context=ContextSettings(enabled=False),
        memory=MemorySettings(enabled=False),
        # 100 requests at once in the idempotency test
        server=server or ServerSettings(burst=1_000, rate_per_s=1_000),
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def serving(
    data: Path, *, anonymous: bool, server: ServerSettings | None = None
) -> AsyncIterator[str]:
    """The server's base URL while it runs (a scripted model plans three steps)."""
    llm = ScriptedLLM(
        rules=[
            planner(
                {"id": "pg", "description": "Describe PostgreSQL"},
                {"id": "redis", "description": "Describe Redis"},
                {"id": "compare", "description": "Compare them", "depends_on": ["pg", "redis"]},
            )
        ],
        default="A fair and specific answer about databases, with facts and a conclusion.",
        latency=0.05,
    )
    app = create_app(settings_in(data, server), llm=llm, anonymous=anonymous)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn has no event for it
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
