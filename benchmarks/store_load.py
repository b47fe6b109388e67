"""What the store costs a busy engine: its CPU per workflow and its wall time, on SQLite and
PostgreSQL, against no store (issue 14).

One engine, a scripted model (50 ms a call) that plans five independent subtasks at the
Organ level (context and memories off: no embedder); after a warm-up, ``--concurrent`` (200)
workflows at once (``asyncio.gather`` of ``engine.run``), with the store and with
``StoreSettings(enabled=False)``, interleaved, best of ``--repeats``:

- ``store_cpu_ms_per_workflow_<backend>``: the process's CPU time (``time.process_time``,
  every thread: aiosqlite runs its queries in one of its own) with the store less without,
  per workflow. Target <= 5 ms.
- ``concurrent_200_ratio_to_no_store_<backend>``: wall time with the store over without.
  Target <= 2.0.

Part of the difference is not the store's: with one, a workflow chooses among the registry's
agents (the starter team: a model call and the scoring of each), which the engine without a
store, with its one default agent, skips.

``--profile BACKEND`` runs one round under cProfile instead and prints where the time went.

The last line of output is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import os
import pstats
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from automatos import Engine, Settings, WorkflowRequest, aio
from automatos.domain.level import Level
from automatos.settings import ContextSettings, MemorySettings, PlanLimits, StoreSettings
from automatos.testing import Rule, ScriptedLLM

LATENCY_S = 0.05
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
TARGETS = {"store_cpu_ms_per_workflow": 5.0, "concurrent_200_ratio_to_no_store": 2.0}


def _model() -> ScriptedLLM:
    """Five independent steps, 50 ms a call; no confident choice of agent (the scores
    decide); the judge scores nothing."""
    return ScriptedLLM(
        rules=[
            Rule(r"^Request:", PLAN),
            Rule(r"^Subtasks:", json.dumps({"assignments": []})),
            Rule(r"(?s)^Task:.*Answer to score", json.dumps({"scores": []})),
        ],
        default=ANSWER,
        latency=LATENCY_S,
        record=False,
    )


def _store(backend: str, data_dir: Path, postgres_url: str) -> StoreSettings:
    if backend == "none":
        return StoreSettings(enabled=False, data_dir=data_dir)
    url = postgres_url if backend == "postgresql" else None
    return StoreSettings(url=url, data_dir=data_dir, workspace=f"bench-{uuid.uuid4().hex[:12]}")


@dataclass(frozen=True)
class Round:
    """``n`` workflows at once."""

    wall_s: float
    cpu_s: float
    loop_cpu_s: float


async def _round(store: StoreSettings, n: int, profile: cProfile.Profile | None = None) -> Round:
    settings = Settings(
        store=store,
        plan=PlanLimits(level=Level.ORGAN),
        context=ContextSettings(enabled=False),
        memory=MemorySettings(enabled=False),
    )
    async with Engine(settings, llm=_model()) as engine:
        await engine.open_store()  # connecting and migrating are not part of a run
        for _ in range(3):  # the first runs' imports, the store's first statements
            await engine.run(WorkflowRequest(text=REQUEST))
        await asyncio.gather(*(engine.run(WorkflowRequest(text=REQUEST)) for _ in range(20)))
        requests = [WorkflowRequest(text=REQUEST) for _ in range(n)]
        gc.collect()
        if profile is not None:
            profile.enable()
        wall, cpu, loop = time.perf_counter(), time.process_time(), time.thread_time()
        results = await asyncio.gather(*(engine.run(r) for r in requests))
        wall, cpu, loop = (
            time.perf_counter() - wall,
            time.process_time() - cpu,
            time.thread_time() - loop,
        )
        if profile is not None:
            profile.disable()
    failed = [r.status for r in results if r.status != "succeeded"]
    # a record not completed says so in the result's warnings
    unstored = [w for r in results for w in r.warnings if "store" in w or "record" in w]
    if failed or unstored:
        raise RuntimeError(f"{len(failed)} of {n} workflows failed ({failed[:3]}); {unstored[:3]}")
    return Round(wall, cpu, loop)


async def measure(backends: list[str], n: int, repeats: int, postgres_url: str) -> dict[str, Any]:
    """The figures of each backend against no store, best of ``repeats`` interleaved rounds."""
    rounds: dict[str, list[Round]] = {b: [] for b in ["none", *backends]}
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(repeats):
            for backend in rounds:
                data_dir = Path(tmp) / f"{backend}-{repeat}"
                rounds[backend].append(await _round(_store(backend, data_dir, postgres_url), n))
    best = {
        b: Round(*(min(getattr(r, f) for r in found) for f in ("wall_s", "cpu_s", "loop_cpu_s")))
        for b, found in rounds.items()
    }
    floor = best["none"]
    figures: dict[str, Any] = {}
    for backend in backends:
        found = best[backend]
        figures[f"store_cpu_ms_per_workflow_{backend}"] = (found.cpu_s - floor.cpu_s) / n * 1000
        figures[f"concurrent_200_ratio_to_no_store_{backend}"] = found.wall_s / floor.wall_s
    figures["details"] = {
        b: {
            "wall_s": r.wall_s,
            "cpu_ms_per_workflow": r.cpu_s / n * 1000,
            "loop_cpu_ms_per_workflow": r.loop_cpu_s / n * 1000,
        }
        for b, r in best.items()
    }
    figures["setup"] = {
        "loop": aio.loop_name(),
        "concurrent": n,
        "repeats": repeats,
        "cpus": os.cpu_count(),
    }
    return figures


async def profile(backend: str, n: int, postgres_url: str, top: int) -> None:
    """One round of ``backend`` under cProfile; the functions taking most time, printed."""
    profiler = cProfile.Profile()
    with tempfile.TemporaryDirectory() as tmp:
        found = await _round(_store(backend, Path(tmp), postgres_url), n, profiler)
    print(f"wall {found.wall_s:.3f} s, cpu {found.cpu_s / n * 1000:.2f} ms per workflow")
    stats = pstats.Stats(profiler)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--concurrent", type=int, default=200, help="workflows at once")
    parser.add_argument("--repeats", type=int, default=3, help="rounds; best kept")
    parser.add_argument(
        "--backends",
        type=lambda s: s.split(","),
        default=["sqlite", "postgresql"],
        help="stores measured, comma-separated",
    )
    parser.add_argument("--postgres-url", default=POSTGRES_URL)
    parser.add_argument("--profile", choices=["none", "sqlite", "postgresql"])
    parser.add_argument("--top", type=int, default=40, help="functions shown by --profile")
    return parser


if __name__ == "__main__":
    # The developer's own settings must not change what is measured.
    for key in [k for k in os.environ if k.upper().startswith("AUTOMATOS_")]:
        del os.environ[key]
    args = _parser().parse_args()
    if args.profile:
        aio.run(profile(args.profile, args.concurrent, args.postgres_url, args.top))
    else:
        figures = _rounded(
            aio.run(measure(args.backends, args.concurrent, args.repeats, args.postgres_url))
        )
        for name, value in figures.items():
            if name not in ("details", "setup"):
                target = next(t for key, t in TARGETS.items() if name.startswith(key))
                print(f"{name:<46} {value:>10.4g} {f'<= {target:g}':>8}")
        print(json.dumps(figures))
