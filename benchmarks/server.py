"""The HTTP API under load, and what the store costs a workflow (issue 14).

Every workflow is the same: a scripted model (50 ms a call) plans five independent subtasks
at the Organ level (context and memories off: no embedder), answers each step, then writes
the final answer; asked to choose agents, review a plan or judge, it answers as a capable
model would. One agent is registered (the generalist), so that a run with a store and one
without take the same stages and model calls (``--agents starter``: the starter team a new
workspace gets, whose multi-agent plans add an agent choice, a negotiation and a judge).

1. Server: ``automatos serve``'s application (:func:`automatos.server.app.create_app`, no
   keys) in a process of its own, run as ``automatos serve`` runs it
   (:func:`automatos.cli.serve.run_server`: uvicorn on uvloop with httptools), on a loopback
   port, its store a SQLite file in a temporary directory (``--server-store postgresql`` for
   PostgreSQL). Its model answers a call in 0.5 to 1.5 s, evenly spread
   (``--server-latency 1.0 --server-jitter 0.5``): a hosted model's pace, faster than most,
   and spread as real calls are (calls that all took the same time would keep every workflow
   in step, 200 of them waking at once). One aiohttp client (httpx costs five times the CPU
   per workflow, which the client would take from the server on a small machine) keeps
   ``--in-flight`` workflows (200) running: it POSTs one with ``Accept: text/event-stream``,
   whose answer is the workflow's event stream (SSE) from its first event, reads it to its
   end (``workflow_finished``, then the end of the answer, which keeps the connection for
   the next request), then starts the next (``--follow get``: the JSON answer, then a GET of
   the events, as before the POST could stream). After a warm-up of ``--warmup`` workflows
   (the first wave allocates the pools and arenas that later waves reuse), two batches of
   ``--workflows / 2`` (500 each; more than ``--in-flight``), the server left idle for 2 s
   after each:

   - ``workflows_per_s``: the measured workflows over the two batches' wall time (with 200
     in flight, bounded by the model's pace: about 50 a second).
   - ``sse_lag_ms_p99``: an event's ``at`` (``time.time()`` when the engine emitted it) to
     the moment the client read its ``data:`` line (``time.time()``, same machine, same
     clock), p99 over the events received while the client still had workflows to start
     (all ``--in-flight`` of them running). Target <= 50 ms. The events emitted before the
     client's stream was open (with ``--follow get``, a run's first few, emitted while the
     POST's answer and the GET were on their way) count with that wait; ``details`` has the
     p99 of the others (``sse_lag_ms_p99_live``), of the events emitted in a batch's first
     second, as its first 200 workflows start at once (``sse_lag_ms_p99_batch_start``), and
     of the rest; how long the POST, the stream's headers and the first event took.
   - ``rss_growth_500_to_1000``: the server's VmRSS (``/proc/PID/status``) after the second
     batch over that after the first, less one. Target <= 0.05 (no leak).

   ``details`` also has the server's and the client's CPU time per workflow, and
   ``capacity``: the server flat out (``--capacity`` workflows, every call 50 ms exactly,
   200 in flight: more than its CPU can serve), its throughput then and the event lag, which
   is then the queue for its CPU.

2. Store, through the library: one engine, the same model, ``--concurrent`` (200) workflows
   at once (``asyncio.gather`` of ``engine.run``) after a warm-up, with the store (SQLite in a
   temporary directory; PostgreSQL at ``--postgres-url``, a new workspace each run) and with
   ``StoreSettings(enabled=False)``, interleaved, best of ``--repeats``. The process runs as
   ``automatos serve`` runs it: once the engine's store is open, the heap start-up made is
   frozen (:func:`automatos.heap.freeze_startup_heap`, ``server.freeze_heap``), in both arms;
   ``details.store.collected`` has the same figures without that, measured in the same run
   (with the store, one full collection of the whole heap falls inside the 200 workflows and
   takes 90-115 ms of their 0.5-0.6 s; frozen, 15-20 ms):

   - ``store_cpu_ms_per_workflow_<backend>``: the process's CPU time (``time.process_time``,
     every thread: aiosqlite runs its queries in one of its own) with the store less without,
     per workflow. Target <= 5 ms. The event loop's own share (``time.thread_time``) is in
     ``details``.
   - ``concurrent_200_ratio_to_no_store_<backend>``: wall time with the store over without.
     Target <= 2.0. (The keys keep their names whatever ``--concurrent`` is.)

   A backend that cannot be reached reports ``null`` and says why.

Quick run: ``--workflows 200 --in-flight 50 --warmup 50 --capacity 0 --concurrent 50
--repeats 1``;
``--no-server`` or ``--no-store`` for one part. The last line of output is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import math
import os
import random
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from automatos import Engine, Settings, WorkflowRequest, aio
from automatos.domain.agent import DEFAULT_AGENT
from automatos.domain.level import Level
from automatos.errors import AutomatosError
from automatos.heap import freeze_startup_heap
from automatos.llm.base import Message
from automatos.registry import starter_agents
from automatos.settings import (
    ContextSettings,
    MemorySettings,
    PlanLimits,
    ServerSettings,
    StoreSettings,
)
from automatos.testing import Rule, ScriptedLLM

SCRIPT = str(Path(__file__).resolve())
LATENCY_S = 0.05
SERVER_LATENCY_S = 1.0
SERVER_JITTER = 0.5
POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
REQUEST = "Describe PostgreSQL, Redis, SQLite, MySQL and MongoDB, one section each."
PLAN = json.dumps(
    {
        "subtasks": [
            {"id": f"db{i}", "description": f"Describe database number {i}", "depends_on": []}
            for i in range(1, 6)
        ]
    }
)
ANSWER = "A fair and specific answer about databases, with facts and a conclusion."
SUMMARY = "Five databases, one section each, and what sets each apart."
VERDICT = json.dumps(
    {
        dimension: {"score": 0.8, "reason": "Specific and correct."}
        for dimension in ("completeness", "accuracy", "coherence")
    }
)
TARGETS = {
    "sse_lag_ms_p99": 50.0,
    "rss_growth_500_to_1000": 0.05,
    "store_cpu_ms_per_workflow": 5.0,
    "concurrent_200_ratio_to_no_store": 2.0,
}


def _model(latency: float = LATENCY_S, jitter: float = 0.0) -> ScriptedLLM:
    """A capable model, 50 ms a call: a plan of five independent steps, an answer to each,
    and a summary; asked to choose agents, no confident choice (the scores decide); asked to
    review a plan, no change; asked to judge, good scores. Calls are not recorded (a server
    that kept them would seem to leak)."""
    return ScriptedLLM(
        # the final answer's and the judge's prompts start as the planner's: they go first
        rules=[
            Rule("\n\nResults:\n", SUMMARY),
            Rule("\n\nStep:\n", VERDICT),
            Rule(r"^Request:", PLAN),
            Rule(r"^Subtasks:", json.dumps({"assignments": []})),
            Rule(r"^Review by ", json.dumps({"proposals": []})),
        ],
        default=ANSWER,
        latency=latency if not jitter else _jittered(latency, jitter),
        record=False,
    )


def _jittered(latency: float, jitter: float) -> Callable[[Sequence[Message]], float]:
    """Call times spread evenly over ``latency`` ± ``jitter``·``latency``: a model's calls
    do not all take the same time, and calls that did would keep every workflow in step
    (200 of them waking at once, a burst no server sees)."""
    spread = random.Random(14)
    return lambda _: latency * spread.uniform(1 - jitter, 1 + jitter)


def _settings(store: StoreSettings) -> Settings:
    return Settings(
        store=store,
        plan=PlanLimits(level=Level.ORGAN),
        context=ContextSettings(enabled=False),
        memory=MemorySettings(enabled=False),
        # one anonymous client starts every workflow: no rate limit in the way
        server=ServerSettings(rate_per_s=1e9, burst=1_000_000_000),
    )


def _store(backend: str, data_dir: Path, postgres_url: str) -> StoreSettings:
    if backend == "none":
        return StoreSettings(enabled=False, data_dir=data_dir)
    url = postgres_url if backend == "postgresql" else None
    workspace = f"bench-{uuid.uuid4().hex[:12]}"
    return StoreSettings(url=url, data_dir=data_dir, workspace=workspace)


def _p(values: list[float], q: float) -> float:
    """The ``q`` quantile (nearest rank) of ``values``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


# -- the server process ---------------------------------------------------------------------


async def _one_agent(store: StoreSettings) -> None:
    """Register the generalist alone, before the starter team would be."""
    from automatos.store.sql import SqlStore

    opened = await SqlStore.open(store)
    try:
        await opened.save_agents([DEFAULT_AGENT])
    finally:
        await opened.aclose()


def _serve(args: argparse.Namespace) -> None:
    """Serve the application on ``args.serve`` as ``automatos serve`` does, until SIGTERM."""
    from automatos.cli.serve import run_server
    from automatos.server.app import create_app

    settings = _settings(_store(args.server_store, args.data_dir, args.postgres_url))
    if args.agents == "one":
        aio.run(_one_agent(settings.store))
    llm = _model(args.server_latency, args.server_jitter)
    run_server(create_app(settings, llm=llm, anonymous=True), "127.0.0.1", args.serve, "warning")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def _server(
    data_dir: Path, backend: str, postgres_url: str, agents: str, latency: float, jitter: float
) -> AsyncIterator[tuple[str, int]]:
    """A server process (this script with ``--serve``): its base URL and pid once ready.
    Its model's calls take ``latency`` seconds, give or take ``jitter`` of it."""
    port = _free_port()
    command = ["--serve", str(port), "--data-dir", str(data_dir), "--server-store", backend]
    command += ["--postgres-url", postgres_url, "--agents", agents]
    command += [f"--server-latency={latency}", f"--server-jitter={jitter}"]
    process = await asyncio.create_subprocess_exec(sys.executable, SCRIPT, *command)
    base = f"http://127.0.0.1:{port}"
    try:
        async with _client() as client:
            deadline = time.monotonic() + 60
            while True:
                if process.returncode is not None:
                    raise RuntimeError(f"the server exited with {process.returncode}")
                with contextlib.suppress(aiohttp.ClientError):
                    async with client.get(f"{base}/readyz") as ready:
                        if ready.status == 200:
                            break
                if time.monotonic() > deadline:
                    raise RuntimeError("the server was not ready within 60 s")
                await asyncio.sleep(0.1)
        yield base, process.pid
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                async with asyncio.timeout(30):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def _cpu_s(pid: int) -> float:
    """The process's user and system CPU time so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- the client -----------------------------------------------------------------------------


@dataclass
class Load:
    """What the client saw in one batch."""

    lags_ms: list[float] = field(default_factory=list)
    """Events received while every slot was busy (the client had workflows left to start)."""
    tail_lags_ms: list[float] = field(default_factory=list)
    """Events received once the last workflow was started (fewer in flight)."""
    live_lags_ms: list[float] = field(default_factory=list)
    """Those of ``lags_ms`` emitted after their stream was open (none waited for the client
    to connect)."""
    start_lags_ms: list[float] = field(default_factory=list)
    """Those of ``lags_ms`` emitted in the batch's first second, as its first
    ``--in-flight`` workflows start at once."""
    steady_lags_ms: list[float] = field(default_factory=list)
    """The other ``lags_ms``."""
    post_ms: list[float] = field(default_factory=list)
    """POST to its answer (following on the POST: to the stream's headers)."""
    first_event_ms: list[float] = field(default_factory=list)
    """POST to the first event read."""
    open_ms: list[float] = field(default_factory=list)
    """GET of the event stream to its headers (following with a GET)."""
    statuses: dict[str, int] = field(default_factory=dict)
    events: int = 0
    cpu_s: float = 0.0
    """The client's own CPU time."""
    started: float = field(default_factory=time.time)
    """When the batch began."""


async def _one(
    client: aiohttp.ClientSession, base: str, load: Load, busy: Callable[[], bool], follow: str
) -> None:
    """Start one workflow and follow its events to the end of its stream: on the POST's own
    answer (``follow`` "post": ``Accept: text/event-stream``), or with a GET of its events
    once the POST answered (``follow`` "get")."""
    posted = time.time()
    if follow == "post":
        async with client.post(
            f"{base}/v1/workflows", json={"request": REQUEST}, headers=_STREAM
        ) as stream:
            stream.raise_for_status()
            opened = time.time()
            load.post_ms.append((opened - posted) * 1000)
            await _follow(stream, load, busy, posted, opened)
        return
    async with client.post(f"{base}/v1/workflows", json={"request": REQUEST}) as answer:
        answer.raise_for_status()
        started = await answer.json()
    asked = time.time()
    load.post_ms.append((asked - posted) * 1000)
    async with client.get(f"{base}{started['events']}") as stream:
        stream.raise_for_status()
        opened = time.time()
        load.open_ms.append((opened - asked) * 1000)
        await _follow(stream, load, busy, posted, opened)


_STREAM = {"Accept": "text/event-stream"}


async def _follow(
    stream: aiohttp.ClientResponse,
    load: Load,
    busy: Callable[[], bool],
    posted: float,
    opened: float,
) -> None:
    """Read an event stream to its end, timing each event; it ends with
    ``workflow_finished``, once the run's record is written. (A client that stopped reading
    at ``workflow_finished`` would close its connection with the answer unfinished, the
    server's stream cancelled, and open another for its next workflow.)"""
    finished = False
    async for line in stream.content:
        if not line.startswith(b"data:"):
            continue
        received = time.time()
        event = json.loads(line[5:])
        lag_ms = (received - event["at"]) * 1000
        if event["seq"] == 1:
            load.first_event_ms.append((received - posted) * 1000)
        if busy():
            load.lags_ms.append(lag_ms)
            if event["at"] >= opened:
                load.live_lags_ms.append(lag_ms)
            if event["at"] < load.started + 1.0:
                load.start_lags_ms.append(lag_ms)
            else:
                load.steady_lags_ms.append(lag_ms)
        else:
            load.tail_lags_ms.append(lag_ms)
        load.events += 1
        if event["kind"] == "workflow_finished":
            status = event["status"]
            load.statuses[status] = load.statuses.get(status, 0) + 1
            finished = True
    if not finished:
        raise RuntimeError("the event stream ended before workflow_finished")


async def _batch(
    client: aiohttp.ClientSession, base: str, n: int, in_flight: int, follow: str
) -> tuple[Load, float]:
    """``n`` workflows, ``in_flight`` at a time; what was seen, and the wall time."""
    load = Load()
    left = n

    def busy() -> bool:
        return left > 0

    async def slot() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await _one(client, base, load, busy, follow)

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(slot() for _ in range(min(n, in_flight))))
    load.cpu_s = time.process_time() - cpu
    return load, time.perf_counter() - started


async def _quiet() -> None:
    """Let the server finish what follows a batch (records flushed, runs dropped)."""
    await asyncio.sleep(2.0)


def _client() -> aiohttp.ClientSession:
    # uvicorn closes a connection idle for 5 s: the client lets go of it first, or a request
    # sent on it as it closes fails ("Server disconnected")
    connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=1.0)
    return aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=120))


async def server_figures(
    workflows: int,
    in_flight: int,
    warmup: int,
    backend: str,
    postgres_url: str,
    agents: str,
    latency: float,
    jitter: float,
    follow: str,
) -> dict[str, Any]:
    """Part 1: throughput, event lag and memory of a server process."""
    half = workflows // 2
    with tempfile.TemporaryDirectory() as tmp:
        async with (
            _server(Path(tmp), backend, postgres_url, agents, latency, jitter) as (base, pid),
            _client() as client,
        ):
            rss_start = _rss_mb(pid)
            if warmup:
                await _batch(client, base, warmup, in_flight, follow)
                await _quiet()
            rss_warm = _rss_mb(pid)
            cpu_before = _cpu_s(pid)
            first, first_s = await _batch(client, base, half, in_flight, follow)
            await _quiet()
            rss_half = _rss_mb(pid)
            second, second_s = await _batch(client, base, workflows - half, in_flight, follow)
            await _quiet()
            rss_full = _rss_mb(pid)
            server_cpu_s = _cpu_s(pid) - cpu_before
    lags = first.lags_ms + second.lags_ms
    live = first.live_lags_ms + second.live_lags_ms
    everything = lags + first.tail_lags_ms + second.tail_lags_ms
    post_ms, open_ms = first.post_ms + second.post_ms, first.open_ms + second.open_ms
    start = first.start_lags_ms + second.start_lags_ms
    steady = first.steady_lags_ms + second.steady_lags_ms
    first_event_ms = first.first_event_ms + second.first_event_ms
    statuses = dict(first.statuses)
    for status, count in second.statuses.items():
        statuses[status] = statuses.get(status, 0) + count
    return {
        "workflows_per_s": workflows / (first_s + second_s),
        "sse_lag_ms_p99": _p(lags, 0.99),
        "rss_growth_500_to_1000": rss_full / rss_half - 1,
        "details": {
            "sse_lag_ms_p50": _p(lags, 0.5),
            "sse_lag_ms_max": max(lags),
            "sse_lag_ms_p99_live": _p(live, 0.99) if live else None,
            "sse_lag_ms_p99_all_events": _p(everything, 0.99),
            "sse_lag_ms_p99_batch_start": _p(start, 0.99) if start else None,
            "sse_lag_ms_p99_after_batch_start": _p(steady, 0.99) if steady else None,
            "events_batch_start": len(start),
            "events_at_full_load": len(lags),
            "events_live": len(live),
            "events": len(everything),
            "post_ms_p50": _p(post_ms, 0.5),
            "post_ms_p99": _p(post_ms, 0.99),
            "stream_open_ms_p50": _p(open_ms, 0.5) if open_ms else None,
            "stream_open_ms_p99": _p(open_ms, 0.99) if open_ms else None,
            "first_event_ms_p50": _p(first_event_ms, 0.5),
            "first_event_ms_p99": _p(first_event_ms, 0.99),
            "statuses": statuses,
            "batch_s": [first_s, second_s],
            "server_cpu_ms_per_workflow": server_cpu_s / workflows * 1000,
            "client_cpu_ms_per_workflow": (first.cpu_s + second.cpu_s) / workflows * 1000,
            "rss_mb": {
                "started": rss_start,
                "after_warmup": rss_warm,
                f"after_{half}": rss_half,
                f"after_{workflows}": rss_full,
            },
        },
    }


async def capacity(
    workflows: int, in_flight: int, backend: str, postgres_url: str, agents: str, follow: str
) -> dict[str, Any]:
    """The server flat out: every model call 50 ms exactly, ``in_flight`` workflows at once,
    more than the server's CPU can serve; its throughput then is its capacity, and the
    event lag is the queue for its CPU."""
    with tempfile.TemporaryDirectory() as tmp:
        async with (
            _server(Path(tmp), backend, postgres_url, agents, LATENCY_S, 0.0) as (base, pid),
            _client() as client,
        ):
            await _batch(client, base, in_flight, in_flight, follow)
            cpu = _cpu_s(pid)
            load, wall = await _batch(client, base, workflows, in_flight, follow)
            cpu = _cpu_s(pid) - cpu
    return {
        "workflows_per_s": workflows / wall,
        "server_cpu_ms_per_workflow": cpu / workflows * 1000,
        "server_cpu_share": cpu / wall,
        "sse_lag_ms_p50": _p(load.lags_ms, 0.5),
        "sse_lag_ms_p99": _p(load.lags_ms, 0.99),
    }


# -- the store through the library ----------------------------------------------------------


@dataclass(frozen=True)
class Concurrent:
    """One round of ``n`` workflows at once."""

    wall_s: float
    cpu_s: float
    loop_cpu_s: float


async def _concurrent(store: StoreSettings, n: int, agents: str, *, frozen: bool) -> Concurrent:
    """``n`` workflows at once on a new engine, after a warm-up; ``frozen``: with the heap
    of its start frozen, as ``automatos serve`` freezes it."""
    # The same candidates with and without the store: the starter team the store registers
    # comes with the request when there is none; the generalist alone is registered first.
    team = tuple(starter_agents()) if agents == "starter" and not store.enabled else ()

    def request() -> WorkflowRequest:
        return WorkflowRequest(text=REQUEST, agents=team)

    async with Engine(_settings(store), llm=_model()) as engine:
        async with asyncio.timeout(store.timeout_s):
            opened = await engine.open_store()  # connecting and migrating are not part of a run
            if opened is not None and agents == "one":
                await opened.save_agents([DEFAULT_AGENT])
        if frozen:
            freeze_startup_heap()
        for _ in range(3):  # warm: the first run's imports, the store's statements
            await engine.run(request())
        await asyncio.gather(*(engine.run(request()) for _ in range(20)))
        requests = [request() for _ in range(n)]
        gc.collect()
        wall, cpu, loop = time.perf_counter(), time.process_time(), time.thread_time()
        results = await asyncio.gather(*(engine.run(r) for r in requests))
        wall, cpu, loop = (
            time.perf_counter() - wall,
            time.process_time() - cpu,
            time.thread_time() - loop,
        )
    gc.unfreeze()  # the next round starts as this one did
    failed = [r.status for r in results if r.status != "succeeded"]
    if failed:
        raise RuntimeError(f"{len(failed)} of {n} workflows did not succeed: {failed[:3]}")
    return Concurrent(wall, cpu, loop)


async def _reachable(backend: str, postgres_url: str) -> str | None:
    """Why ``backend`` cannot be used, or None."""
    if backend != "postgresql":
        return None
    from automatos.store.sql import SqlStore

    try:
        async with asyncio.timeout(10):
            store = await SqlStore.open(StoreSettings(url=postgres_url, workspace="bench-probe"))
            await store.aclose()
    except (OSError, TimeoutError, AutomatosError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


async def store_figures(
    backends: list[str], n: int, repeats: int, postgres_url: str, agents: str
) -> dict[str, Any]:
    """Part 2: the store's CPU and wall time per backend, against none, best of ``repeats``;
    the heap frozen at the engine's start as ``automatos serve`` freezes it (the figures), and
    not (``details.store.collected``)."""
    unreachable = {b: await _reachable(b, postgres_url) for b in backends}
    used = ["none"] + [b for b in backends if unreachable[b] is None]
    heaps = {"frozen": True, "collected": False}
    rounds: dict[tuple[str, str], list[Concurrent]] = {(h, b): [] for h in heaps for b in used}
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(repeats):
            for heap, frozen in heaps.items():
                for backend in used:
                    data_dir = Path(tmp) / f"{heap}-{backend}-{repeat}"
                    store = _store(backend, data_dir, postgres_url)
                    rounds[heap, backend].append(await _concurrent(store, n, agents, frozen=frozen))

    def best(heap: str, backend: str) -> Concurrent:
        found = rounds[heap, backend]
        return Concurrent(
            min(r.wall_s for r in found),
            min(r.cpu_s for r in found),
            min(r.loop_cpu_s for r in found),
        )

    def compared(heap: str) -> tuple[dict[str, Any], dict[str, Any]]:
        floor = best(heap, "none")
        figures: dict[str, Any] = {}
        details: dict[str, Any] = {"none": _round_of(floor, n)}
        for backend in backends:
            if unreachable[backend] is not None:
                figures[f"store_cpu_ms_per_workflow_{backend}"] = None
                figures[f"concurrent_200_ratio_to_no_store_{backend}"] = None
                details[backend] = {"unreachable": unreachable[backend]}
                continue
            found = best(heap, backend)
            cpu_ms = (found.cpu_s - floor.cpu_s) / n * 1000
            figures[f"store_cpu_ms_per_workflow_{backend}"] = cpu_ms
            figures[f"concurrent_200_ratio_to_no_store_{backend}"] = found.wall_s / floor.wall_s
            details[backend] = {
                **_round_of(found, n),
                "store_loop_cpu_ms_per_workflow": (found.loop_cpu_s - floor.loop_cpu_s) / n * 1000,
            }
        return figures, details

    figures, details = compared("frozen")
    collected, collected_details = compared("collected")
    details["collected"] = {**collected, **collected_details}
    figures["details"] = details
    return figures


def _round_of(found: Concurrent, n: int) -> dict[str, float]:
    return {
        "wall_s": found.wall_s,
        "cpu_ms_per_workflow": found.cpu_s / n * 1000,
        "loop_cpu_ms_per_workflow": found.loop_cpu_s / n * 1000,
    }


# -- main -----------------------------------------------------------------------------------


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def _table(figures: dict[str, Any]) -> None:
    print(f"{'figure':<46} {'value':>10} {'target':>8}")
    for name, value in figures.items():
        if name in ("details", "setup"):
            continue
        target = next((t for key, t in TARGETS.items() if name.startswith(key)), None)
        shown = "null" if value is None else f"{value:.4g}"
        print(f"{name:<46} {shown:>10} {'' if target is None else f'<= {target:g}':>8}")


async def main(args: argparse.Namespace) -> dict[str, Any]:
    """Both parts; the figures, with details and the setup."""
    figures: dict[str, Any] = {}
    details: dict[str, Any] = {}
    if not args.no_server:
        server = await server_figures(
            args.workflows,
            args.in_flight,
            args.warmup,
            args.server_store,
            args.postgres_url,
            args.agents,
            args.server_latency,
            args.server_jitter,
            args.follow,
        )
        details["server"] = server.pop("details")
        figures.update(server)
        if args.capacity:
            details["capacity"] = await capacity(
                args.capacity,
                args.in_flight,
                args.server_store,
                args.postgres_url,
                args.agents,
                args.follow,
            )
    if not args.no_store:
        store = await store_figures(
            args.backends, args.concurrent, args.repeats, args.postgres_url, args.agents
        )
        details["store"] = store.pop("details")
        figures.update(store)
    figures["details"] = details
    figures["setup"] = {
        "loop": aio.loop_name(),
        "model_latency_s": LATENCY_S,
        "server_model_latency_s": [
            args.server_latency * (1 - args.server_jitter),
            args.server_latency * (1 + args.server_jitter),
        ],
        "subtasks": 5,
        "level": Level.ORGAN.value,
        "workflows": args.workflows,
        "in_flight": args.in_flight,
        "warmup": args.warmup,
        "follow": args.follow,
        "server_store": args.server_store,
        "agents": args.agents,
        "concurrent": args.concurrent,
        "repeats": args.repeats,
        "cpus": os.cpu_count(),
        "load_average_1min_at_end": os.getloadavg()[0],
    }
    return _rounded(figures)  # type: ignore[no-any-return]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--workflows", type=int, default=1000, help="measured server runs")
    parser.add_argument("--in-flight", type=int, default=200, help="server runs at once")
    parser.add_argument("--warmup", type=int, default=200, help="server runs before measuring")
    parser.add_argument(
        "--server-store", choices=["sqlite", "postgresql"], default="sqlite", help="its store"
    )
    parser.add_argument("--concurrent", type=int, default=200, help="library runs at once")
    parser.add_argument("--repeats", type=int, default=3, help="library rounds; best kept")
    parser.add_argument(
        "--backends",
        type=lambda s: s.split(","),
        default=["sqlite", "postgresql"],
        help="stores measured through the library, comma-separated",
    )
    parser.add_argument(
        "--agents",
        choices=["one", "starter"],
        default="one",
        help="the generalist alone, or the starter team (multi-agent plans), in both parts",
    )
    parser.add_argument("--postgres-url", default=POSTGRES_URL)
    parser.add_argument(
        "--server-latency",
        type=float,
        default=SERVER_LATENCY_S,
        help="seconds a model call takes in the server part, on average",
    )
    parser.add_argument(
        "--server-jitter",
        type=float,
        default=SERVER_JITTER,
        help="the server part's call times spread over latency * (1 +- jitter)",
    )
    parser.add_argument(
        "--capacity",
        type=int,
        default=600,
        help="workflows of the flat-out run (model calls 50 ms); 0 skips it",
    )
    parser.add_argument(
        "--follow",
        choices=["post", "get"],
        default="post",
        help="follow each workflow's events on its POST (Accept: text/event-stream), or "
        "with a GET of them once the POST answered",
    )
    parser.add_argument("--no-server", action="store_true", help="skip the server part")
    parser.add_argument("--no-store", action="store_true", help="skip the library part")
    parser.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)
    return parser


if __name__ == "__main__":
    # The developer's own settings must not change what is measured.
    for key in [k for k in os.environ if k.upper().startswith("AUTOMATOS_")]:
        del os.environ[key]
    parser = _parser()
    args = parser.parse_args()
    if args.serve is None and not args.no_server and args.workflows // 2 <= args.in_flight:
        # an event counts while the client has workflows left to start
        parser.error("--workflows / 2 must be over --in-flight, or no event is at full load")
    if args.serve is not None:
        _serve(args)
    else:
        figures = aio.run(main(args))
        _table(figures)
        print(json.dumps(figures))
