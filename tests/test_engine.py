import json

import pytest

from automatos import (
    AgentSpec,
    Engine,
    Event,
    InvalidRequestError,
    PlanParseError,
    StageStarted,
    SubtaskSpec,
    WorkflowFinished,
    WorkflowRequest,
    WorkflowResult,
    WorkflowStarted,
    WorkflowStatus,
    event_to_dict,
)
from automatos.testing import ScriptedLLM
from tests.conftest import fast_settings


async def test_run_plans_executes_and_answers(engine: Engine) -> None:
    result = await engine.run("research and write")
    assert result.status is WorkflowStatus.SUCCEEDED
    assert [s.id for s in result.plan.subtasks] == ["a", "b", "c", "d"]
    assert result.plan.layers == (("a",), ("b", "c"), ("d",))
    assert result.final_answer == "out:d"
    assert {sid: r.output for sid, r in result.results.items()}["b"] == "out:b"
    again = WorkflowResult.model_validate_json(result.model_dump_json())
    assert again.results["c"].output == "out:c"


async def test_stream_yields_numbered_events_in_order(engine: Engine) -> None:
    events = [e async for e in engine.stream("research and write")]
    assert isinstance(events[0], WorkflowStarted)
    assert isinstance(events[-1], WorkflowFinished)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert len({e.workflow_id for e in events}) == 1
    stages = [e.stage for e in events if isinstance(e, StageStarted)]
    assert stages == ["decompose", "select_agents", "execute", "aggregate", "assess", "respond"]
    kinds = [event_to_dict(e)["kind"] for e in events]
    assert kinds.count("subtask_started") == 4
    assert kinds.count("subtask_finished") == 4
    json.dumps([event_to_dict(e) for e in events])


async def test_leaving_the_stream_early_cancels_the_workflow(engine: Engine) -> None:
    async for _ in engine.stream("research and write"):
        break


async def test_stream_raises_what_stopped_the_workflow() -> None:
    engine = Engine(fast_settings(), llm=ScriptedLLM(["not json", "still not json"]))
    seen: list[Event] = []

    async def consume() -> None:
        async for event in engine.stream("x"):
            seen.append(event)

    with pytest.raises(PlanParseError, match="plan is not valid"):
        await consume()
    assert isinstance(seen[-1], WorkflowFinished)
    assert seen[-1].status == "failed"


async def test_unknown_recipe_agents_are_named() -> None:
    request = WorkflowRequest(
        text="r", subtasks=(SubtaskSpec(id="a", description="x", agent="nobody"),)
    )
    with pytest.raises(InvalidRequestError, match="nobody"):
        await Engine(fast_settings(), llm=ScriptedLLM(default="x")).run(request)


async def test_requests_are_validated() -> None:
    with pytest.raises(ValueError, match="at least 1 character"):
        WorkflowRequest(text="")
    with pytest.raises(ValueError, match="surprise"):
        WorkflowRequest.model_validate({"text": "x", "surprise": True})
    with pytest.raises(ValueError, match="temperature"):
        AgentSpec(name="a", temperature=9)


async def test_an_oversized_request_is_refused() -> None:
    settings = fast_settings()
    settings.plan.max_request_chars = 10
    with pytest.raises(InvalidRequestError, match=r"plan\.max_request_chars"):
        await Engine(settings, llm=ScriptedLLM()).run("x" * 11)


async def test_the_engine_closes_what_it_opened() -> None:
    async with Engine(fast_settings(), llm=ScriptedLLM(default="x")) as engine:
        assert engine.runner is not None


async def test_a_subscriber_that_raises_is_dropped_with_a_warning_and_the_run_finishes() -> None:
    seen: list[str] = []

    def fragile(event: Event) -> None:
        seen.append(event.kind)
        if event.kind == "subtask_finished":
            raise ValueError("the display broke")

    request = WorkflowRequest(
        text="r",
        subtasks=(SubtaskSpec(id="a", description="x"), SubtaskSpec(id="b", description="y")),
    )
    result = await Engine(fast_settings(), llm=ScriptedLLM(default="ok")).run(
        request, on_event=fragile
    )
    assert result.status is WorkflowStatus.SUCCEEDED
    assert seen.count("subtask_finished") == 1  # dropped after its first failure
    assert seen[-1] == "subtask_finished"
    [warning] = result.warnings
    assert "fragile failed on subtask_finished" in warning
    assert "ValueError: the display broke" in warning
