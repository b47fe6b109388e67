"""The live page at ``/``: served with a strict Content-Security-Policy, and tested in a real
browser: a run started over the API appears on the page and its subtasks turn to succeeded
while it runs."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from playwright.async_api import expect

from automatos.store.sql import SqlStore
from tests.server.browser import CHROMIUM, NO_CHROMIUM, CuttingProxy, artifact, browsing
from tests.server.conftest import serving, serving_app, settings_in

REQUEST = "Describe PostgreSQL and Redis, then compare them."
STEPS = ("pg", "redis", "compare")
LATENCY = 0.7
"""Seconds each model call takes: long enough to see a step run before it succeeds, and for
the page (which lists the runs every 2 s) to follow a run before its steps start (after about
six calls: planning, choosing agents, negotiating)."""
DOCS_SCREENSHOT = Path(__file__).parents[2] / "docs" / "page.png"

# CI installs chromium (.ci/run) and says so: there, a missing browser fails the test
if CHROMIUM is None and os.environ.get("AUTOMATOS_REQUIRE_BROWSER"):
    raise RuntimeError(f"AUTOMATOS_REQUIRE_BROWSER is set, but: {NO_CHROMIUM}")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason=NO_CHROMIUM)


async def _key(data: Path) -> str:
    store = await SqlStore.open(settings_in(data).store)
    try:
        _, secret = await store.create_key("default", "the page")
    finally:
        await store.aclose()
    return secret


async def _finished_at(client: httpx.AsyncClient, workflow_id: str, key: str) -> float:
    """The Unix time in ms at which the workflow's event stream said it finished."""
    url = f"/v1/workflows/{workflow_id}/events"
    async with client.stream("GET", url, headers={"X-API-Key": key}) as events:
        async for line in events.aiter_lines():
            if line.startswith("data: ") and json.loads(line[6:])["kind"] == "workflow_finished":
                return time.time() * 1000
    raise AssertionError("the event stream ended without workflow_finished")


async def _until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_the_page_is_served_with_a_strict_policy_and_no_inline_script(
    tmp_path: Path,
) -> None:
    async with (
        serving(tmp_path, anonymous=False) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as client,
    ):
        page = await client.get("/")  # no key: the page holds no data
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        policy = page.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "default-src 'none'" in policy
        assert "unsafe-inline" not in policy
        assert 'data-key-required="true"' in page.text
        scripts = re.findall(r"<script[^>]*>", page.text)
        assert scripts and all(" src=" in tag for tag in scripts)
        assert not re.search(r"<[^>]*\son[a-z]+=", page.text)  # no inline event handler
        for asset in re.findall(r'(?:src|href)="(/static/[^"]+)"', page.text):
            answer = await client.get(asset)
            assert answer.status_code == 200, asset
            assert answer.headers["x-content-type-options"] == "nosniff"
        for name in ("../page.py", "..%2Fpage.py", "page.html", "nope.js"):
            assert (await client.get(f"/static/{name}")).status_code == 404, name
        assert (await client.get("/v1/workflows")).status_code == 401  # the data needs a key
    async with (
        serving(tmp_path / "open", anonymous=True) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as client,
    ):
        assert 'data-key-required="false"' in (await client.get("/")).text


@needs_chromium
async def test_a_run_started_over_the_api_turns_succeeded_live_on_the_page(
    tmp_path: Path,
) -> None:
    key = await _key(tmp_path)
    async with (
        serving_app(tmp_path, anonymous=False, latency=LATENCY) as (url, _),
        httpx.AsyncClient(base_url=url, timeout=60) as client,
        browsing(url) as browser,
    ):
        page = browser.page
        await page.goto("/")
        # the key is asked for once, before anything is fetched
        await expect(page.locator("#key-form")).to_be_visible()
        assert browser.errors == []
        await page.fill("#key-input", "atm_not-a-key")  # a wrong key is refused and forgotten
        await page.click("#key-form button[type=submit]")
        await expect(page.locator("#key-error")).to_contain_text("refused")
        await expect(page.locator("#key-held")).to_be_hidden()
        await _until(lambda: bool(browser.errors))  # the browser's own report of the 401
        assert len(browser.errors) == 1 and "status of 401" in browser.errors[0]
        browser.errors.clear()
        await page.fill("#key-input", key)
        await page.click("#key-form button[type=submit]")
        await expect(page.locator("#key-held")).to_be_visible()
        await expect(page.locator("#runs-empty")).to_be_visible()

        started = await client.post(
            "/v1/workflows", json={"request": REQUEST}, headers={"Authorization": f"Bearer {key}"}
        )
        assert started.status_code == 202
        wid = started.json()["workflow_id"]
        finished = asyncio.create_task(_finished_at(client, wid, key))
        row = page.locator(f'#runs tr[data-run-id="{wid}"]')
        await expect(row).to_have_attribute("data-status", "running", timeout=10_000)
        await expect(row.locator(".request")).to_have_text(REQUEST)
        await row.click()
        nodes = {step: page.locator(f'#dag [data-subtask="{step}"]') for step in STEPS}
        for node in nodes.values():
            await expect(node).to_have_attribute("data-status", "succeeded", timeout=30_000)
        finished_ms = await finished

        # Each step was drawn running, then succeeded at least one model call later, before
        # the workflow ended: the page followed the run as it ran.
        shown = await browser.statuses()
        for step in STEPS:
            statuses = [status for status, _ in shown[step]]
            assert "running" in statuses and statuses[-1] == "succeeded", (step, shown[step])
            running = next(at for status, at in shown[step] if status == "running")
            succeeded = shown[step][-1][1]
            assert succeeded - running >= LATENCY * 1000 * 0.8, (step, shown[step])
            assert succeeded < finished_ms, (step, shown[step], finished_ms)
        # the plan (plan_ready) is drawn before its steps run: compare waits, drawn pending
        assert shown["compare"][0][0] == "pending", shown["compare"]

        # Once ended: the run's row has its level, duration and Q; the plan its dependencies;
        # a step's output, agent, tokens and cost are one click away.
        await expect(row).to_have_attribute("data-status", "succeeded")
        await expect(row.locator(".level")).to_have_text("organ")
        await expect(row.locator(".quality")).to_have_text(re.compile(r"^0\.\d\d \[0\.\d\d, "))
        await expect(row.locator(".duration")).to_have_text(re.compile(r"^\d+\.\d s$"))
        await expect(page.locator('#dag path.edge[data-to="compare"]')).to_have_count(2)
        await expect(page.locator("#run-meta")).to_contain_text("level organ")
        await nodes["compare"].click()
        facts = page.locator("#subtask-facts")
        await expect(facts).to_contain_text("tokens")
        await expect(facts).to_contain_text("cost$0.0000")
        await expect(page.locator("#subtask-output")).to_contain_text("A fair and specific answer")
        agent = (await facts.locator("dt:text-is('agent') + dd").text_content()) or ""
        await expect(page.locator(f'#agents tr[data-agent="{agent}"] svg.spark')).to_have_count(1)

        # a second run: listed as it ends, while the first stays drawn (it was chosen); the
        # agents' scores over time now have two points
        second = await client.post(
            "/v1/workflows", json={"request": REQUEST}, headers={"X-API-Key": key}
        )
        await _finished_at(client, second.json()["workflow_id"], key)
        second_row = page.locator(f'#runs tr[data-run-id="{second.json()["workflow_id"]}"]')
        await expect(second_row).to_have_attribute("data-status", "succeeded", timeout=10_000)
        await expect(page.locator("#runs tbody tr").first).to_have_attribute(
            "data-run-id", second.json()["workflow_id"]
        )
        await expect(page.locator("#run-title")).to_have_text(wid)
        lines = page.locator('#agents svg.spark polyline[points*=" "]')  # two points or more
        await expect(lines).not_to_have_count(0, timeout=10_000)

        shot = artifact("page.png")
        await page.screenshot(path=str(shot), full_page=True)
        if not DOCS_SCREENSHOT.exists():  # the README's copy; delete it to take a new one
            DOCS_SCREENSHOT.parent.mkdir(exist_ok=True)
            shutil.copyfile(shot, DOCS_SCREENSHOT)

        # the key was entered once: a new visit uses it
        await page.reload()
        await expect(row).to_have_attribute("data-status", "succeeded")
        await expect(page.locator("#key-form")).to_be_hidden()
        assert browser.errors == []

        # forgetting it: the page asks again and shows nothing
        await page.click("#key-forget")
        await expect(page.locator("#key-form")).to_be_visible()
        await expect(page.locator("#runs tbody tr")).to_have_count(0)
        assert await page.evaluate("localStorage.length") == 0
        assert browser.errors == []


@needs_chromium
async def test_a_server_without_keys_needs_none_and_the_page_shows_text_as_text(
    tmp_path: Path,
) -> None:
    request = 'Compare <img src=x data-injected="1"> and <script>alert(1)</script> databases.'
    async with (
        serving(tmp_path, anonymous=True) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as client,
        browsing(url) as browser,
    ):
        page = browser.page
        await page.goto("/")
        started = await client.post("/v1/workflows", json={"request": request})
        wid = started.json()["workflow_id"]
        row = page.locator(f'#runs tr[data-run-id="{wid}"]')
        await expect(row).to_have_attribute("data-status", "succeeded", timeout=20_000)
        await expect(row.locator(".request")).to_have_text(request)
        assert await page.locator("[data-injected]").count() == 0
        await expect(page.locator("#key-form")).to_be_hidden()
        await expect(page.locator("#key-held")).to_be_hidden()
        # not chosen by anyone, the newest run is drawn
        await expect(page.locator('#dag [data-subtask="compare"]')).to_have_attribute(
            "data-status", "succeeded"
        )
        assert browser.errors == []


@needs_chromium
async def test_a_broken_event_stream_resumes_after_the_last_event_it_showed(
    tmp_path: Path,
) -> None:
    async with (
        serving_app(tmp_path, anonymous=True, latency=LATENCY) as (url, _),
        httpx.AsyncClient(base_url=url, timeout=60) as client,
    ):
        proxy = CuttingProxy(url)
        async with proxy as proxied, browsing(proxied) as browser:
            page = browser.page
            resumed: list[str | None] = []
            page.on(
                "request",
                lambda r: (
                    resumed.append(r.headers.get("last-event-id"))
                    if r.url.endswith("/events")
                    else None
                ),
            )
            await page.goto("/")
            await client.post("/v1/workflows", json={"request": REQUEST})
            pg = page.locator('#dag [data-subtask="pg"]')
            await expect(pg).to_have_attribute("data-status", "running", timeout=15_000)
            assert proxy.cut() == 1  # the network drops the stream while pg runs
            await expect(page.locator("#notice")).to_contain_text("resuming")
            compare = page.locator('#dag [data-subtask="compare"]')
            await expect(compare).to_have_attribute("data-status", "succeeded", timeout=20_000)
            await expect(page.locator("#notice")).to_be_hidden()
            # one reconnection, after the last event shown: nothing was shown twice
            assert len(resumed) == 2 and resumed[0] is None and int(resumed[1] or 0) > 0
            shown = await browser.statuses()
            for step in STEPS:  # each status once, in order (pending if drawn before it ran)
                statuses = [status for status, _ in shown[step]]
                assert statuses in (["running", "succeeded"], ["pending", "running", "succeeded"])
            assert len(browser.errors) == 1 and "/events" in browser.errors[0]  # the cut
