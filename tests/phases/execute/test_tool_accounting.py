"""Stage 4 accounts for an agent's tool loop: each model call of the loop is a call of the
run (tokens, cost, latency), each tool call an event before the subtask's result, and the
result lists the tool calls of the attempt that answered; a loop stopped by its bounds is
counted the same way. The runner here is a plugin that answers as a tool loop would (the
loop itself is the runner's business, tested with it)."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest

from automatos import (
    Engine,
    Event,
    LLMCall,
    SubtaskFinished,
    SubtaskRetried,
    SubtaskSpec,
    SubtaskStarted,
    SubtaskStatus,
    ToolCalled,
    ToolUse,
    WorkflowRequest,
    WorkflowStatus,
)
from automatos.errors import ProviderUnavailableError, ToolLoopError
from automatos.llm.base import Completion
from automatos.phases.execute.tool_loop import attach_spent
from automatos.runners.base import AgentTask
from automatos.testing import ScriptedLLM
from tests.conftest import fast_settings

ADD = ToolUse("calculator", "call_1", "0123456789abcdef", 0.01, "ok")
BAD = ToolUse("calculator", "call_2", "fedcba9876543210", 0.0, "invalid_arguments", "not JSON")
CLOCK = ToolUse("current_time", "call_3", "1111222233334444", 0.002, "ok")


def looped(text: str, *uses: ToolUse, rounds: int = 2, priced: bool = True) -> Completion:
    """An answer reached in ``rounds`` model calls of distinct figures, after ``uses``."""
    parts = tuple(
        Completion(
            text if i == rounds - 1 else "",
            "tool-model",
            100 * (i + 1),
            10 * (i + 1),
            0.1 * (i + 1),
            cost_usd=0.001 * (i + 1),
            priced=priced,
        )
        for i in range(rounds)
    )
    return Completion(
        text,
        "tool-model",
        sum(p.tokens_in for p in parts),
        sum(p.tokens_out for p in parts),
        sum(p.latency_s for p in parts) + sum(u.latency_s for u in uses),
        cost_usd=sum(p.cost_usd for p in parts),
        priced=priced,
        rounds=parts,
        tool_uses=uses,
    )


def stopped(spent: Completion | None) -> ToolLoopError:
    return ToolLoopError("agent 'generalist' still called tools when told to answer", spent=spent)


class Looping:
    """Acts out one answer (or error) per attempt of subtask ``a``, in order; a plain answer
    after them, and to the other subtasks."""

    name = "looping"

    def __init__(self, *acts: Completion | BaseException) -> None:
        self.acts = list(acts)
        self.tasks: list[AgentTask] = []

    async def run(self, task: AgentTask) -> Completion:
        self.tasks.append(task)
        mine = task.subtask_id == "a" and self.acts
        act = self.acts.pop(0) if mine else Completion("plain", "plain-model", 5, 5, 0.0)
        if isinstance(act, BaseException):
            raise act
        return act

    async def aclose(self) -> None:
        pass


def one(sid: str = "a", *more: str) -> WorkflowRequest:
    return WorkflowRequest(
        text="the request",
        subtasks=tuple(SubtaskSpec(id=s, description=f"step {s}") for s in (sid, *more)),
    )


async def run(
    runner: Looping, request: WorkflowRequest, **execution: Any
) -> tuple[Any, list[Event]]:
    events: list[Event] = []
    engine = Engine(fast_settings(**execution), llm=ScriptedLLM(default="x"), runner=runner)
    result = await engine.run(request, on_event=events.append)
    return result, events


def execute_calls(result: Any, sid: str = "a") -> list[LLMCall]:
    return [c for c in result.llm_calls if c.stage == "execute" and c.subtask_id == sid]


async def test_each_model_call_of_a_loop_is_a_call_of_the_run() -> None:
    done = looped("42", ADD, CLOCK, rounds=3)
    result, _ = await run(Looping(done), one())
    calls = execute_calls(result)
    assert [(c.model, c.tokens_in, c.tokens_out) for c in calls] == [
        ("tool-model", 100, 10),
        ("tool-model", 200, 20),
        ("tool-model", 300, 30),
    ]
    assert [c.latency_s for c in calls] == pytest.approx([0.1, 0.2, 0.3])
    assert [c.cost_usd for c in calls] == pytest.approx([0.001, 0.002, 0.003])
    a = result.results["a"]
    assert (a.status, a.output, a.tokens_in, a.tokens_out) == (
        SubtaskStatus.SUCCEEDED,
        "42",
        600,
        60,
    )
    assert a.cost_usd == pytest.approx(0.006)
    assert a.tool_calls == (ADD, CLOCK)
    # The totals count every round (and the response stage's calls besides).
    assert result.totals.llm_calls == len(result.llm_calls)
    assert result.totals.tokens_in == sum(c.tokens_in for c in result.llm_calls)


async def test_an_answer_without_tools_is_one_call_and_no_tool_event() -> None:
    result, events = await run(Looping(), one())
    assert [(c.model, c.tokens_in) for c in execute_calls(result)] == [("plain-model", 5)]
    assert result.results["a"].tool_calls == ()
    assert not [e for e in events if isinstance(e, ToolCalled)]


async def test_each_tool_call_is_an_event_between_the_attempts_start_and_its_result() -> None:
    result, events = await run(Looping(looped("42", ADD, BAD)), one("a", "b"))
    assert result.status is WorkflowStatus.SUCCEEDED
    of_a = [e for e in events if getattr(e, "subtask_id", None) == "a"]
    kinds = [type(e).__name__ for e in of_a]
    assert kinds[kinds.index("SubtaskStarted") :] == [
        "SubtaskStarted",
        "ToolCalled",
        "ToolCalled",
        "SubtaskFinished",
    ]
    tools = [e for e in of_a if isinstance(e, ToolCalled)]
    assert [
        (e.attempt, e.tool, e.arguments_digest, e.latency_s, e.outcome, e.error) for e in tools
    ] == [
        (1, "calculator", "0123456789abcdef", 0.01, "ok", None),
        (1, "calculator", "fedcba9876543210", 0.0, "invalid_arguments", "not JSON"),
    ]
    assert tools[0].seq < tools[1].seq
    assert result.results["b"].tool_calls == ()  # the plain answer


async def test_a_loop_stopped_by_its_bounds_is_counted_in_the_failed_result() -> None:
    spent = looped("", ADD, ADD, rounds=2)
    result, events = await run(Looping(stopped(spent)), one())
    a = result.results["a"]
    assert a.status is SubtaskStatus.FAILED
    assert a.error is not None and a.error.type == "ToolLoopError"
    assert a.attempts == 1  # the same bounds would be hit again
    assert (a.tokens_in, a.tokens_out) == (300, 30)
    assert a.cost_usd == pytest.approx(0.003)
    assert a.tool_calls == (ADD, ADD)
    assert [c.tokens_in for c in execute_calls(result)] == [100, 200]
    assert result.totals.tokens_in == sum(c.tokens_in for c in result.llm_calls)
    kinds = [type(e).__name__ for e in events if getattr(e, "subtask_id", None) == "a"]
    assert kinds[-3:] == ["ToolCalled", "ToolCalled", "SubtaskFinished"]


async def test_a_stopped_loop_with_nothing_to_show_still_fails_cleanly() -> None:
    result, events = await run(Looping(stopped(None)), one())
    a = result.results["a"]
    assert (a.status, a.tokens_in, a.tool_calls) == (SubtaskStatus.FAILED, 0, ())
    assert execute_calls(result) == []
    assert not [e for e in events if isinstance(e, ToolCalled)]


async def test_a_retried_subtask_lists_the_tool_calls_of_the_attempt_that_answered() -> None:
    # The first loop ends on a blank answer (retried); the second answers.
    runner = Looping(looped("   ", ADD), looped("42", CLOCK, rounds=1))
    result, events = await run(runner, one())
    a = result.results["a"]
    assert (a.status, a.attempts, a.output) == (SubtaskStatus.SUCCEEDED, 2, "42")
    assert a.tool_calls == (CLOCK,)
    # Both loops cost: the first one's two rounds and the second's one.
    assert [c.tokens_in for c in execute_calls(result)] == [100, 200, 100]
    assert a.tokens_in == 400
    order = [
        (type(e).__name__, getattr(e, "attempt", None))
        for e in events
        if isinstance(e, SubtaskStarted | ToolCalled | SubtaskRetried | SubtaskFinished)
    ]
    assert order == [
        ("SubtaskStarted", 1),
        ("ToolCalled", 1),
        ("SubtaskRetried", 1),
        ("SubtaskStarted", 2),
        ("ToolCalled", 2),
        ("SubtaskFinished", None),
    ]


async def test_a_failed_subtask_lists_only_its_last_attempts_tool_calls() -> None:
    # Tools in the first attempt (a blank answer), none known of the last (a provider error).
    runner = Looping(
        looped("", ADD),
        ProviderUnavailableError("HTTP 500"),
        ProviderUnavailableError("HTTP 500"),
    )
    result, _ = await run(runner, one())
    a = result.results["a"]
    assert (a.status, a.attempts) == (SubtaskStatus.FAILED, 3)
    assert a.tool_calls == ()
    assert a.tokens_in == 300  # the first attempt's loop cost, all the same

    runner = Looping(ProviderUnavailableError("HTTP 500"), stopped(looped("", BAD)))
    result, _ = await run(runner, one())
    assert result.results["a"].tool_calls == (BAD,)


async def test_an_unpriced_round_makes_the_cost_unknown() -> None:
    result, _ = await run(Looping(looped("42", ADD, priced=False)), one())
    assert "tool-model" in result.totals.unpriced_models
    assert all(not c.priced for c in execute_calls(result))


@pytest.mark.parametrize(
    "broken",
    [
        {"rounds": ("not a completion",)},
        {"rounds": [Completion("x", "m", 1, 1, 0.0)]},
        {"rounds": (Completion("x", "m", -1, 1, 0.0),)},
        {"tool_uses": ({"tool": "calculator"},)},
        {"tool_uses": (dataclasses.replace(ADD, latency_s=float("nan")),)},
        {"tool_uses": (dataclasses.replace(ADD, error=3),)},  # type: ignore[arg-type]
    ],
)
async def test_a_runners_broken_loop_fails_the_attempt_not_the_run(broken: dict[str, Any]) -> None:
    bad = dataclasses.replace(looped("42", ADD), **broken)
    result, events = await run(Looping(bad, bad), one("a", "b"), max_attempts=2)
    a = result.results["a"]
    assert a.status is SubtaskStatus.FAILED
    assert a.error is not None and a.error.type == "RunnerError"
    assert "runner looping returned a Completion whose" in a.error.message
    assert result.results["b"].status is SubtaskStatus.SUCCEEDED  # the run went on
    assert not [e for e in events if isinstance(e, ToolCalled)]


async def test_a_broken_spent_is_left_out_of_the_accounts() -> None:
    result, _ = await run(Looping(stopped(Completion("", "m", -5, 0, 0.0))), one())
    a = result.results["a"]
    assert (a.status, a.tokens_in) == (SubtaskStatus.FAILED, 0)
    assert a.error is not None and a.error.type == "ToolLoopError"
    assert execute_calls(result) == []


async def test_the_events_and_result_are_stored(tmp_path: Any) -> None:
    """The tool events and the result's tool calls reach the store with the run."""
    from automatos.settings import StoreSettings
    from automatos.store.sql import SqlStore

    settings = fast_settings()
    settings.store = StoreSettings(data_dir=tmp_path)
    runner = Looping(looped("42", ADD, BAD))
    async with Engine(settings, llm=ScriptedLLM(default="x"), runner=runner) as engine:
        result = await engine.run(one())
    store = await SqlStore.open(settings.store)
    try:
        stored = await store.events_after(result.workflow_id)
        tools = [e for e in stored if e["kind"] == "tool_called"]
        assert [(e["tool"], e["outcome"], e["attempt"]) for e in tools] == [
            ("calculator", "ok", 1),
            ("calculator", "invalid_arguments", 1),
        ]
        run_ = await store.get_run(result.workflow_id)
        assert run_ is not None
        (a,) = run_.results
        assert [u["call_id"] for u in a["tool_calls"]] == ["call_1", "call_2"]
        assert sum(1 for c in run_.calls if c["stage"] == "execute") == 2
    finally:
        await store.aclose()


async def test_each_attempt_is_told_the_tokens_the_budget_leaves() -> None:
    runner = Looping(looped("42", ADD, rounds=3))
    request = WorkflowRequest(
        text="the request",
        subtasks=(
            SubtaskSpec(id="a", description="step a"),
            SubtaskSpec(id="b", description="step b", depends_on=("a",)),
        ),
        budget_tokens=100_000,
    )
    result, _ = await run(runner, request)
    assert result.status is WorkflowStatus.SUCCEEDED
    first, second = runner.tasks
    assert first.token_budget is not None and first.token_budget <= 100_000
    assert second.token_budget == first.token_budget - 660  # what a's three rounds spent

    runner = Looping()
    await run(runner, one())
    assert runner.tasks[0].token_budget is None  # no token budget


async def test_what_a_loop_spent_before_a_model_call_failed_is_counted() -> None:
    """An attempt that fails otherwise than by its bounds carries what it spent too."""
    failed = ProviderUnavailableError("HTTP 500")
    attach_spent(failed, looped("", ADD))
    result, events = await run(Looping(failed, looped("42", CLOCK, rounds=1)), one())
    a = result.results["a"]
    assert (a.status, a.attempts, a.tool_calls) == (SubtaskStatus.SUCCEEDED, 2, (CLOCK,))
    assert a.tokens_in == 300 + 100
    assert [c.tokens_in for c in execute_calls(result)] == [100, 200, 100]
    assert [(e.attempt, e.tool) for e in events if isinstance(e, ToolCalled)] == [
        (1, "calculator"),
        (2, "current_time"),
    ]


async def test_what_a_timed_out_loop_spent_is_counted() -> None:
    class Slow(Looping):
        async def run(self, task: AgentTask) -> Completion:
            try:
                await asyncio.sleep(60)
            except BaseException as exc:  # the attempt's timeout cancels the loop
                attach_spent(exc, looped("", ADD, BAD))
                raise
            raise AssertionError("not cancelled")

    result, events = await run(Slow(), one(), subtask_timeout_s=0.05, max_attempts=1)
    a = result.results["a"]
    assert a.status is SubtaskStatus.FAILED
    assert a.error is not None and a.error.type == "SubtaskTimeoutError"
    assert (a.tokens_in, a.tool_calls) == (300, (ADD, BAD))
    assert len(execute_calls(result)) == 2
    assert len([e for e in events if isinstance(e, ToolCalled)]) == 2


async def test_an_exception_that_breaks_on_being_asked_is_still_a_failed_attempt() -> None:
    class Hostile(Exception):
        def __getattribute__(self, name: str) -> Any:
            if name == "spent":
                raise RuntimeError("no")
            return super().__getattribute__(name)

    result, _ = await run(Looping(Hostile("x")), one(), max_attempts=1)
    a = result.results["a"]
    assert a.status is SubtaskStatus.FAILED
    assert a.error is not None and a.error.type == "RunnerError"
