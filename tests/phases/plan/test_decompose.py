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
from automatos.phases.plan.decompose import (
    Decomposition,
    covering_parser,
    decomposition_messages,
    parse_plan,
)
from automatos.phases.plan.shape import shape_of
from automatos.settings import PlanLimits
from automatos.testing import Fault, Rule, ScriptedLLM
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
        "negotiate",
        "coordinate",
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


async def test_a_model_too_small_to_plan_gets_the_requests_own_structure() -> None:
    settings = fast_settings()
    settings.llm.profile.plans_freely = False
    llm = ScriptedLLM(rules=[Rule("^Request:", Fault.malformed_json())], default="done")
    result = await Engine(settings, llm=llm).run(
        "Describe PostgreSQL, Redis and SQLite, then compare them."
    )
    assert result.status is WorkflowStatus.SUCCEEDED
    assert result.plan.layers == (
        ("describe_postgresql", "describe_redis", "describe_sqlite"),
        ("compare",),
    )
    assert [s.description for s in result.plan.subtasks] == [
        "Describe PostgreSQL",
        "Describe Redis",
        "Describe SQLite",
        "Compare them",
    ]
    assert "decompose" not in [c.stage for c in result.llm_calls]
    assert result.stages[0] == "decompose"


async def test_a_capable_model_is_told_the_deliverables() -> None:
    answer = plan_json(
        {"id": "flights", "description": "find flights"},
        {"id": "hotels", "description": "suggest hotels"},
        {"id": "budget", "description": "estimate", "depends_on": ["flights", "hotels"]},
    )
    llm = ScriptedLLM(rules=[Rule("^Request:", answer)], default="done")
    request = "Find flights to Lisbon, suggest hotels near the sea, then estimate the total cost."
    result = await Engine(fast_settings(), llm=llm).run(request)
    assert result.status is WorkflowStatus.SUCCEEDED
    prompt = llm.calls[0].messages[-1].content
    assert prompt.startswith(f"Request:\n{request}\n\nThe request has 3 separate deliverables")
    assert "1. Find flights to Lisbon\n2. Suggest hotels near the sea\n" in prompt
    assert "3. Estimate the total cost (uses the results of 1, 2)" in prompt
    assert [c.stage for c in result.llm_calls].count("decompose") == 1


def test_one_deliverable_gets_no_guidance() -> None:
    shape = shape_of("write a haiku about graphs")
    messages = decomposition_messages("write a haiku about graphs", PlanLimits(), shape)
    assert messages[-1].content == "Request:\nwrite a haiku about graphs"


async def test_a_plan_with_fewer_subtasks_than_deliverables_goes_back_once() -> None:
    short = plan_json({"id": "all", "description": "do everything"})
    full = plan_json(
        {"id": "a", "description": "research solar panels"},
        {"id": "b", "description": "research heat pumps"},
        {"id": "c", "description": "compare", "depends_on": ["a", "b"]},
    )
    llm = ScriptedLLM([short, full], default="done")
    result = await Engine(fast_settings(), llm=llm).run(
        "Research solar panels. Research heat pumps. Then compare them."
    )
    assert result.plan.layers == (("a", "b"), ("c",))
    repair = llm.calls[1].messages[-1].content
    assert "the plan has 1 subtask(s) but the request has 3 separate deliverables" in repair


def test_a_repaired_plan_is_taken_even_if_it_is_still_short() -> None:
    parse = covering_parser(shape_of("Research A. Research B. Then compare them."), PlanLimits())
    short = plan_json({"id": "all", "description": "do everything"})
    with pytest.raises(ValueError, match="3 separate deliverables"):
        parse(short)
    assert [s.id for s in parse(short).subtasks] == ["all"]


def test_a_plan_repaired_for_another_fault_is_not_sent_back_for_its_length() -> None:
    parse = covering_parser(shape_of("Research A. Research B. Then compare them."), PlanLimits())
    cyclic = plan_json(
        {"id": "a", "description": "x", "depends_on": ["b"]},
        {"id": "b", "description": "y", "depends_on": ["a"]},
    )
    with pytest.raises(CycleError):
        parse(cyclic)
    assert [s.id for s in parse(plan_json({"id": "all", "description": "z"})).subtasks] == ["all"]
