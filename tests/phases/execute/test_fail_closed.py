"""Stage 4 fails closed: whatever a runner does, each subtask ends with one typed result."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import math
import time
import warnings
from pathlib import Path
from typing import Any

import pytest

from automatos import (
    AgentSpec,
    Engine,
    Event,
    SubtaskRetried,
    SubtaskSpec,
    SubtaskStatus,
    WorkflowRequest,
    WorkflowStatus,
)
from automatos.abandoned import ABANDONED
from automatos.errors import AutomatosError, LLMTimeoutError, WorkflowTimeoutError
from automatos.llm.base import Completion
from automatos.phases.execute.answer import answer_problem
from automatos.phases.execute.dispatch import Dispatcher
from automatos.phases.state import WorkflowState
from automatos.runners.base import AgentTask
from automatos.settings import StoreSettings
from automatos.store.sql import SqlStore
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


class BadRepr:
    def __repr__(self) -> str:
        raise RuntimeError("repr boom")


class BadStr(Exception):
    def __str__(self) -> str:
        raise RuntimeError("str boom")


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
        (Completion(None, "m", 1, 1, 0.0), "a Completion whose text is None, not a str"),  # type: ignore[arg-type]
        (Completion("ok", "m", None, 1, 0.0), "whose tokens_in is None, not a count"),  # type: ignore[arg-type]
        (Completion("ok", "m", 1, "many", 0.0), "whose tokens_out is a str, not a count"),  # type: ignore[arg-type]
        (Completion("ok", "m", 1, 1, 0.0, cost_usd=math.nan), "cost_usd is nan"),
        (Completion("ok", None, 1, 1, 0.0), "whose model is None, not a str"),  # type: ignore[arg-type]
        (BadRepr(), "returned BadRepr instead of a Completion"),
        (BadStr(), "raised BadStr: (its message cannot be shown)"),
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
    before = set(ABANDONED)
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
    [abandoned] = ABANDONED - before
    await asyncio.wait_for(abandoned, 5)
    assert result.results["a"].status is SubtaskStatus.FAILED
    assert abandoned not in ABANDONED


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


async def test_a_cancellation_delivered_with_a_timeout_is_not_turned_into_a_retry() -> None:
    # The first attempt blocks the loop past both the attempt's and the workflow's deadline:
    # both arrive at once, and the workflow's wins (it used to be retried, and succeed).
    calls: list[int] = []

    class Blocking:
        async def run(self, task: AgentTask) -> Completion:
            calls.append(task.attempt)
            if task.attempt == 1:
                time.sleep(0.4)  # noqa: ASYNC251 - the point: a loop blocked past both deadlines
                await asyncio.sleep(100)
            return Completion("a real answer", "m", 1, 1, 0.0)

        async def aclose(self) -> None:
            pass

    settings = fast_settings(
        workflow_timeout_s=0.2, subtask_timeout_s=0.2, retry_backoff_s=0.05, max_attempts=3
    )
    events: list[Event] = []
    engine = Engine(settings, llm=ScriptedLLM(default="x"), runner=Blocking())
    result = await engine.run(parallel("a"), on_event=events.append)
    assert calls == [1]
    a = result.results["a"]
    assert a.status is SubtaskStatus.CANCELLED
    assert a.error is not None and a.error.type == "WorkflowTimeoutError"
    assert not [e for e in events if isinstance(e, SubtaskRetried)]


@pytest.mark.parametrize("deadline", [None, 0.5])
async def test_a_provider_deaf_to_cancellation_outside_a_subtask_cannot_hang_the_workflow(
    deadline: float | None,
) -> None:
    class Deaf:
        async def complete(self, messages: object, **options: object) -> Completion:
            # The plan call ignores every cancellation for 2 s (forever would also hang the
            # test's own event loop when it closes), then gives up.
            loop = asyncio.get_running_loop()
            until = loop.time() + 2
            while loop.time() < until:
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.sleep(until - loop.time())
            raise AssertionError("unreachable in the test's time")

    settings = fast_settings(workflow_timeout_s=deadline, cancel_grace_s=0.1)
    settings.llm.timeout_s = 0.3 if deadline is None else 5.0
    settings.llm.max_retries = 0
    started = time.perf_counter()
    with pytest.raises(AutomatosError) as caught:
        await asyncio.wait_for(Engine(settings, llm=Deaf()).run("plan this request"), 5)
    assert time.perf_counter() - started < 1.5
    expected = WorkflowTimeoutError if deadline else LLMTimeoutError
    assert isinstance(caught.value, expected)
    deaf = [t for t in ABANDONED if not t.done()]
    assert deaf  # still deaf: kept, not waited for
    await asyncio.wait(deaf, timeout=5)


async def test_a_deadline_that_passes_before_the_first_stage_is_a_typed_error(
    tmp_path: Path,
) -> None:
    store = await SqlStore.open(StoreSettings(data_dir=tmp_path))
    record = store.start_execution

    async def slow_start(*args: Any, **kwargs: Any) -> None:
        await asyncio.sleep(0.3)  # e.g. SQLite waiting for another process's lock
        await record(*args, **kwargs)

    store.start_execution = slow_start  # type: ignore[method-assign]
    try:
        for request in ("plan this request", chain("a")):
            engine = Engine(
                fast_settings(workflow_timeout_s=0.1), llm=ScriptedLLM(default="x"), store=store
            )
            with pytest.raises(WorkflowTimeoutError, match="before there was a plan"):
                await engine.run(request)
    finally:
        await store.aclose()


async def test_an_abandoned_subtask_keeps_what_its_attempts_took_and_spent() -> None:
    runner = Scripted(Completion("", "m", 150, 0, 0.0), "stubborn")
    result = await run_with(
        runner, parallel("a"), subtask_timeout_s=0.1, cancel_grace_s=0.1, max_attempts=3
    )
    a = result.results["a"]
    assert a.status is SubtaskStatus.FAILED
    assert a.tokens_in == 150
    assert a.latency_s >= 0.2  # the timed-out attempt and its grace, not the moment it was dropped
    assert a.attempts == 2


def test_a_stream_needs_room_for_one_event() -> None:
    engine = Engine(fast_settings(), llm=ScriptedLLM(default="x"))
    with pytest.raises(ValueError, match="max_buffered"):
        engine.stream("hello", max_buffered=0)


async def test_a_finished_workflow_leaves_nothing_of_itself_behind() -> None:
    # The attempt timer of a finished run stayed armed until its deadline (minutes, by
    # default), and through it the run's whole state stayed alive.
    engine = Engine(fast_settings(subtask_timeout_s=300), llm=ScriptedLLM(default="x"))
    wid = (await engine.run(parallel("a", "b", "c"))).workflow_id
    gc.collect()
    with warnings.catch_warnings():  # isinstance on some of torch's objects warns, once loaded
        warnings.simplefilter("ignore")
        mine = [
            o
            for o in gc.get_objects()
            if (isinstance(o, WorkflowState) and o.workflow_id == wid)
            or (isinstance(o, Dispatcher) and o.state.workflow_id == wid)
        ]
    assert not mine
