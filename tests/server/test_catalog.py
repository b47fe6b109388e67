"""The agent and prompt registries over real HTTP (uvicorn on a loopback port), on a real
SQLite store and on PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from automatos.prompts.catalog import CATALOG
from automatos.settings import ServerSettings, StoreSettings
from automatos.store.sql import SqlStore
from tests.server.conftest import serving

REQUEST = "Describe PostgreSQL and Redis, then compare them."
STARTERS = sorted(
    ["generalist", "researcher", "analyst", "writer", "editor", "coder", "planner", "summarizer"]
)


@pytest.fixture
async def client(tmp_path: Path, store_settings: StoreSettings) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        serving(tmp_path, anonymous=True, store=store_settings) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as client,
    ):
        yield client


async def _run(client: httpx.AsyncClient) -> str:
    """Start a workflow and wait until its record is complete; its id."""
    started = (await client.post("/v1/workflows", json={"request": REQUEST})).json()
    async with client.stream("GET", started["events"]) as events:
        async for line in events.aiter_lines():
            if line.startswith("data: ") and json.loads(line[6:])["kind"] == "workflow_finished":
                break
    wid = str(started["workflow_id"])
    for _ in range(200):  # the record is completed just after the last event
        if (await client.get(f"/v1/workflows/{wid}")).json()["status"] != "running":
            return wid
        await asyncio.sleep(0.02)
    raise AssertionError(f"workflow {wid} still running")


async def test_agents_are_listed_with_what_each_run_taught(client: httpx.AsyncClient) -> None:
    before = (await client.get("/v1/agents")).json()
    assert [a["name"] for a in before] == STARTERS  # the team the engine would use
    assert all(a["metrics"] == {} and a["spec"]["name"] == a["name"] for a in before)

    first, second = await _run(client), await _run(client)
    agents = {a["name"]: a for a in (await client.get("/v1/agents")).json()}
    learned = {n: a["metrics"] for n, a in agents.items() if a["metrics"]}
    assert sum(m["overall"]["total_executions"] for m in learned.values()) == 6  # 3 steps x 2
    for metrics in learned.values():
        by_type = sum(m["total_executions"] for kind, m in metrics.items() if kind != "overall")
        assert by_type == metrics["overall"]["total_executions"]

    ran = {}
    for name in learned:
        detail = (await client.get(f"/v1/agents/{name}")).json()
        assert detail["metrics"] == learned[name]
        ran[name] = detail["history"]
    points = [p for history in ran.values() for p in history]
    assert len(points) == 6
    assert {p["workflow_id"] for p in points} == {first, second}
    assert {p["task_type"] for p in points} <= {"writing", "analysis", "research", "general"}
    assert all(0.0 <= p["score"] <= 1.0 for p in points)
    for name, history in ran.items():  # oldest first, one point per subtask learned from
        times = [datetime.fromisoformat(p["at"]) for p in history]
        assert times == sorted(times)
        assert len(history) == learned[name]["overall"]["total_executions"]
    idle = next(n for n in STARTERS if n not in learned)
    assert (await client.get(f"/v1/agents/{idle}")).json()["history"] == []


async def test_agents_are_created_and_replaced_with_typed_answers(
    client: httpx.AsyncClient,
) -> None:
    spec = {"name": "critic", "description": "Finds faults.", "capabilities": ["review"]}
    created = await client.post("/v1/agents", json=spec)
    assert created.status_code == 201 and created.headers["location"] == "/v1/agents/critic"
    assert created.json()["spec"]["capabilities"] == ["review"]
    names = [a["name"] for a in (await client.get("/v1/agents")).json()]
    assert names == sorted([*STARTERS, "critic"])  # the starter team was kept
    again = await client.post("/v1/agents", json={**spec, "description": "other"})
    assert again.status_code == 409 and "PUT" in again.json()["detail"]
    assert (await client.post("/v1/agents", json={"name": "writer"})).status_code == 409

    bad = await client.post("/v1/agents", json={"name": "hot", "temperature": 5})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "temperature"]
    unknown = await client.post("/v1/agents", json={"name": "x", "temprature": 1})
    assert unknown.status_code == 422 and unknown.json()["detail"][0]["loc"][-1] == "temprature"
    assert (await client.post("/v1/agents", json={"name": ""})).status_code == 422
    assert (await client.post("/v1/agents", content=b"{nope")).status_code == 422

    changed = {**spec, "description": "Finds faults, kindly.", "temperature": 0.2}
    put = await client.put("/v1/agents/critic", json=changed)
    assert put.status_code == 200 and put.json()["spec"]["temperature"] == 0.2
    shown = (await client.get("/v1/agents/critic")).json()
    assert shown["spec"]["description"] == "Finds faults, kindly." and shown["history"] == []
    renamed = await client.put("/v1/agents/critic", json={**changed, "name": "judge"})
    assert renamed.status_code == 422 and "not renamed" in renamed.json()["detail"]
    absent = await client.put("/v1/agents/nobody", json={"name": "nobody"})
    assert absent.status_code == 404
    assert (await client.get("/v1/agents/nobody")).status_code == 404

    # of creations of one name at once, one is made
    answers = await asyncio.gather(
        *(client.post("/v1/agents", json={"name": "twin", "description": f"{i}"}) for i in range(8))
    )
    assert sorted(a.status_code for a in answers) == [201] + [409] * 7

    # a name with a slash is reachable at its path
    slashed = await client.post("/v1/agents", json={"name": "team/critic"})
    assert slashed.headers["location"] == "/v1/agents/team%2Fcritic"
    assert (await client.get(slashed.headers["location"])).json()["name"] == "team/critic"


async def test_learning_survives_a_replaced_definition(client: httpx.AsyncClient) -> None:
    await _run(client)
    agents = (await client.get("/v1/agents")).json()
    agent = next(a for a in agents if a["metrics"])
    spec = {**agent["spec"], "description": "Rewritten."}
    assert (await client.put(f"/v1/agents/{agent['name']}", json=spec)).status_code == 200
    after = (await client.get(f"/v1/agents/{agent['name']}")).json()
    assert after["metrics"] == agent["metrics"] and len(after["history"]) >= 1
    assert after["spec"]["description"] == "Rewritten."


async def test_prompts_show_versions_and_ab_tests(
    tmp_path: Path, store_settings: StoreSettings
) -> None:
    store = await SqlStore.open(store_settings)
    try:
        await store.prompt_state({slug: spec.text for slug, spec in CATALOG.items()})
        template = CATALOG["executor"].text + "\n\nBe brief."
        await store.add_prompt("executor", template, "shorter answers")
        await store.start_ab("executor", 2, 0.5, 10, 2)
    finally:
        await store.aclose()
    async with (
        serving(tmp_path, anonymous=True, store=store_settings) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as client,
    ):
        listed = {p["slug"]: p for p in (await client.get("/v1/prompts")).json()}
        assert list(listed) == list(CATALOG)
        executor = listed["executor"]
        assert executor["active"] == 1 and executor["versions"] == 2
        test = executor["test"]
        assert test["candidate_version"] == 2 and test["status"] == "running"
        assert all(p["test"] is None for s, p in listed.items() if s != "executor")

        detail = (await client.get("/v1/prompts/executor")).json()
        assert [(v["version"], v["active"]) for v in detail["versions"]] == [(1, True), (2, False)]
        assert detail["versions"][1]["note"] == "shorter answers" and detail["active"] == 1
        assert [t["control_version"] for t in detail["tests"]] == [1]
        assert set(detail["fields"]) == set(CATALOG["executor"].fields)
        missing = await client.get("/v1/prompts/nope")
        assert missing.status_code == 404 and "executor" in missing.json()["detail"]


async def test_an_agents_mcp_secrets_are_kept_but_never_shown(
    tmp_path: Path, store_settings: StoreSettings
) -> None:
    secret = "sk-live-0123456789abcdef"
    server = {
        "name": "search",
        "url": "https://user:pw@mcp.example.com/mcp?key=q",
        "headers": {"Authorization": f"Bearer {secret}"},
    }
    spec = {"name": "scout", "tools": ["mcp:search"], "mcp_servers": [server]}
    allowed = ServerSettings(burst=1_000, agent_mcp_urls=True)
    async with (
        serving(tmp_path, anonymous=True, store=store_settings, server=allowed) as url,
        httpx.AsyncClient(base_url=url) as client,
    ):
        created = await client.post("/v1/agents", json=spec)
        assert created.status_code == 201, created.text
        for answer in (
            created,
            await client.get("/v1/agents/scout"),
            await client.get("/v1/agents"),
            await client.put("/v1/agents/scout", json=spec),
        ):
            assert answer.status_code in (200, 201)
            assert secret not in answer.text and "pw@" not in answer.text
        shown = (await client.get("/v1/agents/scout")).json()["spec"]["mcp_servers"][0]
    assert shown["headers"] == {"Authorization": "***"}
    assert shown["url"] == "https://mcp.example.com/mcp"


async def test_an_agent_made_over_http_brings_no_url_unless_the_server_allows_it(
    client: httpx.AsyncClient,
) -> None:
    # what an API key could make the host reach inside its network
    for target in ("http://169.254.169.254/latest/meta-data", "http://127.0.0.1:5432/"):
        server = {"name": "inside", "url": target}
        spec = {"name": "prober", "tools": ["mcp:inside"], "mcp_servers": [server]}
        for answer in (
            await client.post("/v1/agents", json=spec),
            await client.put("/v1/agents/writer", json={**spec, "name": "writer"}),
        ):
            assert answer.status_code == 422, answer.text
            detail = answer.json()["detail"]
            assert "server.agent_mcp_urls" in detail and "automatos mcp add inside" in detail
    assert (await client.get("/v1/agents/prober")).status_code == 404
    assert (await client.get("/v1/agents/writer")).json()["spec"]["mcp_servers"] == []
    # naming the workspace's servers is what agents made over HTTP do
    named = {"name": "namer", "tools": ["mcp:search", "calculator"]}
    assert (await client.post("/v1/agents", json=named)).status_code == 201


async def test_an_agent_made_over_http_cannot_bring_a_command_to_run(
    client: httpx.AsyncClient,
) -> None:
    server = {"name": "x", "command": ["sh", "-c", "id > /tmp/pwned"]}
    spec = {"name": "intruder", "tools": ["mcp:x"], "mcp_servers": [server]}
    for answer in (
        await client.post("/v1/agents", json=spec),
        await client.put("/v1/agents/writer", json={**spec, "name": "writer"}),
    ):
        assert answer.status_code == 422, answer.text
        assert "automatos mcp add" in answer.text and "mcp_servers" in answer.text
    assert (await client.get("/v1/agents/intruder")).status_code == 404
    assert (await client.get("/v1/agents/writer")).json()["spec"]["mcp_servers"] == []
