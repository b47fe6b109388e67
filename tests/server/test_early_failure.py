"""A workflow that fails before its record exists is still answered for: its status and
error over GET, an ``error`` event on its stream, 409 on cancel."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from automatos.testing import ScriptedLLM
from tests.server.conftest import serving_app, settings_in


async def test_a_run_refused_before_its_record_says_why(tmp_path: Path) -> None:
    settings = settings_in(tmp_path)
    settings.execution.budget_usd = 1.0  # and the model has no price: refused at start
    settings.llm.model = "mystery-9"
    unpriced = ScriptedLLM(default="An answer.", free=False)
    async with (
        serving_app(tmp_path, anonymous=True, settings=settings, llm=unpriced) as (url, _),
        httpx.AsyncClient(base_url=url, timeout=30) as client,
    ):
        started = await client.post("/v1/workflows", json={"request": "Name a database."})
        assert started.status_code == 202
        wid = started.json()["workflow_id"]
        body: dict[str, object] = {}
        for _ in range(100):
            body = (await client.get(f"/v1/workflows/{wid}")).json()
            if body["status"] != "running":
                break
            await asyncio.sleep(0.02)
        assert body["status"] == "failed"
        error = body["error"]
        assert isinstance(error, dict) and error["type"] == "ConfigurationError"
        assert "price" in error["message"]
        stream = (await client.get(f"/v1/workflows/{wid}/events")).text
        assert stream.startswith("event: error\n") and "ConfigurationError" in stream
        assert (await client.post(f"/v1/workflows/{wid}/cancel")).status_code == 409
