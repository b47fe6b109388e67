"""The API fuzzed from its own OpenAPI schema (schemathesis) over real HTTP: whatever a
client sends, valid or not, the answer is never a server error, and a documented answer has
the documented shape.

The server runs on a loopback port in a thread of its own (schemathesis's calls block), on a
SQLite store and on PostgreSQL, with an API key. The workflows the fuzzer starts are cancelled
when the server stops, within its shutdown grace: the test checks that the server did stop.
"""

from __future__ import annotations

import asyncio
import base64
import queue
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import BaseSchema, Case
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from automatos.server.app import create_app
from automatos.settings import ServerSettings, StoreSettings
from automatos.store.sql import SqlStore
from tests.server.conftest import PG_URL, serving, settings_in

EXAMPLES = 25
"""Cases per operation: the whole run stays well under a minute."""
STOP_S = 30.0


async def _key(store: StoreSettings) -> str:
    """A key for a workspace of the test's own (PostgreSQL keeps what earlier runs left)."""
    opened = await SqlStore.open(store)
    try:
        _, secret = await opened.create_key(f"fuzzed-{uuid.uuid4().hex[:12]}", "schemathesis")
    finally:
        await opened.aclose()
    return secret


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    """The base URL of a server running in a thread, and a key."""
    data = tmp_path_factory.mktemp("fuzzed")
    store = StoreSettings(data_dir=data, url=PG_URL if request.param == "postgresql" else None)
    key = asyncio.run(_key(store))
    limits = ServerSettings(burst=100_000, rate_per_s=100_000, shutdown_grace_s=0.5)
    started: queue.Queue[str | BaseException] = queue.Queue()
    control: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []
    failed: list[BaseException] = []

    async def main() -> None:
        stop = asyncio.Event()
        control.append((asyncio.get_running_loop(), stop))
        async with serving(data, anonymous=False, server=limits, store=store) as url:
            started.put(url)
            await stop.wait()

    def run() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:  # reported by the fixture, not lost in the thread
            failed.append(exc)
            started.put(exc)

    thread = threading.Thread(target=run, name="fuzzed server", daemon=True)
    thread.start()
    url = started.get(timeout=STOP_S)
    if isinstance(url, BaseException):
        raise url
    try:
        yield url, key
    finally:
        loop, stop = control[0]
        loop.call_soon_threadsafe(stop.set)
        thread.join(STOP_S)
        assert not thread.is_alive(), "the server did not stop: workflows left running?"
        assert not failed, failed


def _schema() -> BaseSchema:
    """The schema the app serves at /openapi.json, read from the app itself: the cases are
    made when the tests are collected, before any server runs (the test below checks that
    the served schema is this one)."""
    return schemathesis.openapi.from_dict(create_app(settings_in(Path("unused"))).openapi())


schema = _schema()


def test_the_served_schema_is_the_one_fuzzed(server: tuple[str, str]) -> None:
    url, _ = server
    assert httpx.get(f"{url}/openapi.json").json() == schema.raw_schema


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_no_input_makes_a_server_error(case: Case, server: tuple[str, str]) -> None:
    url, key = server
    case.call_and_validate(
        base_url=url,
        headers={"X-API-Key": key},
        checks=[not_a_server_error, response_schema_conformance, content_type_conformance],
        timeout=15,
    )


_NUL_CURSOR = base64.urlsafe_b64encode(b"2026-01-01T00:00:00+00:00|a\x00b").decode()


@pytest.mark.parametrize(
    ("method", "path", "body", "where"),
    [
        # a lone surrogate is valid JSON that UTF-8 cannot encode: it failed the 422 itself,
        # and an agent described with one was stored, then failed every listing
        ("POST", "/v1/agents", rb'{"name": "critic", "description": "x\ud800"}', "description"),
        ("POST", "/v1/workflows", rb'{"request": "Describe a\ud800"}', "request"),
        # PostgreSQL refuses a NUL even to compare it: these were 503s
        ("POST", "/v1/agents", rb'{"name": "a\u0000b"}', "name"),
        ("PUT", "/v1/agents/a%00b", rb'{"name": "a\u0000b"}', "name"),
        ("GET", "/v1/workflows/a%00b", None, "workflow_id"),
        ("GET", f"/v1/workflows?cursor={_NUL_CURSOR}", None, None),
    ],
)
def test_what_the_fuzzer_found_is_refused_as_bad_input(
    server: tuple[str, str], method: str, path: str, body: bytes | None, where: str | None
) -> None:
    url, key = server
    headers = {"X-API-Key": key, "Content-Type": "application/json"}
    answer = httpx.request(method, f"{url}{path}", content=body, headers=headers)
    assert answer.status_code == 422, answer.text
    detail = answer.json()["detail"]
    assert where is None or where in {e["loc"][-1] for e in detail}
    assert httpx.get(f"{url}/v1/agents", headers=headers).status_code == 200
