import json

import pytest

from automatos import (
    CycleError,
    Engine,
    PlanLimitError,
    PlanParseError,
    StageFinished,
    WorkflowStatus,
)
from automatos.phases.plan.decompose import Decomposition, numbered_schema, parse_plan
from automatos.settings import PlanLimits
from automatos.testing import Rule, ScriptedLLM
from tests.conftest import fast_settings, plan_json


async def test_the_prompt_carries_the_request_and_the_schema() -> None:
    llm = ScriptedLLM(
        rules=[Rule("^Request:", plan_json({"id": "only", "description": "do it"}))],
        default="done",
    )
    result = await Engine(fast_settings(), llm=llm).run("write a haiku about graphs")
    assert result.status is WorkflowStatus.SUCCEEDED
    first = llm.calls[0]
    assert "write a haiku about graphs" in first.messages[-1].content
    assert "planner" in first.messages[0].content
    assert first.json_schema == Decomposition.model_json_schema()
    assert result.stages == (
        "decompose",
        "select_agents",
        "execute",
        "aggregate",
        "assess",
        "respond",
    )
    assert [c.stage for c in result.llm_calls] == ["decompose", "execute"]


def test_lenient_shapes_are_accepted() -> None:
    limits = PlanLimits()
    fenced = '```json\n{"subtasks": [{"id": "a", "description": "x", "extra": 1}]}\n```'
    assert parse_plan(fenced, limits).subtasks[0].id == "a"
    bare_list = (
        '[{"id": "a", "description": "x"}, {"id": "b", "description": "y", "depends_on": ["a"]}]'
    )
    assert parse_plan(bare_list, limits).layers == (("a",), ("b",))


def test_parse_errors_name_the_field() -> None:
    with pytest.raises(PlanParseError, match=r"subtasks\.0\.description"):
        parse_plan('{"subtasks": [{"id": "a"}]}', PlanLimits())
    with pytest.raises(PlanLimitError, match=r"plan\.max_plan_chars"):
        parse_plan("x" * 101, PlanLimits(max_plan_chars=100))


async def test_a_cycle_is_repaired_through_the_model() -> None:
    cyclic = plan_json(
        {"id": "a", "description": "x", "depends_on": ["b"]},
        {"id": "b", "description": "y", "depends_on": ["a"]},
    )
    fixed = plan_json(
        {"id": "a", "description": "x"}, {"id": "b", "description": "y", "depends_on": ["a"]}
    )
    llm = ScriptedLLM([cyclic, fixed], default="done")
    result = await Engine(fast_settings(), llm=llm).run("plan with a loop")
    assert result.status is WorkflowStatus.SUCCEEDED
    repair_prompt = llm.calls[1].messages[-1].content
    assert "dependency cycle" in repair_prompt
    assert "a -> b -> a" in repair_prompt


async def test_a_cycle_twice_is_a_typed_error_and_the_stage_says_so() -> None:
    cyclic = plan_json(
        {"id": "a", "description": "x", "depends_on": ["b"]},
        {"id": "b", "description": "y", "depends_on": ["a"]},
    )
    llm = ScriptedLLM([cyclic, cyclic])
    events: list[object] = []
    with pytest.raises(CycleError) as info:
        await Engine(fast_settings(), llm=llm).run("loop", on_event=events.append)
    assert info.value.cycle == ["a", "b", "a"]
    finished = [e for e in events if isinstance(e, StageFinished)]
    assert finished[-1].stage == "decompose"
    assert "CycleError" in (finished[-1].error or "")
    assert json.loads(cyclic)  # the answer itself was valid JSON: the graph check caught it


def test_numbered_schema_only_admits_valid_plans() -> None:
    schema = numbered_schema(2, 4)
    variants = schema["properties"]["subtasks"]["anyOf"]
    assert [v["minItems"] for v in variants] == [2, 3, 4]
    longest = variants[-1]["prefixItems"]
    assert [s["properties"]["id"]["const"] for s in longest] == [f"step_{i}" for i in range(1, 5)]
    assert longest[0]["properties"]["depends_on"] == {
        "type": "array",
        "items": {"type": "string"},
        "maxItems": 0,
    }
    assert longest[3]["properties"]["depends_on"]["items"]["enum"] == ["step_1", "step_2", "step_3"]
    assert all(s["properties"]["depends_on"].get("minItems", 0) == 1 for s in longest[1:])


async def test_numbered_plans_are_asked_for_when_configured() -> None:
    answer = plan_json(
        {"id": "step_1", "description": "x", "depends_on": []},
        {"id": "step_2", "description": "y", "depends_on": ["step_1"]},
    )
    settings = fast_settings()
    settings.llm.profile.plans_freely = False
    llm = ScriptedLLM([answer], default="done")
    result = await Engine(settings, llm=llm).run("r")
    assert result.plan.layers == (("step_1",), ("step_2",))
    assert llm.calls[0].json_schema == numbered_schema(2, 3)
    assert "step_1" in llm.calls[0].messages[0].content
