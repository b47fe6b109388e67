"""SIGTERM: the server stops accepting, lets running workflows finish within the grace, and
records the rest ``interrupted``. A real server process, a real signal, a real store."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from automatos.settings import ServerSettings, StoreSettings
from automatos.store.sql import SqlStore
from tests.server.conftest import free_port, serving_app

ROOT = Path(__file__).resolve().parents[2]


async def _until_up(url: str, process: subprocess.Popen[bytes]) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(600):
            assert process.poll() is None, "the server process exited while starting"
            try:
                if (await client.get(f"{url}/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)
    raise AssertionError("the server did not start within 30 s")


async def _until_running(client: httpx.AsyncClient, workflow_id: str) -> None:
    for _ in range(400):
        body = (await client.get(f"/v1/workflows/{workflow_id}")).json()
        if body.get("status") == "running" and body.get("events", 0) >= 2:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{workflow_id} did not start running")


async def _follow(client: httpx.AsyncClient, workflow_id: str) -> tuple[list[Any], float]:
    """The events of a stream, and when it ended (it must end cleanly)."""
    seen: list[Any] = []
    async with client.stream("GET", f"/v1/workflows/{workflow_id}/events") as stream:
        async for line in stream.aiter_lines():
            if line.startswith("data: "):
                seen.append(json.loads(line[6:]))
    return seen, time.monotonic()


async def test_sigterm_finishes_what_fits_in_the_grace_and_interrupts_the_rest(
    tmp_path: Path,
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    grace = 2.0
    process = subprocess.Popen(  # noqa: ASYNC220 - started once, waited for on a thread
        [sys.executable, "-m", "tests.server.scripted_server", str(tmp_path), str(port), "2"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        await _until_up(url, process)
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            slow = await client.post("/v1/workflows", json={"request": "Dawdle over databases."})
            quick = await client.post("/v1/workflows", json={"request": "Name a database."})
            slow_id, quick_id = slow.json()["workflow_id"], quick.json()["workflow_id"]
            await _until_running(client, slow_id)
            following = asyncio.create_task(_follow(client, slow_id))
            await asyncio.sleep(0.2)  # the stream is open
            process.send_signal(signal.SIGTERM)
            asked = time.monotonic()
            seen, ended = await following
            code = await asyncio.to_thread(process.wait, 30)
        took = time.monotonic() - asked
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert code in (0, -signal.SIGTERM)  # uvicorn re-raises the signal once it has shut down
    # the open event stream ended cleanly when the grace was over, before the workflow did
    assert grace - 0.5 < ended - asked < grace + 2
    assert seen and seen[-1]["kind"] != "workflow_finished"
    assert took < grace + 5, f"shutdown took {took:.1f} s with a {grace} s grace"
    store = await SqlStore.open(StoreSettings(data_dir=tmp_path))
    try:
        finished = await store.get_run(quick_id)
        stopped = await store.get_run(slow_id)
    finally:
        await store.aclose()
    assert finished is not None and finished.status == "succeeded"
    assert stopped is not None and stopped.status == "interrupted"


async def test_a_stopping_server_starts_nothing_and_says_when_to_retry(tmp_path: Path) -> None:
    async with (
        serving_app(tmp_path, anonymous=True) as (url, app),
        httpx.AsyncClient(base_url=url, timeout=30) as client,
    ):
        first = await client.post(
            "/v1/workflows",
            json={"request": "Name a database."},
            headers={"Idempotency-Key": "k"},
        )
        assert first.status_code == 202
        app.state.tenants.stop_accepting()
        refused = await client.post("/v1/workflows", json={"request": "Name another."})
        assert refused.status_code == 503
        assert refused.json()["error"] == "ServerStoppingError"
        assert int(refused.headers["Retry-After"]) > 0
        # a retry of a workflow already started still finds it
        again = await client.post(
            "/v1/workflows",
            json={"request": "Name a database."},
            headers={"Idempotency-Key": "k"},
        )
        assert again.status_code == 202
        assert again.json()["workflow_id"] == first.json()["workflow_id"]


async def test_a_zero_grace_interrupts_every_running_workflow(tmp_path: Path) -> None:
    server = ServerSettings(burst=100, rate_per_s=100, shutdown_grace_s=0)
    async with (
        serving_app(tmp_path, anonymous=True, server=server, latency=1.0) as (url, _),
        httpx.AsyncClient(base_url=url, timeout=30) as client,
    ):
        started = await client.post("/v1/workflows", json={"request": "Name a database."})
        workflow_id = started.json()["workflow_id"]
        await _until_running(client, workflow_id)
    store = await SqlStore.open(StoreSettings(data_dir=tmp_path))
    try:
        run = await store.get_run(workflow_id)
    finally:
        await store.aclose()
    assert run is not None and run.status == "interrupted"
