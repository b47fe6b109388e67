"""Every /v1 endpoint answers only to a valid key, and only about its key's workspace."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from automatos.prompts.catalog import CATALOG
from automatos.store.sql import SqlStore
from tests.server.conftest import serving, settings_in

REQUEST = "Describe PostgreSQL and Redis, then compare them."


async def _keys(data: Path) -> dict[str, str]:
    store = await SqlStore.open(settings_in(data).store)
    try:
        _, mine = await store.create_key("team-a", "mine")
        _, theirs = await store.create_key("team-b", "theirs")
        revoked, old = await store.create_key("team-a", "old")
        await store.revoke_key(revoked.id)
        team_a = SqlStore(store.engine, "team-a")  # a prompt version of team-a's own
        await team_a.prompt_state({slug: spec.text for slug, spec in CATALOG.items()})
        await team_a.add_prompt("executor", CATALOG["executor"].text + "\n\nBe brief.")
    finally:
        await store.aclose()
    return {"mine": mine, "theirs": theirs, "revoked": old}


async def _finish(client: httpx.AsyncClient, url: str, key: str) -> None:
    async with client.stream("GET", url, headers={"X-API-Key": key}) as events:
        assert events.status_code == 200
        async for line in events.aiter_lines():
            if line.startswith("data: ") and json.loads(line[6:])["kind"] == "workflow_finished":
                return


async def test_the_authorization_matrix_is_exact(tmp_path: Path) -> None:
    keys = await _keys(tmp_path)
    async with (
        serving(tmp_path, anonymous=False) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as client,
    ):
        started = await client.post(
            "/v1/workflows",
            json={"request": REQUEST},
            headers={"Authorization": f"Bearer {keys['mine']}"},
        )
        assert started.status_code == 202
        wid = started.json()["workflow_id"]
        await _finish(client, f"/v1/workflows/{wid}/events", keys["mine"])
        mine = {"X-API-Key": keys["mine"]}
        critic = {"name": "critic", "description": "Finds faults."}
        assert (await client.post("/v1/agents", json=critic, headers=mine)).status_code == 201
        endpoints = [
            ("POST", "/v1/workflows", {"request": REQUEST}),
            ("GET", "/v1/workflows", None),
            ("GET", f"/v1/workflows/{wid}", None),
            ("POST", f"/v1/workflows/{wid}/cancel", None),
            ("GET", f"/v1/workflows/{wid}/events", None),
            ("GET", "/v1/agents/critic", None),
            ("PUT", "/v1/agents/critic", critic),
            ("GET", "/v1/agents", None),
            ("POST", "/v1/agents", {"name": "newcomer"}),
            ("GET", "/v1/prompts", None),
            ("GET", "/v1/prompts/executor", None),
        ]
        cases = {
            "no key": ({}, 401),
            "wrong key": ({"Authorization": "Bearer atm_not-a-key"}, 401),
            "not a bearer": ({"Authorization": f"Basic {keys['mine']}"}, 401),
            "revoked key": ({"X-API-Key": keys["revoked"]}, 401),
        }
        for method, path, body in endpoints:
            for case, (headers, status) in cases.items():
                answer = await client.request(method, path, json=body, headers=headers)
                assert answer.status_code == status, (method, path, case, answer.text)
                assert answer.headers.get("www-authenticate") == "Bearer"
        theirs = {"X-API-Key": keys["theirs"]}
        for method, path, body in endpoints[2:7]:  # another workspace's are not found
            answer = await client.request(method, path, json=body, headers=theirs)
            assert answer.status_code == 404, (method, path, answer.text)
        assert (await client.get("/v1/workflows", headers=theirs)).json()["items"] == []
        listed = (await client.get("/v1/workflows", headers=mine)).json()["items"]
        assert [r["id"] for r in listed] == [wid]
        assert (await client.get(f"/v1/workflows/{wid}", headers=mine)).status_code == 200
        assert (await client.post(f"/v1/workflows/{wid}/cancel", headers=mine)).status_code == 409
        # each workspace its own registries
        assert (await client.get("/v1/agents/critic", headers=mine)).status_code == 200
        agents = (await client.get("/v1/agents", headers=theirs)).json()
        assert agents and "critic" not in {a["name"] for a in agents}
        for who, count in ((mine, 2), (theirs, 1)):
            executor = (await client.get("/v1/prompts/executor", headers=who)).json()
            assert len(executor["versions"]) == count
        assert (await client.get("/healthz")).status_code == 200  # no key needed


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "example.com"])
def test_no_auth_is_refused_off_loopback(host: str) -> None:
    from typer.testing import CliRunner

    from automatos.cli import app

    answer = CliRunner().invoke(app, ["serve", "--no-auth", "--host", host])
    assert answer.exit_code == 1 and "loopback" in answer.output
