"""Does selection learn? Two agents with the same description, one good and one poor.

50 seeded runs of the same kind of task (one subtask each) go through the whole engine with
a SQLite store: stage 2 selects, stage 4 runs, a scorer scores the output, stage 6 updates the
agents' metrics, and the next run's selection reads them. The figure is the good agent's
share of selections in the first 10 runs and in the 40 after.

Quality comes from the engine's own evaluation stage (the heuristic scorer of stage 7): the
good agent writes a complete, on-topic paragraph, the poor one a fragment about something
else. Two selection paths are measured:
``score``, where the model answers that it is unsure and the multi-dimensional score decides
(the engine's own logic), and ``llm``, where a scripted model picks the candidate whose
measured quality in the prompt is highest (exploring at random one time in five), which
shows the prompt carries what was learned. The last line of output is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

from automatos import AgentSpec, Engine, Settings, SubtaskSpec, WorkflowRequest, aio
from automatos.llm.base import Message
from automatos.settings import StoreSettings
from automatos.store.sql import SqlStore
from automatos.testing import Rule, ScriptedLLM

GOOD, POOR = "ada", "bob"
AGENTS = [
    AgentSpec(
        name=name,
        description="Writes short reports.",
        capabilities=("writing",),
        system_prompt=f"You are {name}.",
    )
    for name in (GOOD, POOR)
]
TASKS = [
    "write a short report on solar power",
    "write a short report on wind farms",
    "write a short report on heat pumps",
    "write a short report on batteries",
]


TOPIC = re.compile(r"report on ([a-z ]+)")


def write(messages: Sequence[Message]) -> str:
    found = TOPIC.search(messages[-1].content)
    topic = found.group(1) if found else "the subject"
    if f"You are {GOOD}." in messages[0].content:
        return (
            f"A short report on {topic}: {topic} has grown quickly over the last decade as "
            f"costs fell and capacity rose. The main advantages of {topic} are low running "
            f"costs and low emissions; the main drawbacks are upfront cost and dependence on "
            f"local conditions. Policy support and better storage will decide how fast {topic} "
            "spreads in the next ten years."
        )
    return "The weather was nice and the"


def signal_reader(rng: random.Random) -> Rule:
    """A selection model that reads avg_quality per candidate from the real prompt."""

    def choose(messages: Sequence[Message]) -> str:
        text = messages[-1].content
        quality = {
            name: float(q)
            for name, q in re.findall(r"- (\w+): .*\n  overall: .*?avg_quality ([0-9.]+)", text)
        }
        sid = re.search(r"^- (\S+) \(", text, re.MULTILINE)
        best = max(quality, key=lambda n: quality[n])
        if rng.random() < 0.2:
            best = rng.choice(sorted(quality))
        return json.dumps(
            {
                "assignments": [
                    {
                        "subtask_id": sid.group(1) if sid else "s",
                        "agent": best,
                        "confidence": 0.9,
                        "reason": "best",
                    }
                ]
            }
        )

    return Rule(lambda prompt: prompt.startswith("Subtasks:"), choose)


def unsure() -> Rule:
    reply = json.dumps(
        {
            "assignments": [
                {"subtask_id": "s", "agent": GOOD, "confidence": 0.1, "reason": "no idea"}
            ]
        }
    )
    return Rule(lambda prompt: prompt.startswith("Subtasks:"), reply)


async def run_mode(mode: str, runs: int, seed: int) -> list[str]:
    """The agent chosen in each run."""
    with tempfile.TemporaryDirectory() as tmp:
        store = await SqlStore.open(StoreSettings(data_dir=Path(tmp)))
        for agent in AGENTS:
            await store.save_agent(agent)
        rng = random.Random(seed)
        rule = signal_reader(rng) if mode == "llm" else unsure()
        chosen = []
        for i in range(runs):
            settings = Settings()
            settings.selection.seed = seed * 1000 + i
            engine = Engine(settings, llm=ScriptedLLM(rules=[rule], default=write), store=store)
            request = WorkflowRequest(
                text=TASKS[i % len(TASKS)],
                subtasks=(SubtaskSpec(id="s", description=TASKS[i % len(TASKS)]),),
            )
            result = await engine.run(request)
            chosen.append(result.assignments[0].agent)
        await store.aclose()
        return chosen


def shares(chosen: list[str]) -> dict[str, float]:
    first, after = chosen[:10], chosen[10:]
    return {
        "share_first_10": round(first.count(GOOD) / len(first), 3),
        "share_after_10": round(after.count(GOOD) / len(after), 3),
    }


async def main(runs: int, seeds: int) -> dict[str, object]:
    """Average the shares over ``seeds`` seeded series of ``runs`` runs, for both paths."""
    figures: dict[str, dict[str, float]] = {}
    for mode in ("score", "llm"):
        series = [shares(await run_mode(mode, runs, seed)) for seed in range(1, seeds + 1)]
        figures[mode] = {
            key: round(sum(s[key] for s in series) / len(series), 3) for key in series[0]
        }
    return {
        **figures["score"],
        "rise_points": round(
            100 * (figures["score"]["share_after_10"] - figures["score"]["share_first_10"]), 1
        ),
        "llm_path": figures["llm"],
        "setup": {
            "runs": runs,
            "seeds": seeds,
            "quality_source": "evaluation stage (heuristic scorer)",
            "primary_path": "score (model unsure)",
        },
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--seeds", type=int, default=10, help="series averaged")
    args = parser.parse_args()
    print(json.dumps(aio.run(main(args.runs, args.seeds))))
