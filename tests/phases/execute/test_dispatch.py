"""Stage 4: ready-set dispatch, concurrency, timeouts, retries, failure isolation, cancellation."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence

import pytest

from automatos import (
    AgentSpec,
    Engine,
    Event,
    SubtaskFinished,
    SubtaskResult,
    SubtaskRetried,
    SubtaskSkipped,
    SubtaskSpec,
    SubtaskStarted,
    SubtaskStatus,
    WorkflowRequest,
    WorkflowStatus,
)
from automatos.deadlines import caller_timeout
from automatos.errors import ProviderRequestError, StageError
from automatos.llm.base import Completion, Message
from automatos.runners.base import AgentTask
from automatos.testing import Fault, ScriptedLLM
from tests.conftest import fast_settings, step_of


def recipe(*specs: tuple[str, Sequence[str]], agents: Sequence[AgentSpec] = ()) -> WorkflowRequest:
    return WorkflowRequest(
        text="the request",
        subtasks=tuple(
            SubtaskSpec(id=sid, description=f"step {sid}", depends_on=tuple(deps))
            for sid, deps in specs
        ),
        agents=tuple(agents),
    )


def by_step(delays: dict[str, float], default: float = 0.0) -> ScriptedLLM:
    return ScriptedLLM(
        default=lambda messages: f"out:{step_of(messages)}",
        latency=lambda messages: delays.get(step_of(messages), default),
    )


async def test_a_subtask_starts_when_its_own_dependencies_finish_not_its_layer() -> None:
    # fast -> after_fast ; slow -> after_slow. A layer barrier would hold after_fast until
    # slow is done; ready-set dispatch starts it at once.
    llm = by_step({"slow": 0.3, "fast": 0.01, "after_fast": 0.01, "after_slow": 0.01})
    events: list[Event] = []
    result = await Engine(fast_settings(), llm=llm).run(
        recipe(("fast", []), ("slow", []), ("after_fast", ["fast"]), ("after_slow", ["slow"])),
        on_event=events.append,
    )
    assert result.status is WorkflowStatus.SUCCEEDED
    order = [(type(e).__name__, getattr(e, "subtask_id", "")) for e in events]
    assert order.index(("SubtaskFinished", "after_fast")) < order.index(("SubtaskFinished", "slow"))


async def test_dependency_outputs_reach_the_prompt() -> None:
    llm = by_step({})
    await Engine(fast_settings(), llm=llm).run(recipe(("a", []), ("b", []), ("c", ["a", "b"])))
    prompt = next(c.messages[-1].content for c in llm.calls if step_of(c.messages) == "c")
    assert "### a\nout:a" in prompt
    assert "### b\nout:b" in prompt
    assert "the request" in prompt
    assert "step c" in prompt


async def test_long_dependency_outputs_are_cut() -> None:
    llm = ScriptedLLM(default=lambda m: "z" * 5000 if step_of(m) == "a" else "ok")
    settings = fast_settings(max_dependency_chars=100)
    await Engine(settings, llm=llm).run(recipe(("a", []), ("b", ["a"])))
    prompt = llm.calls[-1].messages[-1].content
    assert "z" * 100 + "\n[… truncated]" in prompt
    assert "z" * 101 not in prompt


async def test_the_concurrency_limit_holds() -> None:
    running = peak = 0

    async def complete(messages: Sequence[Message], **_: object) -> Completion:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.01)
        running -= 1
        return Completion("ok", "m", 1, 1, 0.01)

    llm = ScriptedLLM(default="ok")
    llm.complete = complete  # type: ignore[method-assign]
    result = await Engine(fast_settings(max_concurrency=3), llm=llm).run(
        recipe(*[(f"t{i}", []) for i in range(12)])
    )
    assert result.totals.by_status[SubtaskStatus.SUCCEEDED] == 12
    assert peak == 3


async def test_critical_path_subtasks_start_first_when_slots_are_short() -> None:
    request = WorkflowRequest(
        text="r",
        subtasks=(
            SubtaskSpec(id="side", description="x", complexity=1),
            SubtaskSpec(id="head", description="x", complexity=3),
            SubtaskSpec(id="tail", description="x", complexity=3, depends_on=("head",)),
        ),
    )
    events: list[Event] = []
    await Engine(fast_settings(max_concurrency=1), llm=by_step({})).run(
        request, on_event=events.append
    )
    started = [e.subtask_id for e in events if isinstance(e, SubtaskStarted)]
    assert started[0] == "head"


async def test_a_failed_subtask_retries_alone() -> None:
    failures = {"flaky": 2}

    def reply(messages: Sequence[Message]) -> str | Fault:
        step = step_of(messages)
        if failures.get(step, 0) > 0:
            failures[step] -= 1
            return Fault.server_error()
        return f"out:{step}"

    llm = ScriptedLLM(default=reply)
    settings = fast_settings(max_attempts=3)
    settings.llm.max_retries = 0
    events: list[Event] = []
    result = await Engine(settings, llm=llm).run(
        recipe(("flaky", []), ("steady", []), ("end", ["flaky", "steady"])), on_event=events.append
    )
    assert result.status is WorkflowStatus.SUCCEEDED
    assert result.results["flaky"].attempts == 3
    assert result.results["steady"].attempts == 1
    assert [step_of(c.messages) for c in llm.calls].count("steady") == 1
    retried = [e for e in events if isinstance(e, SubtaskRetried)]
    assert [(e.subtask_id, e.attempt) for e in retried] == [("flaky", 1), ("flaky", 2)]


async def test_failure_skips_what_depends_on_it_and_independent_branches_finish() -> None:
    def reply(messages: Sequence[Message]) -> str | Fault:
        return Fault.server_error() if step_of(messages) == "bad" else "fine"

    settings = fast_settings(max_attempts=2)
    settings.llm.max_retries = 0
    events: list[Event] = []
    result = await Engine(settings, llm=ScriptedLLM(default=reply)).run(
        recipe(
            ("bad", []),
            ("child", ["bad"]),
            ("grandchild", ["child"]),
            ("good", []),
            ("good2", ["good"]),
        ),
        on_event=events.append,
    )
    statuses = {sid: r.status for sid, r in result.results.items()}
    assert statuses == {
        "bad": SubtaskStatus.FAILED,
        "child": SubtaskStatus.SKIPPED,
        "grandchild": SubtaskStatus.SKIPPED,
        "good": SubtaskStatus.SUCCEEDED,
        "good2": SubtaskStatus.SUCCEEDED,
    }
    assert result.status is WorkflowStatus.PARTIAL
    assert result.results["bad"].error is not None
    assert result.results["bad"].error.type == "ProviderUnavailableError"
    skipped = {e.subtask_id: e.reason for e in events if isinstance(e, SubtaskSkipped)}
    assert skipped == {"child": "dependency 'bad' failed", "grandchild": "dependency 'bad' failed"}
    assert result.final_answer == "fine"


async def test_a_refused_call_is_not_retried_by_the_dispatcher() -> None:
    def refuse(_: object) -> str:
        raise ProviderRequestError("HTTP 400: bad request")

    result = await Engine(fast_settings(max_attempts=3), llm=ScriptedLLM(default=refuse)).run(
        recipe(("only", []))
    )
    assert result.results["only"].attempts == 1
    assert result.status is WorkflowStatus.FAILED


async def test_a_subtask_that_overruns_its_timeout_is_retried_then_failed() -> None:
    llm = by_step({"stuck": 5.0, "quick": 0.0})
    settings = fast_settings(subtask_timeout_s=0.1, max_attempts=2)
    events: list[Event] = []
    result = await Engine(settings, llm=llm).run(
        recipe(("stuck", []), ("quick", []), ("after", ["stuck"])), on_event=events.append
    )
    stuck = result.results["stuck"]
    assert stuck.status is SubtaskStatus.FAILED
    assert stuck.attempts == 2
    assert stuck.error is not None
    assert stuck.error.type == "SubtaskTimeoutError"
    assert 0.19 <= stuck.latency_s < 2
    assert result.results["quick"].status is SubtaskStatus.SUCCEEDED
    assert result.results["after"].status is SubtaskStatus.SKIPPED


async def test_cancelling_the_run_cancels_running_subtasks_and_records_them() -> None:
    llm = by_step({"long": 10.0, "short": 0.0})
    events: list[Event] = []
    engine = Engine(fast_settings(), llm=llm)
    task = asyncio.create_task(
        engine.run(recipe(("short", []), ("long", []), ("after", ["long"])), on_event=events.append)
    )
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    finished = {e.subtask_id: e.status for e in events if isinstance(e, SubtaskFinished)}
    assert finished == {"short": "succeeded", "long": "cancelled", "after": "cancelled"}
    assert type(events[-1]).__name__ == "WorkflowFinished"
    assert events[-1].status == "cancelled"  # type: ignore[attr-defined]


async def test_recipe_agents_are_used() -> None:
    writer = AgentSpec(
        name="writer", system_prompt="You write prose.", model="writer-model", temperature=0.9
    )
    seen: list[AgentTask] = []

    class Recording:
        async def run(self, task: AgentTask) -> Completion:
            seen.append(task)
            return Completion("text", task.agent.model or "default", 3, 4, 0.0)

        async def aclose(self) -> None:
            pass

    request = WorkflowRequest(
        text="r",
        subtasks=(
            SubtaskSpec(id="a", description="x", agent="writer"),
            SubtaskSpec(id="b", description="y", depends_on=("a",), agent="generalist"),
        ),
        agents=(writer,),
    )
    result = await Engine(fast_settings(), llm=ScriptedLLM(), runner=Recording()).run(request)
    assert [a.agent for a in result.assignments] == ["writer", "generalist"]
    first = seen[0]
    assert first.agent == writer
    assert first.messages[0].content == "You write prose."
    assert first.subtask.graph.successors == ("b",)
    assert first.subtask.graph.on_critical_path
    assert first.task_id == f"{request.workflow_id}:a:1"
    assert result.results["a"].tokens_in == 3
    assert result.results["a"].agent == "writer"


async def test_a_bug_in_a_runner_fails_the_subtask_not_the_engine() -> None:
    class Broken:
        async def run(self, task: AgentTask) -> Completion:
            raise ZeroDivisionError("oops")

        async def aclose(self) -> None:
            pass

    result = await Engine(fast_settings(), llm=ScriptedLLM(), runner=Broken()).run(
        recipe(("a", []))
    )
    assert result.results["a"].status is SubtaskStatus.FAILED
    assert result.results["a"].error is not None
    assert result.results["a"].error.type == "RunnerError"
    assert result.results["a"].error.message == "runner Broken raised ZeroDivisionError: oops"
    assert result.results["a"].attempts == 3  # retried like any transient failure


async def test_a_budget_stops_new_subtasks_with_a_typed_error() -> None:
    # The calls cost 67 and 85 tokens (the second quotes the first): two fit in 160.
    llm = ScriptedLLM(default="x" * 20)
    settings = fast_settings(max_concurrency=1)
    settings.coordination.enabled = False  # the figures are of prompts without its request
    request = WorkflowRequest(
        text="the request",
        subtasks=tuple(
            SubtaskSpec(id=f"s{i}", description="step", depends_on=(f"s{i - 1}",) if i else ())
            for i in range(5)
        ),
        budget_tokens=160,
    )
    result = await Engine(settings, llm=llm).run(request)
    statuses = [r.status for r in result.results.values()]
    assert statuses == [SubtaskStatus.SUCCEEDED] * 2 + [SubtaskStatus.SKIPPED] * 3
    refused = [
        r for r in result.results.values() if r.error and r.error.type == "BudgetExceededError"
    ]
    assert len(refused) == 1
    assert refused[0].subtask_id == "s2"
    assert "token budget 160: 152 spent" in refused[0].error.message  # type: ignore[union-attr]
    assert result.status is WorkflowStatus.PARTIAL
    assert result.totals.tokens_in + result.totals.tokens_out <= 160
    assert any(w.startswith("budget exceeded") for w in result.warnings)


async def test_a_dollar_budget_from_the_settings() -> None:
    from automatos.settings import ModelPrice

    settings = fast_settings(max_concurrency=2)
    settings.execution.budget_usd = 0.000_001
    settings.llm.prices = {"scripted": ModelPrice(input_per_mtok=1.0, output_per_mtok=1.0)}
    result = await Engine(settings, llm=ScriptedLLM(default="ok")).run(
        recipe(*[(f"t{i}", []) for i in range(6)])
    )
    assert result.totals.cost_usd > 0
    assert result.totals.by_status[SubtaskStatus.SKIPPED] >= 1


async def test_subtask_calls_know_the_attempt_timeout_and_the_run_does_not() -> None:
    seen: list[float] = []

    def reply(messages: Sequence[Message]) -> str:
        seen.append(caller_timeout.get())
        return "ok"

    settings = fast_settings(subtask_timeout_s=7.0)
    result = await Engine(settings, llm=ScriptedLLM(default=reply)).run(
        recipe(("a", []), ("b", []))
    )
    assert result.status is WorkflowStatus.SUCCEEDED
    # two subtasks under the dispatcher's timeout, then the synthesis call outside it
    assert seen == [7.0, 7.0, math.inf]
    assert caller_timeout.get() == math.inf


async def test_a_bookkeeping_error_ends_the_run_instead_of_hanging_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken_commit(state: object, result: SubtaskResult, reason: str = "") -> bool:
        raise RuntimeError(f"cannot record {result.subtask_id}")

    monkeypatch.setattr("automatos.phases.execute.dispatch.commit_result", broken_commit)
    llm = by_step({"a": 0.0, "b": 5.0})
    with pytest.raises(StageError, match="stage 'execute' failed: RuntimeError: cannot record a"):
        await asyncio.wait_for(
            Engine(fast_settings(), llm=llm).run(recipe(("a", []), ("b", []))), 3
        )


async def test_a_wide_fan_in_quotes_every_dependency_within_the_budget() -> None:
    llm = ScriptedLLM(default=lambda m: "short" if step_of(m) == "d0" else "z" * 5000)
    settings = fast_settings(max_dependency_chars=4000, max_quoted_chars=3000)
    deps = [f"d{i}" for i in range(6)]
    await Engine(settings, llm=llm).run(recipe(*[(d, []) for d in deps], ("join", deps)))
    prompt = next(c for c in llm.calls if step_of(c.messages) == "join").messages[-1].content
    assert "### d0\nshort\n" in prompt  # short outputs are kept whole
    for d in deps[1:]:  # the five long ones share the rest: (3000 - 5) // 5 each
        assert f"### {d}\n" + "z" * 599 + "\n[… truncated]" in prompt
    assert prompt.count("z") == 5 * 599


def flaky_once(delays: dict[str, float]) -> ScriptedLLM:
    """'flaky' fails its first attempt with a 500; every step sleeps its delay."""
    failed: list[str] = []

    def reply(messages: Sequence[Message]) -> str | Fault:
        step = step_of(messages)
        if step == "flaky" and not failed:
            failed.append(step)
            return Fault.server_error()
        return f"out:{step}"

    return ScriptedLLM(default=reply, latency=lambda m: delays.get(step_of(m), 0.0))


def timeline(events: list[Event]) -> tuple[list[tuple[str, str, int]], int]:
    """(kind, subtask, attempt) in order, and the most subtasks ever running at once."""
    order, running, peak = [], 0, 0
    for e in events:
        if isinstance(e, SubtaskStarted):
            running += 1
            order.append(("start", e.subtask_id, e.attempt))
        elif isinstance(e, SubtaskRetried | SubtaskFinished):
            running -= 1
            order.append(("end", e.subtask_id, getattr(e, "attempt", 0)))
        peak = max(peak, running)
    return order, peak


async def one_slot(backoff: float, other: float, *ids: str) -> list[tuple[str, str, int]]:
    """Run ``ids`` (flaky first) with one slot; the order of starts and ends."""
    settings = fast_settings(max_concurrency=1, max_attempts=2)
    settings.execution.retry_backoff_s = backoff
    settings.llm.max_retries = 0
    events: list[Event] = []
    result = await Engine(settings, llm=flaky_once({"other": other})).run(
        recipe(*[(sid, []) for sid in ids]), on_event=events.append
    )
    assert result.status is WorkflowStatus.SUCCEEDED
    order, peak = timeline(events)
    assert peak == 1
    return order


async def test_a_subtask_waiting_to_retry_gives_its_slot_to_other_work() -> None:
    order = await one_slot(0.3, 0.1, "flaky", "other")
    # the old way held the slot through the backoff: other waited 0.3 s for nothing
    assert order.index(("end", "other", 0)) < order.index(("start", "flaky", 2))


async def test_a_retry_whose_backoff_ends_while_slots_are_full_waits_for_one() -> None:
    order = await one_slot(0.02, 0.2, "flaky", "other", "third")
    # back from its backoff, the retry gets the next free slot before work that was queued
    after_other = order.index(("end", "other", 0)) + 1
    assert order[after_other] == ("start", "flaky", 2)
    assert order.index(("start", "third", 1)) > after_other


async def test_retry_delays_are_jittered_and_honour_retry_after() -> None:
    faults = {"limited": [Fault.rate_limit(retry_after=0.2)], "broken": [Fault.server_error()]}

    def reply(messages: Sequence[Message]) -> str | Fault:
        pending = faults.get(step_of(messages))
        return pending.pop() if pending else "ok"

    settings = fast_settings(max_attempts=2)
    settings.execution.retry_backoff_s = 0.05
    settings.llm.max_retries = 0
    events: list[Event] = []
    result = await Engine(settings, llm=ScriptedLLM(default=reply)).run(
        recipe(("limited", []), ("broken", [])), on_event=events.append
    )
    assert result.status is WorkflowStatus.SUCCEEDED
    delays = {e.subtask_id: e.delay_s for e in events if isinstance(e, SubtaskRetried)}
    assert delays["limited"] >= 0.2  # the server asked for that long
    assert 0.025 <= delays["broken"] <= 0.05


async def test_a_subtask_waiting_to_retry_counts_against_the_budget() -> None:
    # One slot. "first" costs X; "flaky" fails once and waits to retry; "third" would then
    # make three calls of about X each, over a budget of 2.5 X: it is not started.
    llm = flaky_once({})
    settings = fast_settings(max_concurrency=1, max_attempts=2)
    settings.execution.retry_backoff_s = 0.1
    settings.llm.max_retries = 0
    probe = await Engine(settings, llm=ScriptedLLM(default="out:first")).run(recipe(("first", [])))
    cost = probe.totals.tokens_in + probe.totals.tokens_out
    request = recipe(("first", []), ("flaky", []), ("third", []))
    request = request.model_copy(update={"budget_tokens": int(2.5 * cost)})
    result = await Engine(settings, llm=llm).run(request)
    assert result.results["flaky"].status is SubtaskStatus.SUCCEEDED
    assert result.results["flaky"].attempts == 2
    third = result.results["third"]
    assert third.status is SubtaskStatus.SKIPPED
    assert third.error is not None and third.error.type == "BudgetExceededError"
