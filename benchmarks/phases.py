"""What a right-sized workflow saves: the Atom path against the full pipeline (issue 11).

A scripted provider stands in for the model (no latency: what is measured is the engine's own
time), and runs are recorded in a SQLite store, as by default.

1. The same simple request ("What is 12 * 14?") through the Atom path (the level the engine
   finds for it) and through the full pipeline (``level=organ``): the engine's time beside
   the model's, p50 over the runs, and the prompt tokens of every model call of a run (the
   scripted provider counts four characters a token, as servers without usage are counted).
   The full pipeline's model plans the request in two steps, chooses among the registry's
   agents, and the judge scores: what a capable hosted model does with it.
2. A sample of requests of every kind: the level found, and the stages and tokens it costs.

Targets: Atom overhead <= 10 ms p50 with the store on; Atom prompt tokens <= 3,000 and <= 25%
of the full pipeline's. The last line of output is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from automatos import Engine, Level, Settings, WorkflowRequest, WorkflowResult, aio
from automatos.llm.base import Message
from automatos.phases.plan.shape import shape_of
from automatos.settings import StoreSettings
from automatos.testing import Rule, ScriptedLLM

SIMPLE = "What is 12 * 14?"

PLAN = json.dumps(
    {
        "subtasks": [
            {"id": "compute", "description": "Compute 12 * 14", "depends_on": []},
            {
                "id": "answer",
                "description": "State the product of 12 and 14",
                "depends_on": ["compute"],
            },
        ]
    }
)

SAMPLE = {
    "atom": ["What is 17 * 23?", "Who wrote Hamlet?", "What is the capital of Japan?"],
    "molecule": [
        "Write a haiku about autumn.",
        "Explain how a hash map works.",
        "Summarise the plot of Hamlet in five sentences.",
    ],
    "cell": [
        "Research the history of the printing press.",
        "Design a database schema for a small lending library with members, books and loans.",
        "Review this function for bugs: def mean(xs): return sum(xs) / len(xs)",
    ],
    "organ": [
        "Describe PostgreSQL, Redis and SQLite, then write a short comparison of them.",
        "Plan a weekend in Lisbon: 1. find three hotels near the old town, 2. list the museums "
        "open on Sunday, 3. suggest two restaurants, 4. make an itinerary using them.",
        "Research the top three vector databases and write a comparison.",
    ],
    "organism": [
        "\n".join(f"{i}. Write chapter {i} of the onboarding handbook." for i in range(1, 9)),
    ],
}


def _plan(messages: Sequence[Message]) -> str:
    """A capable planner's answer: one step per deliverable of the request, each depending
    on those it uses; a one-deliverable request in two steps (work it out, state it)."""
    request = messages[-1].content.removeprefix("Request:\n").split("\n\n", 1)[0]
    parts = shape_of(request).parts
    if len(parts) < 2:
        return PLAN
    steps = [
        {
            "id": f"part_{i + 1}",
            "description": part.text,
            "depends_on": [f"part_{j + 1}" for j in part.uses],
        }
        for i, part in enumerate(parts)
    ]
    return json.dumps({"subtasks": steps})


def _model() -> ScriptedLLM:
    selection = json.dumps({"assignments": []})  # no confident choice: the scores decide
    judge = json.dumps({"scores": []})
    return ScriptedLLM(
        rules=[
            Rule(r"^Request:", _plan),
            Rule(r"^Subtasks:", selection),
            Rule(r"(?s)^Task:.*Answer to score", judge),
        ],
        default="168",
        record=False,
    )


def _engine(data_dir: Path) -> Engine:
    return Engine(Settings(store=StoreSettings(data_dir=data_dir)), llm=_model())


def _prompt_tokens(result: WorkflowResult) -> int:
    return sum(call.tokens_in for call in result.llm_calls)


async def _runs(engine: Engine, request: WorkflowRequest, n: int) -> list[WorkflowResult]:
    results = []
    for _ in range(n):
        results.append(await engine.run(request.model_copy(update={"workflow_id": _new_id()})))
    return results


def _new_id() -> str:
    import uuid

    return uuid.uuid4().hex


async def _timed(engine: Engine, request: WorkflowRequest, n: int) -> tuple[float, WorkflowResult]:
    """p50 of the engine's time beside the model's, in ms, and one result."""
    await _runs(engine, request, 3)  # warm: the store's tables, the imports
    times: list[float] = []
    last: WorkflowResult | None = None
    for _ in range(n):
        started = time.perf_counter()
        last = await engine.run(request.model_copy(update={"workflow_id": _new_id()}))
        wall = time.perf_counter() - started
        model = sum(call.latency_s for call in last.llm_calls)
        times.append((wall - model) * 1000)
    assert last is not None
    return statistics.median(times), last


async def main(runs: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        async with _engine(Path(tmp)) as engine:
            atom_ms, atom = await _timed(engine, WorkflowRequest(text=SIMPLE), runs)
            full_ms, full = await _timed(
                engine, WorkflowRequest(text=SIMPLE, level=Level.ORGAN), runs
            )
            assert atom.level is not None
            assert atom.level.level is Level.ATOM, atom.level
            print(f"atom:  {atom_ms:6.2f} ms p50 beside the model; stages {atom.stages}")
            print(f"       calls {[c.stage for c in atom.llm_calls]}")
            print(f"full:  {full_ms:6.2f} ms p50 beside the model; stages {full.stages}")
            print(f"       calls {[c.stage for c in full.llm_calls]}")
            per_level: dict[str, dict[str, object]] = {}
            for expected, requests in SAMPLE.items():
                for text in requests:
                    result = await engine.run(text)
                    assert result.level is not None
                    found = result.level.level.value
                    print(
                        f"{expected:>8} -> {found:<8} {len(result.llm_calls)} calls "
                        f"{_prompt_tokens(result):5d} prompt tokens  {text[:60]!r}"
                    )
                    entry = per_level.setdefault(found, {"requests": 0, "prompt_tokens": []})
                    entry["requests"] = int(str(entry["requests"])) + 1
                    tokens = entry["prompt_tokens"]
                    assert isinstance(tokens, list)
                    tokens.append(_prompt_tokens(result))
    atom_tokens, full_tokens = _prompt_tokens(atom), _prompt_tokens(full)
    return {
        "atom_overhead_ms_p50": round(atom_ms, 3),
        "full_overhead_ms_p50": round(full_ms, 3),
        "atom_prompt_tokens": atom_tokens,
        "full_prompt_tokens": full_tokens,
        "atom_tokens_ratio": round(atom_tokens / full_tokens, 4),
        "atom_llm_calls": len(atom.llm_calls),
        "full_llm_calls": len(full.llm_calls),
        "sample_levels": {
            level: {
                "requests": entry["requests"],
                "mean_prompt_tokens": round(statistics.fmean(entry["prompt_tokens"]), 1),  # type: ignore[arg-type]
            }
            for level, entry in sorted(per_level.items())
        },
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=51, help="timed runs per path")
    args = parser.parse_args()
    print(json.dumps(aio.run(main(args.runs))))
