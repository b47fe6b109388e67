"""Stage 2: the prompt carries the learned signals; the score decides when the model cannot."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from automatos import AgentSpec, Engine, SubtaskSpec, WorkflowRequest
from automatos.domain.agent import AgentMetrics
from automatos.phases.plan.scoring import (
    Profile,
    capability_match,
    learned,
    score_agent,
    subtask_words,
    task_type,
)
from automatos.settings import StoreSettings
from automatos.store import OVERALL
from automatos.store.sql import SqlStore
from automatos.testing import Fault, Rule, ScriptedLLM
from tests.conftest import fast_settings

SELECT = r"assign the best agent"
RESEARCHER = AgentSpec(name="researcher", description="finds facts", capabilities=("research",))
CODER = AgentSpec(name="coder", description="writes code", capabilities=("code", "python"))


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlStore]:
    s = await SqlStore.open(StoreSettings(data_dir=tmp_path))
    for agent in (RESEARCHER, CODER):
        await s.save_agent(agent)
    yield s
    await s.aclose()


def request(*subtasks: SubtaskSpec) -> WorkflowRequest:
    return WorkflowRequest(text="r", subtasks=subtasks)


def selector(reply: object) -> Rule:
    """Answers the selection call (matched on its system prompt via the user text)."""
    return Rule(lambda prompt: prompt.startswith("Subtasks:"), reply)  # type: ignore[arg-type]


async def test_the_prompt_carries_every_learned_signal(store: SqlStore) -> None:
    await store.save_metrics({"researcher": {OVERALL: AgentMetrics(0.93, 0.81, 4.25, 0.0123, 17)}})
    answer = {
        "assignments": [
            {"subtask_id": "a", "agent": "researcher", "confidence": 0.9, "reason": "fits"}
        ]
    }
    llm = ScriptedLLM(rules=[selector(json.dumps(answer))], default="done")
    result = await Engine(fast_settings(), llm=llm, store=store).run(
        request(SubtaskSpec(id="a", description="research the market"))
    )
    prompt = next(c.messages for c in llm.calls if c.messages[-1].content.startswith("Subtasks:"))
    text = prompt[-1].content
    for signal in (
        "success_rate 0.93",
        "avg_quality 0.81",
        "avg_latency_s 4.25",
        "total_executions 17",
        "avg_cost_usd 0.0123",
    ):
        assert signal in text
    assert "- a (research): research the market" in text
    assert "coder: writes code [capabilities: code, python]" in text
    assert result.assignments[0].agent == "researcher"
    assert result.assignments[0].reason.startswith("model (0.90): fits")


@pytest.mark.parametrize(
    "reply",
    [
        json.dumps(
            {
                "assignments": [
                    {"subtask_id": "a", "agent": "coder", "confidence": 0.1, "reason": "guess"}
                ]
            }
        ),
        json.dumps({"assignments": [{"subtask_id": "a", "agent": "ghost", "confidence": 1}]}),
        Fault.server_error(),
    ],
    ids=["unsure", "unknown agent", "call fails"],
)
async def test_the_score_decides_when_the_model_cannot(store: SqlStore, reply: object) -> None:
    settings = fast_settings()
    settings.llm.max_retries = 0
    llm = ScriptedLLM(rules=[selector(reply)], default="done")
    result = await Engine(settings, llm=llm, store=store).run(
        request(SubtaskSpec(id="a", description="debug the python api code"))
    )
    assignment = result.assignments[0]
    assert assignment.agent == "coder"  # capability decides between equal newcomers
    assert "score" in assignment.reason


async def test_pre_assigned_agents_are_kept_and_not_asked_about(store: SqlStore) -> None:
    llm = ScriptedLLM(default="done")
    result = await Engine(fast_settings(), llm=llm, store=store).run(
        request(SubtaskSpec(id="a", description="debug the code", agent="researcher"))
    )
    assert result.assignments[0].agent == "researcher"
    assert not any(c.messages[-1].content.startswith("Subtasks:") for c in llm.calls)


def test_the_score_weighs_what_was_learned() -> None:
    from automatos.domain.plan import GraphMetadata, Subtask

    graph = GraphMetadata(0, 1, (), (), 0.0, 0.0, True)
    subtask = Subtask("s", "survey the sources", (), False, 2, "", None, graph)
    kind = task_type(subtask.description)
    assert kind == "research"
    wanted = subtask_words(subtask)
    researcher, coder = Profile.of(RESEARCHER), Profile.of(CODER)
    assert capability_match(wanted, researcher, kind) > capability_match(wanted, coder, kind)

    def score(metrics: AgentMetrics, **kw: float) -> float:
        options = {"load": 0, "capacity": 1, "cost": 0.0, "max_cost": 0.0} | kw
        return score_agent(wanted, CODER, coder, metrics, kind, **options).total  # type: ignore[arg-type]

    assert score(AgentMetrics(1.0, 1.0)) - score(AgentMetrics(0.0, 0.0)) == pytest.approx(0.3)
    busy = score_agent(
        wanted, CODER, coder, AgentMetrics(), kind, load=1, capacity=1, cost=1, max_cost=1
    )
    assert busy.availability == 0 and busy.cost_efficiency == 0
    fresh = score(AgentMetrics(), exploration=0.2)
    tried = score(AgentMetrics(total_executions=3), exploration=0.2)
    assert fresh - tried == pytest.approx(0.2 - 0.1)
    typed = {
        OVERALL: AgentMetrics(0.5, 0.5, total_executions=9),
        "research": AgentMetrics(0.9, 0.9, total_executions=3),
    }
    assert learned(typed, "research", 3).avg_quality == 0.9
    assert learned(typed, "code", 3).avg_quality == 0.5
    assert learned(None, "code", 3) == AgentMetrics()


async def test_a_large_plan_is_assigned_in_batches_and_a_failed_batch_falls_back_alone(
    store: SqlStore,
) -> None:
    # 7 subtasks in batches of 3: three calls, each about its own subtasks only. The batch
    # holding "s3" gets broken JSON twice; the score assigns those three, the model the rest.
    def answer(prompt: str) -> str:
        ids = [line[2:].split(" ", 1)[0] for line in prompt.splitlines() if line.startswith("- s")]
        if "s3" in ids:
            return '{"assignments": [{"subtask_'
        return json.dumps(
            {
                "assignments": [
                    {"subtask_id": sid, "agent": "researcher", "confidence": 0.9, "reason": "ok"}
                    for sid in ids
                ]
            }
        )

    settings = fast_settings()
    settings.selection.batch_size = 3
    llm = ScriptedLLM(
        rules=[Rule(lambda p: p.startswith("Subtasks:"), lambda m: answer(m[-1].content))],
        default="done",
    )
    specs = [SubtaskSpec(id=f"s{i}", description="debug the python code") for i in range(7)]
    result = await Engine(settings, llm=llm, store=store).run(request(*specs))
    prompts = [c.messages[1].content for c in llm.calls if c.messages[1].content.startswith("Sub")]
    listed = [[line[2:4] for line in p.splitlines() if line.startswith("- s")] for p in prompts]
    assert sorted(map(tuple, listed)) == [
        ("s0", "s1", "s2"),
        ("s3", "s4", "s5"),
        ("s3", "s4", "s5"),  # the repair attempt of the broken batch
        ("s6",),
    ]
    by_id = {a.subtask_id: a for a in result.assignments}
    for sid in ("s0", "s1", "s2", "s6"):
        assert by_id[sid].agent == "researcher" and by_id[sid].reason.startswith("model")
    for sid in ("s3", "s4", "s5"):
        assert "selection call failed" in by_id[sid].reason
        assert by_id[sid].agent == "coder"  # the score: capability fits python code
    assert len([c for c in result.llm_calls if c.stage == "select_agents"]) == 4


@pytest.mark.parametrize(("use_llm", "asked"), [(None, False), (True, True)])
async def test_a_model_too_small_to_plan_freely_is_not_asked_by_default(
    store: SqlStore, use_llm: bool | None, asked: bool
) -> None:
    settings = fast_settings()
    settings.llm.profile.chooses_agents = False  # what the embedded model says
    settings.selection.use_llm = use_llm
    llm = ScriptedLLM(default="done")
    result = await Engine(settings, llm=llm, store=store).run(
        request(SubtaskSpec(id="a", description="debug the python code"))
    )
    prompts = [c.messages[-1].content for c in llm.calls]
    assert any(p.startswith("Subtasks:") for p in prompts) is asked
    assert result.assignments[0].agent == "coder"
