"""Stage 4 fails closed: whatever a runner does, each subtask ends with one typed result."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from automatos import (
    AgentSpec,
    Engine,
    SubtaskSpec,
    SubtaskStatus,
    WorkflowRequest,
    WorkflowStatus,
)
from automatos.errors import WorkflowTimeoutError
from automatos.llm.base import Completion
from automatos.phases.execute import dispatch
from automatos.phases.execute.answer import answer_problem
from automatos.runners.base import AgentTask
from automatos.testing import Fault, Rule, ScriptedLLM
from tests.conftest import fast_settings, planner, step_of


def chain(*ids: str) -> WorkflowRequest:
    return WorkflowRequest(
        text="the request",
        subtasks=tuple(
            SubtaskSpec(id=sid, description=f"step {sid}", depends_on=(ids[i - 1],) if i else ())
            for i, sid in enumerate(ids)
        ),
    )


def parallel(*ids: str) -> WorkflowRequest:
    return WorkflowRequest(
        text="the request",
        subtasks=tuple(SubtaskSpec(id=sid, description=f"step {sid}") for sid in ids),
    )


class Scripted:
    """A runner acting out one misbehaviour per call, in order, then answering well."""

    name = "scripted-runner"

    def __init__(self, *acts: Any) -> None:
        self.acts = list(acts)
        self.calls = 0

    async def run(self, task: AgentTask) -> Any:
        self.calls += 1
        act = self.acts.pop(0) if self.acts else "ok"
        if isinstance(act, BaseException) or (
            isinstance(act, type) and issubclass(act, BaseException)
        ):
            raise act
        if act == "ok":
            return Completion(f"answer {task.subtask_id}", "m", 1, 1, 0.0)
        if act == "hang":
            await asyncio.Event().wait()
        if act == "stubborn":
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                await asyncio.sleep(0.6)
            return Completion("too late", "m", 1, 1, 0.0)
        return act

    async def aclose(self) -> None:
        pass


async def run_with(runner: Scripted, request: WorkflowRequest, **execution: Any) -> Any:
    engine = Engine(fast_settings(**execution), llm=ScriptedLLM(default="x"), runner=runner)
    return await asyncio.wait_for(engine.run(request), 10)


@pytest.mark.parametrize(
    ("act", "message"),
    [
        (None, "runner scripted-runner returned None instead of a Completion"),
        ("plain text", "returned str 'plain text' instead of a Completion"),
        (Completion(None, "m", 1, 1, 0.0), "instead of a Completion"),  # type: ignore[arg-type]
        (asyncio.CancelledError, "raised CancelledError without being cancelled"),
        (GeneratorExit, "raised GeneratorExit"),
        (KeyboardInterrupt, "raised KeyboardInterrupt"),
        (ValueError("boom"), "raised ValueError: boom"),
    ],
)
async def test_a_runner_that_breaks_its_contract_fails_the_attempt_with_a_typed_error(
    act: Any, message: str
) -> None:
    # Each of these hung the workflow forever, or escaped as a foreign exception.
    result = await run_with(Scripted(act, act, act), chain("a", "b"), max_attempts=3)
    a = result.results["a"]
    assert a.status is SubtaskStatus.FAILED
    assert a.error is not None and a.error.type == "RunnerError"
    assert message in a.error.message
    assert a.attempts == 3
    assert result.results["b"].status is SubtaskStatus.SKIPPED
    assert result.status is WorkflowStatus.FAILED


async def test_a_runner_that_misbehaves_once_succeeds_on_its_retry() -> None:
    result = await run_with(Scripted(None), chain("a", "b"), max_attempts=2)
    assert result.status is WorkflowStatus.SUCCEEDED
    assert result.results["a"].attempts == 2


@pytest.mark.parametrize(
    "text", ["", "   \n\t", "<eos>", " <|im_end|><|endoftext|>", "[PAD]</s>", "\ufffd\u200b", "..."]
)
async def test_an_empty_or_garbage_answer_is_a_failed_attempt(text: str) -> None:
    llm = ScriptedLLM([text, text])
    result = await Engine(fast_settings(max_attempts=2), llm=llm).run(parallel("a"))
    a = result.results["a"]
    assert a.status is SubtaskStatus.FAILED
    assert a.error is not None and a.error.type == "EmptyAnswerError"
    assert a.attempts == 2
    # What the rejected answers cost is counted.
    assert a.tokens_in > 0
    assert len([c for c in result.llm_calls if c.stage == "execute"]) == 2


async def test_an_empty_answer_is_retried_and_the_retry_counts_both_attempts() -> None:
    llm = ScriptedLLM(["", "a real answer"])
    result = await Engine(fast_settings(), llm=llm).run(parallel("a"))
    a = result.results["a"]
    assert a.status is SubtaskStatus.SUCCEEDED
    assert a.output == "a real answer"
    assert a.attempts == 2
    assert a.tokens_in == sum(c.tokens_in for c in result.llm_calls)


@pytest.mark.parametrize("text", ["42", "😊", "Yes.", "<b>bold</b> answer", "- a list", "→ x"])
def test_short_real_answers_have_substance(text: str) -> None:
    assert answer_problem(text) is None


async def test_a_runner_that_ignores_its_cancellation_is_abandoned_and_the_run_goes_on() -> None:
    runner = Scripted("stubborn")
    started = time.perf_counter()
    result = await run_with(
        runner, parallel("a", "b"), subtask_timeout_s=0.1, cancel_grace_s=0.1, max_attempts=3
    )
    took = time.perf_counter() - started
    assert took < 0.5  # not the 0.6 s the runner holds on
    assert result.results["a"].status is SubtaskStatus.FAILED
    assert result.results["a"].error is not None
    assert "did not stop within 0.1 s" in result.results["a"].error.message
    assert result.results["b"].status is SubtaskStatus.SUCCEEDED
    assert any("ignored the cancellation" in w for w in result.warnings)
    # The abandoned attempt ends on its own, and nothing is committed twice.
    [abandoned] = dispatch._ABANDONED
    await asyncio.wait_for(abandoned, 5)
    assert result.results["a"].status is SubtaskStatus.FAILED
    assert not dispatch._ABANDONED


async def test_a_hung_runner_times_out_and_is_retried() -> None:
    result = await run_with(Scripted("hang"), parallel("a"), subtask_timeout_s=0.05)
    assert result.status is WorkflowStatus.SUCCEEDED
    assert result.results["a"].attempts == 2


async def test_the_workflow_deadline_cancels_what_is_left_and_accounts_for_every_subtask() -> None:
    llm = ScriptedLLM(
        default=lambda m: f"out:{step_of(m)}",
        latency=lambda m: {"slow": 5.0, "after": 0.0}.get(step_of(m), 0.01),
    )
    request = WorkflowRequest(
        text="the request",
        subtasks=(
            SubtaskSpec(id="fast", description="quick"),
            SubtaskSpec(id="slow", description="slow"),
            SubtaskSpec(id="after", description="later", depends_on=("slow",)),
        ),
    )
    started = time.perf_counter()
    result = await Engine(fast_settings(workflow_timeout_s=0.3), llm=llm).run(request)
    assert time.perf_counter() - started < 1.0
    assert result.status is WorkflowStatus.PARTIAL
    assert result.results["fast"].status is SubtaskStatus.SUCCEEDED
    for sid in ("slow", "after"):
        r = result.results[sid]
        assert r.status is SubtaskStatus.CANCELLED
        assert r.error is not None and r.error.type == "WorkflowTimeoutError"
    assert result.final_answer == "out:fast"
    assert any("deadline" in w for w in result.warnings)


async def test_a_deadline_that_passes_while_planning_raises_a_typed_error() -> None:
    llm = ScriptedLLM(rules=[planner({"id": "a", "description": "x"})], latency=1.0)
    with pytest.raises(WorkflowTimeoutError, match="before there was a plan"):
        await Engine(fast_settings(workflow_timeout_s=0.1), llm=llm).run("plan this")


async def test_a_deadline_that_passes_while_selecting_accounts_for_every_subtask() -> None:
    llm = ScriptedLLM(
        rules=[
            planner({"id": "a", "description": "x"}, {"id": "b", "description": "y"}),
            # the selection call hangs; only the deadline ends it
            Rule("^Subtasks:", Fault.timeout()),
        ],
        default="done",
    )
    settings = fast_settings(workflow_timeout_s=0.3)
    settings.selection.use_llm = True
    request = WorkflowRequest(
        text="plan this", agents=(AgentSpec(name="one"), AgentSpec(name="two"))
    )
    result = await Engine(settings, llm=llm).run(request)
    assert {r.status for r in result.results.values()} == {SubtaskStatus.CANCELLED}
    assert result.status is WorkflowStatus.FAILED


async def test_only_a_cancellation_of_the_workflow_cancels_it() -> None:
    engine = Engine(fast_settings(), llm=ScriptedLLM(default="x", latency=5.0))
    task = asyncio.create_task(engine.run(parallel("a", "b")))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_retry_is_not_started_once_the_budget_is_spent() -> None:
    # The first answer is rejected; while it waits to retry, the others spend the budget.
    llm = ScriptedLLM(
        default=lambda m: "" if step_of(m) == "a" else "y" * 400,
        latency=lambda m: 0.0 if step_of(m) == "a" else 0.02,
    )
    settings = fast_settings(retry_backoff_s=0.1, max_concurrency=4)
    request = WorkflowRequest(
        text="the request", subtasks=parallel("a", "b", "c").subtasks, budget_tokens=250
    )
    result = await Engine(settings, llm=llm).run(request)
    a = result.results["a"]
    assert a.status is SubtaskStatus.FAILED
    assert a.error is not None and a.error.type == "BudgetExceededError"
    assert "retry not started" in a.error.message
    assert a.attempts == 1
