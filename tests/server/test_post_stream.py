"""``POST /v1/workflows`` with ``Accept: text/event-stream``: the answer is the new workflow's
event stream, from its first event, in the format and with the ids of ``GET …/events``; the
idempotency key and the API key work as for the JSON answer, which stays the default."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from automatos.server.app import _wants_events
from automatos.settings import StoreSettings
from automatos.store.sql import SqlStore
from tests.server.conftest import serving, settings_in

REQUEST = "Describe PostgreSQL and Redis, then compare them."
STREAM = {"Accept": "text/event-stream"}


@pytest.fixture
async def client(tmp_path: Path, store_settings: StoreSettings) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        serving(tmp_path, anonymous=True, store=store_settings) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as client,
    ):
        yield client


async def _read(response: httpx.Response) -> list[dict[str, Any]]:
    """Every event of an SSE answer, checking that each has its ``seq`` as its id and its
    ``kind`` as its name."""
    assert response.headers["content-type"].startswith("text/event-stream")
    events: list[dict[str, Any]] = []
    fields: dict[str, str] = {}
    async for line in response.aiter_lines():
        if not line:
            if "data" in fields:
                event = json.loads(fields["data"])
                assert fields["id"] == str(event["seq"]) and fields["event"] == event["kind"]
                events.append(event)
            fields = {}
            continue
        name, _, value = line.partition(": ")
        fields[name] = value
    return events


async def _post_stream(
    client: httpx.AsyncClient, headers: dict[str, str] | None = None
) -> tuple[int, str, list[dict[str, Any]]]:
    """The status, the Location and the events of a streamed POST."""
    async with client.stream(
        "POST", "/v1/workflows", json={"request": REQUEST}, headers=STREAM | (headers or {})
    ) as response:
        if response.status_code not in (200, 201):
            await response.aread()
            raise AssertionError(f"{response.status_code}: {response.text}")
        return response.status_code, response.headers["location"], await _read(response)


async def _get_events(
    client: httpx.AsyncClient, location: str, headers: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    async with client.stream("GET", f"{location}/events", headers=headers) as response:
        assert response.status_code == 200
        return await _read(response)


async def test_the_post_streams_the_workflow_from_its_first_event(
    client: httpx.AsyncClient,
) -> None:
    status, location, events = await _post_stream(client)
    assert status == 201
    wid = location.removeprefix("/v1/workflows/")
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert {e["workflow_id"] for e in events} == {wid}
    assert events[0]["kind"] == "workflow_started"
    assert events[-1]["kind"] == "workflow_finished" and events[-1]["status"] == "succeeded"
    assert sum(e["kind"] == "subtask_finished" for e in events) == 3
    # the same events, ids and format as the workflow's own stream (a replay from the store)
    assert await _get_events(client, location) == events
    run = (await client.get(location)).json()
    assert run["status"] == "succeeded" and run["events"] == len(events)


async def test_one_idempotency_key_streams_one_workflow_to_every_retry(
    client: httpx.AsyncClient,
) -> None:
    key = {"Idempotency-Key": "stream-1"}
    answers = await asyncio.gather(*(_post_stream(client, key) for _ in range(10)))
    assert sorted(status for status, _, _ in answers) == [200] * 9 + [201]
    assert len({location for _, location, _ in answers}) == 1
    first = answers[0][2]
    assert first[-1]["kind"] == "workflow_finished"
    assert all(events == first for _, _, events in answers)  # each from seq 1, complete
    location = answers[0][1]
    again = await client.post("/v1/workflows", json={"request": REQUEST}, headers=key)
    assert again.status_code == 202
    assert again.json()["workflow_id"] == location.removeprefix("/v1/workflows/")
    assert again.json()["started"] is False
    # a retry whose stream broke after event 5 resumes after it
    status, _, rest = await _post_stream(client, key | {"Last-Event-ID": "5"})
    assert status == 200 and rest == first[5:]
    other = await client.post(
        "/v1/workflows", json={"request": "Name a database."}, headers=key | STREAM
    )
    assert other.status_code == 422 and "Idempotency-Key" in other.json()["detail"]
    listed = (await client.get("/v1/workflows")).json()["items"]
    assert len(listed) == 1


async def test_a_stale_last_event_id_does_not_cut_a_new_workflows_stream(
    client: httpx.AsyncClient,
) -> None:
    # the client's header of another stream: the new workflow has no event yet to resume after
    for headers in ({"Last-Event-ID": "5"}, {"Last-Event-ID": "5", "Idempotency-Key": "new"}):
        status, _, events = await _post_stream(client, headers)
        assert status == 201
        assert events[0]["seq"] == 1 and events[0]["kind"] == "workflow_started"


async def test_json_stays_the_default_answer(client: httpx.AsyncClient) -> None:
    for accept in (None, "*/*", "application/json", "text/event-stream;q=0"):
        headers = {} if accept is None else {"Accept": accept}
        answer = await client.post("/v1/workflows", json={"request": REQUEST}, headers=headers)
        assert answer.status_code == 202, accept
        assert answer.headers["content-type"] == "application/json", accept
        started = answer.json()
        assert started["started"] is True
        events = await _get_events(client, f"/v1/workflows/{started['workflow_id']}")
        assert events[-1]["kind"] == "workflow_finished"


async def test_a_bad_streamed_post_gets_a_json_error_and_starts_nothing(
    client: httpx.AsyncClient,
) -> None:
    for body, headers in (
        ({"request": REQUEST}, {"Last-Event-ID": "x"}),
        ({"request": ""}, {}),
        ({"request": REQUEST, "extra": 1}, {}),
    ):
        answer = await client.post("/v1/workflows", json=body, headers=STREAM | headers)
        assert answer.status_code == 422, answer.text
        assert answer.headers["content-type"] == "application/json"
    assert (await client.get("/v1/workflows")).json()["items"] == []


async def test_a_streamed_post_needs_a_key_and_is_scoped_to_its_workspace(
    tmp_path: Path,
) -> None:
    store = await SqlStore.open(settings_in(tmp_path).store)
    try:
        _, mine = await store.create_key("team-a", "mine")
        _, theirs = await store.create_key("team-b", "theirs")
        revoked, old = await store.create_key("team-a", "old")
        await store.revoke_key(revoked.id)
    finally:
        await store.aclose()
    async with (
        serving(tmp_path, anonymous=False) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as client,
    ):
        for headers in ({}, {"X-API-Key": old}, {"Authorization": "Bearer atm_not-a-key"}):
            answer = await client.post(
                "/v1/workflows", json={"request": REQUEST}, headers=STREAM | headers
            )
            assert answer.status_code == 401 and answer.headers["www-authenticate"] == "Bearer"
        key = {"Idempotency-Key": "shared"}
        _, location, events = await _post_stream(client, key | {"X-API-Key": mine})
        assert events[-1]["status"] == "succeeded"
        # one key name in two workspaces: two workflows, each seen by its own workspace only
        status, elsewhere, _ = await _post_stream(client, key | {"X-API-Key": theirs})
        assert status == 201 and elsewhere != location
        answer = await client.get(f"{location}/events", headers={"X-API-Key": theirs})
        assert answer.status_code == 404
        assert await _get_events(client, location, {"X-API-Key": mine}) == events


@pytest.mark.parametrize(
    ("accept", "wanted"),
    [
        (None, False),
        ("", False),
        ("*/*", False),
        ("application/json", False),
        ("text/*", False),
        ("text/event-stream", True),
        ("TEXT/Event-Stream", True),
        ("application/json, text/event-stream", True),
        ("text/event-stream; q=0.5, application/json", True),
        ("text/event-stream;q=0", False),
        ("text/event-stream;q=0.0", False),
        ("text/event-stream;q=nonsense", False),
    ],
)
def test_the_accept_header_asks_for_the_stream(accept: str | None, wanted: bool) -> None:
    assert _wants_events(accept) is wanted
