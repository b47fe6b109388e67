"""Stage 6: metrics move by EMA (α = 0.1), are stored, and the next selection reads them."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest

from automatos import (
    AgentSpec,
    Engine,
    SubtaskResult,
    SubtaskSpec,
    SubtaskStatus,
    WorkflowRequest,
)
from automatos.domain.agent import AgentMetrics
from automatos.domain.plan import Subtask
from automatos.llm.base import Message
from automatos.phases.learn.metrics import update_metrics
from automatos.settings import StoreSettings
from automatos.store import OVERALL
from automatos.store.sql import SqlStore
from automatos.testing import ScriptedLLM
from tests.conftest import fast_settings


def test_one_ema_step() -> None:
    ok = SubtaskResult("a", SubtaskStatus.SUCCEEDED, latency_s=2.0, cost_usd=0.01)
    first = update_metrics(AgentMetrics(), ok, quality=1.0)
    assert first.success_rate == pytest.approx(0.55)
    assert first.avg_quality == pytest.approx(0.55)
    assert (first.avg_latency_s, first.avg_cost_usd, first.total_executions) == (2.0, 0.01, 1)
    failed = SubtaskResult("a", SubtaskStatus.FAILED, latency_s=4.0)
    second = update_metrics(first, failed, quality=None)
    assert second.success_rate == pytest.approx(0.495)
    assert second.avg_quality == pytest.approx(0.495)
    assert second.avg_latency_s == pytest.approx(2.2)
    assert second.total_executions == 2
    assert first.total_executions == 1  # the input is not changed


class ByAgent:
    """Scores an output by the agent that wrote it (the agents' system prompts differ)."""

    async def score(self, request: str, subtask: Subtask, output: str) -> float:
        return 0.9 if output.startswith("good") else 0.1


def writes_by_agent(messages: Sequence[Message]) -> str:
    return "good work" if "You are Ada" in messages[0].content else "poor work"


async def test_the_loop_closes(tmp_path: Path) -> None:
    store = await SqlStore.open(StoreSettings(data_dir=tmp_path))
    ada = AgentSpec(name="ada", description="writes reports", system_prompt="You are Ada.")
    bob = AgentSpec(name="bob", description="writes reports", system_prompt="You are Bob.")
    for agent in (ada, bob):
        await store.save_agent(agent)
    settings = fast_settings()
    settings.selection.use_llm = False
    settings.selection.jitter = 0.0  # equal but for what was learned
    engine = Engine(
        settings, llm=ScriptedLLM(default=writes_by_agent), store=store, scorer=ByAgent()
    )
    for agent in ("ada", "bob"):
        request = WorkflowRequest(
            text="r", subtasks=(SubtaskSpec(id="s", description="write a report", agent=agent),)
        )
        await engine.run(request)
    metrics = await store.agent_metrics()
    assert metrics["ada"][OVERALL].avg_quality == pytest.approx(0.54)
    assert metrics["bob"][OVERALL].avg_quality == pytest.approx(0.46)
    assert metrics["ada"]["writing"].total_executions == 1
    chosen = await engine.run(
        WorkflowRequest(text="r", subtasks=(SubtaskSpec(id="s", description="write a report"),))
    )
    assert chosen.assignments[0].agent == "ada"
    await store.aclose()


async def test_runs_that_overlap_both_count(tmp_path: Path) -> None:
    # Both runs select the writer before either has learned; the slow one learns last and
    # must build on what the quick one stored, not on what it saw when it began.
    store = await SqlStore.open(StoreSettings(data_dir=tmp_path))
    llm = ScriptedLLM(default="done", latency=lambda m: 0.3 if "slow" in m[-1].content else 0.0)

    def request(text: str) -> WorkflowRequest:
        step = SubtaskSpec(id="only", description=f"write a report ({text})")
        return WorkflowRequest(text=text, subtasks=(step,))

    settings = fast_settings()
    settings.selection.use_llm = False
    settings.selection.seed = 7  # the same snapshot and seed: both runs pick the same agent
    engine = Engine(settings, llm=llm, store=store)
    first = await engine.run(request("first"))  # so that both runs see metrics when selecting
    slow, quick = await asyncio.gather(engine.run(request("slow")), engine.run(request("quick")))
    agent = first.assignments[0].agent
    assert slow.assignments[0].agent == quick.assignments[0].agent == agent
    assert (await store.agent_metrics())[agent][OVERALL].total_executions == 3
    await store.aclose()
