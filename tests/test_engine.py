import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from automatos import (
    AgentSpec,
    ConfigurationError,
    Engine,
    Event,
    InvalidRequestError,
    PlanParseError,
    StageStarted,
    StoreError,
    SubtaskSpec,
    WorkflowFinished,
    WorkflowRequest,
    WorkflowResult,
    WorkflowStarted,
    WorkflowStatus,
    event_to_dict,
)
from automatos.settings import ModelPrice, StoreSettings
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
    assert stages == [
        "decompose",
        "select_agents",
        "negotiate",
        "coordinate",
        "execute",
        "aggregate",
        "assess",
        "respond",
    ]
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


async def test_the_stream_gives_the_result_when_its_events_end(engine: Engine) -> None:
    stream = engine.stream("research and write")
    with pytest.raises(RuntimeError, match="once its stream has ended"):
        _ = stream.result
    events = [e async for e in stream]
    assert isinstance(events[-1], WorkflowFinished)
    assert stream.result.status is WorkflowStatus.SUCCEEDED
    assert stream.result.final_answer == "out:d"
    assert stream.result.workflow_id == events[0].workflow_id


@pytest.mark.parametrize(
    ("request_text", "error"),
    [("", "at least 1 character"), ("x" * 101, "plan.max_request_chars")],
)
async def test_the_stream_raises_a_failure_before_the_first_event(
    request_text: str, error: str, caplog: pytest.LogCaptureFixture
) -> None:
    # It hung before: nothing ever put workflow_finished on its queue.
    settings = fast_settings()
    settings.plan.max_request_chars = 100
    engine = Engine(settings, llm=ScriptedLLM(default="x"))
    seen: list[Event] = []

    async def consume() -> None:
        async with engine.stream(request_text) as stream:
            async for event in stream:
                seen.append(event)

    with pytest.raises(InvalidRequestError, match=error):
        await asyncio.wait_for(consume(), 5)
    assert seen == []
    assert "never retrieved" not in caplog.text


async def test_the_stream_raises_when_the_store_cannot_be_opened(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    settings = fast_settings()
    settings.store = StoreSettings(data_dir=blocker / "data")
    engine = Engine(settings, llm=ScriptedLLM(default="x"))
    with pytest.raises(StoreError, match="store"):
        await asyncio.wait_for(_drain(engine.stream("hello")), 5)


async def _drain(stream: AsyncIterator[Event]) -> None:
    async for _ in stream:
        pass


async def test_a_slow_reader_slows_the_stream_instead_of_growing_its_buffer() -> None:
    n = 200
    request = WorkflowRequest(
        text="r", subtasks=tuple(SubtaskSpec(id=f"s{i}", description="x") for i in range(n))
    )
    settings = fast_settings(max_concurrency=4)
    settings.plan.max_subtasks = n
    engine = Engine(settings, llm=ScriptedLLM(default="ok"))
    stream = engine.stream(request, max_buffered=10)
    deepest = 0
    count = 0
    async for _ in stream:
        deepest = max(deepest, len(stream._buffer))
        count += 1
        await asyncio.sleep(0.0005)  # a reader slower than the scripted model
    assert count > 2 * n  # started and finished, for each
    # The bound, plus what the subtasks already running emit (two events each, finishing).
    assert deepest <= 10 + 2 * 4 + 4
    assert stream.result.status is WorkflowStatus.SUCCEEDED


async def test_an_async_subscriber_is_dropped_with_a_warning() -> None:
    async def on_event(event: Event) -> None:  # would never run: nothing awaits it
        raise AssertionError("unreachable")

    result = await Engine(fast_settings(), llm=ScriptedLLM(default="ok")).run(
        WorkflowRequest(text="r", subtasks=(SubtaskSpec(id="a", description="x"),)),
        on_event=on_event,
    )
    assert result.status is WorkflowStatus.SUCCEEDED
    [warning] = result.warnings
    assert "returned a coroutine" in warning


async def test_a_subscriber_raising_a_base_exception_is_dropped() -> None:
    def on_event(event: Event) -> None:
        raise GeneratorExit

    result = await Engine(fast_settings(), llm=ScriptedLLM(default="ok")).run(
        WorkflowRequest(text="r", subtasks=(SubtaskSpec(id="a", description="x"),)),
        on_event=on_event,
    )
    assert result.status is WorkflowStatus.SUCCEEDED
    assert "GeneratorExit" in result.warnings[0]


async def test_a_model_without_a_price_makes_the_cost_unknown() -> None:
    llm = ScriptedLLM(default="ok", free=False, model="mystery-model")
    result = await Engine(fast_settings(), llm=llm).run(
        WorkflowRequest(text="r", subtasks=(SubtaskSpec(id="a", description="x"),))
    )
    assert result.totals.unpriced_models == ("mystery-model",)
    assert not result.totals.cost_known
    assert all(not c.priced for c in result.llm_calls)


async def test_a_dollar_budget_with_an_unpriced_model_is_refused_at_the_start() -> None:
    llm = ScriptedLLM(default="ok", free=False, model="mystery-model")
    settings = fast_settings(budget_usd=1.0)
    settings.llm.model = "mystery-model"
    with pytest.raises(ConfigurationError, match="mystery-model"):
        await Engine(settings, llm=llm).run("hello")
    assert llm.calls == []
    settings.llm.prices["mystery-model"] = ModelPrice(input_per_mtok=1, output_per_mtok=2)
    result = await Engine(settings, llm=llm).run(
        WorkflowRequest(text="r", subtasks=(SubtaskSpec(id="a", description="x"),))
    )
    assert result.totals.cost_known and result.totals.cost_usd > 0


async def test_the_synthesis_is_skipped_when_the_budget_has_no_room_for_it() -> None:
    llm = ScriptedLLM(default="z" * 400)
    request = WorkflowRequest(
        text="r",
        subtasks=(SubtaskSpec(id="a", description="x"), SubtaskSpec(id="b", description="y")),
        budget_tokens=400,
    )
    result = await Engine(fast_settings(max_concurrency=2), llm=llm).run(request)
    assert result.status is WorkflowStatus.SUCCEEDED
    assert [c.stage for c in result.llm_calls] == ["execute", "execute"]
    assert result.final_answer == f"## a\n{'z' * 400}\n\n## b\n{'z' * 400}"
    assert any("no room for the synthesis" in w for w in result.warnings)
