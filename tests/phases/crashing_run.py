"""A 30-subtask workflow to kill and resume (tests/phases/test_resume.py).

Run as ``python -m tests.phases.crashing_run TARGET WORKFLOW_ID CALLS_FILE [QUEUE]``: it runs
the workflow on the store ``TARGET`` (``StoreTarget.as_json()``) with a scripted model whose
step calls take :data:`STEP_S`, appending one line per model call to ``CALLS_FILE`` (the
subtask's id, or ``-`` for a call that is not a step), until it is killed (or, stopped
with SIGSTOP while another process resumed its run, it finds its run taken over when it goes
on: it prints ``taken over`` and exits with :data:`TAKEN_OVER`). With ``QUEUE``, its
steps run on ``automatos worker`` processes of that queue (their model:
:func:`worker_model`), and ``CALLS_FILE`` logs only the orchestrator's own calls. The test
runs the same script in its own process, so both share :func:`scripted_model` and
:func:`settings_for`.

The plan: five chains of five steps (``a1`` … ``e5``), a fan-in ``merge`` of the chains'
ends, a chain ``review1`` … ``review3`` after it, and an independent ``appendix``; two sinks,
so the answer is a synthesis. A step's answer says which of its dependencies' outputs and
which of its ancestors' findings its prompt quoted: a resumed run whose dependents did not
see what was stored before answers differently from an uninterrupted one.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from automatos import Engine, Settings
from automatos.domain.agent import DEFAULT_AGENT
from automatos.domain.level import Level
from automatos.domain.request import WorkflowRequest
from automatos.errors import RunTakenOverError
from automatos.llm.base import Message
from automatos.settings import (
    ContextSettings,
    ExecutionSettings,
    LLMSettings,
    MemorySettings,
    PlanLimits,
    RunnerSettings,
    StoreSettings,
)
from automatos.store.sql import SqlStore
from automatos.testing import Rule, ScriptedLLM
from tests.conftest import plan_json, step_of

STEP_S = 0.2
"""How long a step's model call takes."""
TAKEN_OVER = 3
"""The exit code of a run that another process took over."""
REQUEST = "Write a report on five topics, merged, reviewed three times, with an appendix"

CHAINS = "abcde"
STEPS: list[dict[str, Any]] = [
    {
        "id": f"{chain}{i}",
        "description": f"Work on topic {chain}, part {i}",
        **({"depends_on": [f"{chain}{i - 1}"]} if i > 1 else {}),
    }
    for chain in CHAINS
    for i in range(1, 6)
]
STEPS += [
    {"id": "merge", "description": "Merge the topics", "depends_on": [f"{c}5" for c in CHAINS]},
    {"id": "review1", "description": "Review the merge", "depends_on": ["merge"]},
    {"id": "review2", "description": "Review the review", "depends_on": ["review1"]},
    {"id": "review3", "description": "Review it a last time", "depends_on": ["review2"]},
    {"id": "appendix", "description": "Write an appendix"},
]
DEPENDS = {s["id"]: tuple(s.get("depends_on", ())) for s in STEPS}
SHARING = {"a2", "b3", "c1", "merge"}
"""Steps whose answers share a finding."""


def ancestors(sid: str) -> set[str]:
    """Every step ``sid`` depends on, directly or not."""
    found: set[str] = set()
    queue = list(DEPENDS[sid])
    while queue:
        dep = queue.pop()
        if dep not in found:
            found.add(dep)
            queue.extend(DEPENDS[dep])
    return found


def answer(messages: Sequence[Message]) -> str:
    """A step's answer: what its prompt quoted of its dependencies' outputs and of its
    ancestors' findings (the rest of what was shared depends on timing); a synthesis names
    what it was given."""
    prompt = messages[-1].content
    sid = step_of(messages)
    if not sid:
        return "synthesis " + hashlib.sha256(prompt.encode()).hexdigest()[:16]
    quoted = [d for d in DEPENDS[sid] if f"output of {d} " in prompt]
    seen = sorted(set(re.findall(r"fact of (\w+)", prompt)) & ancestors(sid))
    text = f"output of {sid} (quoted {','.join(quoted) or '-'}; findings {','.join(seen) or '-'})"
    if sid in SHARING:
        text += f"\n\nFindings:\n- FACT: fact of {sid} holds"
    return text


def scripted_model(calls: Path | None = None, step_s: float = STEP_S) -> ScriptedLLM:
    """The model of both processes: plans :data:`STEPS`, answers each step after ``step_s``
    seconds; each call is appended to ``calls`` (a subtask id, or ``-``) as it is made."""

    def latency(messages: Sequence[Message]) -> float:
        sid = step_of(messages)
        if calls is not None:
            with calls.open("a") as log:
                log.write(f"{sid or '-'}\n")
        return step_s if sid else 0.0

    def planning(prompt: str) -> bool:  # the synthesis's prompt starts with the request too
        return prompt.startswith("Request:") and "\nResults:\n" not in prompt

    return ScriptedLLM(rules=[Rule(planning, plan_json(*STEPS))], default=answer, latency=latency)


def settings_for(store: StoreSettings, queue: str | None = None) -> Settings:
    """The settings of both processes: the whole pipeline (Organ), no retrieval; with
    ``queue``, agent tasks go to the workers of that queue on the local Redis."""
    runner = (
        RunnerSettings(kind="queued", queue=queue, claim_after_s=1.0) if queue else RunnerSettings()
    )
    return Settings(
        llm=LLMSettings(timeout_s=30, max_retries=0),
        execution=ExecutionSettings(retry_backoff_s=0.001),
        store=store,
        plan=PlanLimits(level=Level.ORGAN),
        context=ContextSettings(enabled=False),
        memory=MemorySettings(enabled=False),
        runner=runner,
    )


def worker_model(settings: Settings) -> ScriptedLLM:
    """The model of ``automatos worker --provider tests.phases.crashing_run:worker_model``:
    the same script, logging its calls to the file ``CRASHING_RUN_CALLS`` names."""
    return scripted_model(Path(os.environ["CRASHING_RUN_CALLS"]))


async def one_agent(store: SqlStore) -> None:
    """Register the generalist alone: no agent choice or negotiation (no model call)."""
    await store.save_agents([DEFAULT_AGENT])


async def main(
    target: dict[str, Any], workflow_id: str, calls: Path, queue: str | None = None
) -> None:
    settings = settings_for(StoreSettings.model_validate(target["settings"]), queue)
    store = await SqlStore.open(settings.store, **target["options"])
    await one_agent(store)
    engine = Engine(settings, llm=scripted_model(calls), store=store)
    try:
        await engine.run(WorkflowRequest(text=REQUEST, workflow_id=workflow_id))
    except RunTakenOverError as exc:
        print(f"taken over: {exc}", flush=True)
        await store.aclose()
        sys.exit(TAKEN_OVER)
    print("finished", flush=True)  # the test kills this process before


if __name__ == "__main__":
    queue = sys.argv[4] if len(sys.argv) > 4 else None
    asyncio.run(main(json.loads(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), queue))
