"""Hostile decomposer answers: every one ends repaired or in a typed error naming the problem.

The decomposer's answer is model output, so anything can come back: broken or truncated JSON,
wrong types, missing fields, duplicate ids, self-loops, cycles of any length, dangling
dependencies, thousands of subtasks, megabytes of text, deep nesting, NaN. The property test
draws a first answer and a repair answer from all of these and checks that the stage either
produces a valid plan or raises one of the plan errors; the table tests pin which error each
kind of answer gets.
"""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from automatos import (
    CycleError,
    DanglingDependencyError,
    DuplicateSubtaskError,
    PlanError,
    PlanLimitError,
    PlanParseError,
    SelfDependencyError,
    WorkflowRequest,
)
from automatos.phases.events import EventBus
from automatos.phases.plan.decompose import DecomposeStage
from automatos.phases.state import Runtime, WorkflowState
from automatos.runners.local import LocalTaskRunner
from automatos.testing import ScriptedLLM
from tests.conftest import fast_settings

TYPED = (
    PlanParseError,
    PlanLimitError,
    DuplicateSubtaskError,
    DanglingDependencyError,
    SelfDependencyError,
    CycleError,
    PlanError,
)
SETTINGS = fast_settings()

ids = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_0123456789", min_size=1, max_size=12)


def subtask(sid: str, deps: list[str]) -> dict[str, Any]:
    return {"id": sid, "description": f"do {sid}", "depends_on": deps}


@st.composite
def valid_plans(draw: st.DrawFn) -> dict[str, Any]:
    names = draw(st.lists(ids, min_size=1, max_size=12, unique=True))
    subtasks = []
    for i, name in enumerate(names):
        deps = draw(st.lists(st.sampled_from(names[:i]), max_size=3, unique=True)) if i else []
        subtasks.append(subtask(name, deps))
    return {"subtasks": subtasks}


@st.composite
def cyclic_plans(draw: st.DrawFn) -> dict[str, Any]:
    length = draw(st.integers(2, 50))
    ring = [f"c{i}" for i in range(length)]
    tasks = [subtask(ring[i], [ring[i - 1]]) for i in range(length)]
    tasks += draw(valid_plans())["subtasks"]
    return {"subtasks": draw(st.permutations(tasks))}


@st.composite
def broken_plans(draw: st.DrawFn) -> dict[str, Any]:
    plan = draw(valid_plans())
    tasks = plan["subtasks"]
    victim = draw(st.integers(0, len(tasks) - 1))
    kind = draw(st.sampled_from(["duplicate", "self", "dangling", "missing", "wrong_type", "nan"]))
    if kind == "duplicate":
        tasks.append(dict(tasks[victim]))
    elif kind == "self":
        tasks[victim]["depends_on"] = [*tasks[victim]["depends_on"], tasks[victim]["id"]]
    elif kind == "dangling":
        tasks[victim]["depends_on"] = [*tasks[victim]["depends_on"], "ghost-" + tasks[victim]["id"]]
    elif kind == "missing":
        tasks[victim].pop(draw(st.sampled_from(["id", "description"])))
    elif kind == "wrong_type":
        key = draw(st.sampled_from(["id", "description", "depends_on", "complexity"]))
        wrong: list[Any] = [None, 42, 3.5, {"a": 1}, [1, 2]]
        if key == "complexity":  # a string is a valid id or description
            wrong.append("high")
        tasks[victim][key] = draw(st.sampled_from(wrong))
    else:
        tasks[victim]["complexity"] = float("nan")
    return plan


def huge_plan(n: int) -> dict[str, Any]:
    return {"subtasks": [subtask(f"s{i}", [f"s{i - 1}"] if i else []) for i in range(n)]}


def nested(depth: int) -> str:
    return '{"subtasks": ' + "[" * depth + "]" * depth + "}"


def as_text(plan: dict[str, Any]) -> str:
    return json.dumps(plan, allow_nan=True)


answers = st.one_of(
    valid_plans().map(as_text),
    cyclic_plans().map(as_text),
    broken_plans().map(as_text),
    valid_plans().map(as_text).flatmap(lambda t: st.integers(0, len(t) - 1).map(lambda i: t[:i])),
    st.text(max_size=300),
    st.sampled_from(
        [
            "",
            "null",
            "[]",
            "{}",
            '{"subtasks": []}',
            '{"subtasks": {}}',
            "NaN",
            '{"subtasks": [null]}',
            '{"subtasks": "a,b"}',
            "```json\n```",
        ]
    ),
    st.integers(1_000, 3_000).map(lambda n: as_text(huge_plan(n))),
    st.integers(100, 20_000).map(nested),
    st.just(as_text({"subtasks": [{"id": "a", "description": "x" * 10_000_000}]})),
    st.just("x" * 10_000_000),
)


def run_stage(first: str, second: str) -> WorkflowState:
    llm = ScriptedLLM([first, second])
    state = WorkflowState(
        request=WorkflowRequest(text="hostile"),
        runtime=Runtime(SETTINGS, llm, LocalTaskRunner(llm)),
        bus=EventBus("w"),
    )
    asyncio.run(DecomposeStage().run(state))
    return state


@settings(
    max_examples=320,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(first=answers, second=answers)
def test_every_hostile_answer_is_repaired_or_typed(first: str, second: str) -> None:
    outcome = outcome_of(first, second)
    if isinstance(outcome, Exception):
        assert isinstance(outcome, TYPED), f"untyped {type(outcome).__name__}: {outcome}"
        assert str(outcome), "a typed error must say what was wrong"
        if isinstance(outcome, CycleError):
            assert outcome.cycle[0] == outcome.cycle[-1]
            assert len(outcome.cycle) >= 3
        return
    plan = outcome.planning.plan
    assert plan is not None
    assert plan.subtasks
    assert len({s.id for s in plan.subtasks}) == len(plan.subtasks)


def outcome_of(first: str, second: str) -> WorkflowState | Exception:
    """The stage's state, or the exception it raised (of any kind, to be checked)."""
    try:
        return run_stage(first, second)
    except Exception as exc:
        return exc


@given(bad=st.one_of(broken_plans(), cyclic_plans()).map(as_text), good=valid_plans())
@settings(max_examples=60, deadline=None)
def test_one_repair_is_enough(bad: str, good: dict[str, Any]) -> None:
    state = run_stage(bad, as_text(good))
    assert state.planning.plan is not None
    assert [s.id for s in state.planning.plan.subtasks] == [t["id"] for t in good["subtasks"]]


CASES: list[tuple[str, str, type[Exception]]] = [
    ("truncated", '{"subtasks": [{"id": "a", "descr', PlanParseError),
    ("not json", "I think you should first research, then write.", PlanParseError),
    ("wrong type", '{"subtasks": [{"id": 7, "description": "x"}]}', PlanParseError),
    ("missing field", '{"subtasks": [{"id": "a"}]}', PlanParseError),
    ("empty list", '{"subtasks": []}', PlanParseError),
    ("nan", '{"subtasks": [{"id": "a", "description": "x", "complexity": NaN}]}', PlanParseError),
    ("deep nesting", nested(50_000), PlanParseError),
    (
        "duplicate",
        as_text({"subtasks": [subtask("a", []), subtask("a", [])]}),
        DuplicateSubtaskError,
    ),
    ("self loop", as_text({"subtasks": [subtask("a", ["a"])]}), SelfDependencyError),
    ("dangling", as_text({"subtasks": [subtask("a", ["b"])]}), DanglingDependencyError),
    ("cycle", as_text({"subtasks": [subtask("a", ["b"]), subtask("b", ["a"])]}), CycleError),
    ("thousands", as_text(huge_plan(5_000)), PlanLimitError),
    (
        "10 MB field",
        as_text({"subtasks": [{"id": "a", "description": "x" * 10_000_000}]}),
        PlanLimitError,
    ),
    ("10 MB text", "y" * 10_000_000, PlanLimitError),
]


@pytest.mark.parametrize(("name", "answer", "error"), CASES, ids=[c[0] for c in CASES])
def test_each_kind_gets_its_error(name: str, answer: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        run_stage(answer, answer)


def test_a_long_cycle_is_named_in_full() -> None:
    ring = [f"n{i:02d}" for i in range(50)]
    tasks = [subtask(ring[i], [ring[i - 1]]) for i in range(50)]
    random.Random(3).shuffle(tasks)
    with pytest.raises(CycleError) as info:
        run_stage(as_text({"subtasks": tasks}), as_text({"subtasks": tasks}))
    assert info.value.cycle == [*ring, ring[0]]
