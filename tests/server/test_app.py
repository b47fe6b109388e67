"""The HTTP API over real HTTP (uvicorn on a loopback port), on a real SQLite store."""

from __future__ import annotations

import asyncio
import gc
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, get_args

import httpx
import pytest

from automatos.domain.result import WorkflowStatus
from automatos.server.listing import RunStatus
from automatos.settings import StoreSettings
from tests.server.conftest import serving

REQUEST = "Describe PostgreSQL and Redis, then compare them."


@pytest.fixture
async def base_url(tmp_path: Path, store_settings: StoreSettings) -> AsyncIterator[str]:
    async with serving(tmp_path, anonymous=True, store=store_settings) as url:
        yield url


async def _events(
    client: httpx.AsyncClient, url: str, last: int | None = None, stop_after: int | None = None
) -> list[dict[str, Any]]:
    headers = {} if last is None else {"Last-Event-ID": str(last)}
    got: list[dict[str, Any]] = []
    async with client.stream("GET", url, headers=headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        ids: list[int] = []
        async for line in response.aiter_lines():
            if line.startswith("id: "):
                ids.append(int(line[4:]))
            elif line.startswith("data: "):
                event = json.loads(line[6:])
                assert event["seq"] == ids[-1]
                got.append(event)
                if stop_after is not None and len(got) == stop_after:
                    break
    return got


async def test_a_client_follows_a_run_then_resumes_with_no_gap_and_no_duplicate(
    base_url: str,
) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        started = (await client.post("/v1/workflows", json={"request": REQUEST})).json()
        url = started["events"]
        first = await _events(client, url, stop_after=5)  # then the client goes away
        rest = await _events(client, url, last=first[-1]["seq"])
        events = first + rest
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
        assert events[-1]["kind"] == "workflow_finished" and events[-1]["status"] == "succeeded"
        stages = [e["stage"] for e in events if e["kind"] == "stage_finished"]
        assert stages[:2] == ["prompt_variant", "decompose"] and stages[-1] == "respond"
        # a finished run replays from the store, from any point
        replay = await _events(client, url, last=3)
        assert replay == events[3:]
        run = (await client.get(f"/v1/workflows/{started['workflow_id']}")).json()
        assert run["status"] == "succeeded" and run["events"] == len(events)


async def test_one_idempotency_key_makes_one_workflow(base_url: str) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        answers = await asyncio.gather(
            *(
                client.post(
                    "/v1/workflows", json={"request": REQUEST}, headers={"Idempotency-Key": "k1"}
                )
                for _ in range(100)
            )
        )
        ids = {a.json()["workflow_id"] for a in answers}
        assert len(ids) == 1 and sum(a.json()["started"] for a in answers) == 1
        events = await _events(client, f"/v1/workflows/{ids.pop()}/events")
        assert events[-1]["kind"] == "workflow_finished"
        listed = (await client.get("/v1/workflows")).json()
        assert len(listed["items"]) == 1 and listed["next"] is None


async def test_cancel_and_bad_input_get_typed_answers(base_url: str) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        assert (await client.get("/readyz")).status_code == 200
        assert (await client.get("/v1/workflows/nope")).status_code == 404
        assert (await client.get("/v1/workflows/nope/events")).status_code == 404
        assert (await client.post("/v1/workflows/nope/cancel")).status_code == 404
        assert (await client.post("/v1/workflows", json={})).status_code == 422
        assert (await client.post("/v1/workflows", content=b"{not json")).status_code == 422
        assert (
            await client.post("/v1/workflows", json={"request": "x" * 200_000})
        ).status_code == 422
        assert (await client.post("/v1/workflows", json={"request": "?!"})).status_code == 422
        started = (await client.post("/v1/workflows", json={"request": REQUEST})).json()
        wid = started["workflow_id"]
        assert (await client.post(f"/v1/workflows/{wid}/cancel")).status_code == 202
        events = await _events(client, started["events"])
        assert events[-1]["status"] == "cancelled"
        answer = await client.post(f"/v1/workflows/{wid}/cancel")
        assert answer.status_code == 409 and "cancelled" in answer.json()["detail"]
        bad = await client.get(f"/v1/workflows/{wid}/events", headers={"Last-Event-ID": "x"})
        assert bad.status_code == 422


async def test_metrics_count_workflows_subtasks_and_tokens(base_url: str) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        started = (await client.post("/v1/workflows", json={"request": REQUEST})).json()
        events = await _events(client, started["events"])
        assert events[-1]["status"] == "succeeded"
        text = ""
        for _ in range(50):  # the result's totals are counted as the run returns
            text = (await client.get("/metrics")).text
            if 'automatos_tokens_total{direction="in"}' in text:
                break
            await asyncio.sleep(0.05)
    samples = {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }
    assert samples['automatos_workflows_total{status="succeeded"}'] == 1
    assert samples["automatos_workflows_running"] == 0
    assert samples['automatos_subtask_seconds_count{status="succeeded"}'] == 3
    assert samples['automatos_tokens_total{direction="in"}'] > 0


async def test_workflows_are_listed_a_page_at_a_time(base_url: str) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        ids = []
        for _ in range(4):
            started = (await client.post("/v1/workflows", json={"request": REQUEST})).json()
            await _events(client, started["events"])
            ids.append(started["workflow_id"])
        cancelled = (await client.post("/v1/workflows", json={"request": REQUEST})).json()
        await client.post(f"/v1/workflows/{cancelled['workflow_id']}/cancel")
        await _events(client, cancelled["events"])
        ids.append(cancelled["workflow_id"])

        pages, cursor = [], None
        while True:
            params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
            page = (await client.get("/v1/workflows", params=params)).json()
            pages.append([r["id"] for r in page["items"]])
            cursor = page["next"]
            if cursor is None:
                break
        assert [len(p) for p in pages] == [2, 2, 1]
        assert [i for p in pages for i in p] == ids[::-1]  # newest first, each once

        done = await client.get("/v1/workflows", params={"status": "succeeded", "limit": 3})
        assert [r["id"] for r in done.json()["items"]] == ids[3:0:-1]
        rest = await client.get(
            "/v1/workflows",
            params={"status": "succeeded", "limit": 3, "cursor": done.json()["next"]},
        )
        assert [r["id"] for r in rest.json()["items"]] == ids[:1] and rest.json()["next"] is None
        stopped = (await client.get("/v1/workflows", params={"status": "cancelled"})).json()
        assert [r["id"] for r in stopped["items"]] == ids[4:]
        assert (await client.get("/v1/workflows?status=bogus")).status_code == 422
        assert set(get_args(RunStatus)) == {*WorkflowStatus, "running"}  # every status known
        assert (await client.get("/v1/workflows?cursor=not-a-cursor")).status_code == 422
        assert (await client.get("/v1/workflows?limit=0")).status_code == 422


@pytest.mark.parametrize("freeze", [True, False])
async def test_the_server_freezes_its_start_up_heap_when_run_as_automatos_serve_runs_it(
    tmp_path: Path, freeze: bool
) -> None:
    from automatos.server.app import create_app
    from tests.server.conftest import settings_in

    gc.unfreeze()
    app = create_app(settings_in(tmp_path))
    try:
        async with app.router.lifespan_context(app):
            assert gc.get_freeze_count() == 0  # an application's own process: left alone
        app.state.freeze_heap = freeze  # what run_server sets from server.freeze_heap
        async with app.router.lifespan_context(app):
            assert (gc.get_freeze_count() > 0) is freeze
    finally:
        gc.unfreeze()


async def test_the_servers_engines_have_the_python_tools_it_was_given(tmp_path: Path) -> None:
    from automatos.server.app import create_app
    from tests.server.conftest import settings_in
    from tests.test_engine_tools import add_vat

    app = create_app(settings_in(tmp_path), tools=[add_vat])
    async with app.router.lifespan_context(app):
        for workspace in ("default", "team-a"):
            engine = (await app.state.tenants.get(workspace)).engine
            assert [tool.spec.name for tool in engine.tools] == ["add_vat"]
