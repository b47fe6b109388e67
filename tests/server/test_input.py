"""Hostile and careless input gets a 4xx naming what is wrong, never a 500 or silence."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.server.conftest import serving

REQUEST = "Describe PostgreSQL and Redis, then compare them."


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        serving(tmp_path, anonymous=True) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as client,
    ):
        yield client


JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize(
    ("path", "method", "body"),
    [
        ("/v1/workflows", "POST", '{"request": NaN}'),
        ("/v1/workflows", "POST", '{"request": "hi", "level": Infinity}'),
        ("/v1/agents", "POST", '{"name": "poet", "temperature": NaN}'),
        ("/v1/agents", "POST", '{"name": "poet", "cost_hint_usd": Infinity}'),
        ("/v1/agents/writer", "PUT", '{"name": "writer", "temperature": -Infinity}'),
    ],
)
async def test_non_finite_numbers_are_refused_by_field(
    client: httpx.AsyncClient, path: str, method: str, body: str
) -> None:
    answer = await client.request(method, path, content=body.encode(), headers=JSON)
    assert answer.status_code == 422, answer.text
    detail = answer.json()["detail"]
    assert detail and all("input" not in error for error in detail)  # nothing echoed back


async def test_a_validation_error_does_not_echo_what_was_sent(client: httpx.AsyncClient) -> None:
    huge = "x" * 5_000
    answer = await client.get(f"/v1/workflows?limit={huge}")
    assert answer.status_code == 422
    assert huge not in answer.text and answer.json()["detail"][0]["loc"] == ["query", "limit"]


async def test_an_unknown_field_is_an_error_not_ignored(client: httpx.AsyncClient) -> None:
    answer = await client.post("/v1/workflows", json={"request": REQUEST, "levle": "atom"})
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["body", "levle"]


async def test_one_idempotency_key_cannot_start_another_request(
    client: httpx.AsyncClient,
) -> None:
    key = {"Idempotency-Key": "order-7"}
    first = await client.post("/v1/workflows", json={"request": REQUEST}, headers=key)
    assert first.status_code == 202
    again = await client.post("/v1/workflows", json={"request": REQUEST}, headers=key)
    assert again.json()["workflow_id"] == first.json()["workflow_id"]
    other = await client.post("/v1/workflows", json={"request": "Name a database."}, headers=key)
    assert other.status_code == 422
    assert "another request" in other.json()["detail"]
    assert first.json()["workflow_id"] in other.json()["detail"]


@pytest.mark.parametrize(
    "fields",
    [
        {"name": ".."},
        {"name": "."},
        {"name": "poet", "description": "nul\x00inside"},
        {"name": "poet", "capabilities": ["ok", "bell\x07"]},
        {"name": "poet", "system_prompt": "escape\x1b[31m"},
    ],
)
async def test_an_agent_with_unusable_text_is_refused(
    client: httpx.AsyncClient, fields: dict[str, object]
) -> None:
    answer = await client.post("/v1/agents", json=fields)
    assert answer.status_code == 422, answer.text


async def test_a_prompt_keeps_its_tabs_and_line_breaks(client: httpx.AsyncClient) -> None:
    prompt = "You write poems.\n\tShort ones.\r\n"
    answer = await client.post("/v1/agents", json={"name": "poet", "system_prompt": prompt})
    assert answer.status_code == 201
    assert answer.json()["spec"]["system_prompt"] == prompt


async def test_the_agent_list_can_carry_every_history_in_one_request(
    client: httpx.AsyncClient,
) -> None:
    plain = (await client.get("/v1/agents")).json()
    full = (await client.get("/v1/agents?history=true")).json()
    assert [a["name"] for a in full] == [a["name"] for a in plain]
    assert all(a["history"] == [] for a in full) and all("history" not in a for a in plain)


async def test_an_empty_idempotency_key_is_refused(client: httpx.AsyncClient) -> None:
    answer = await client.post(
        "/v1/workflows", json={"request": REQUEST}, headers={"Idempotency-Key": ""}
    )
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["header", "idempotency-key"]
