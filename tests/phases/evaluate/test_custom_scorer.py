"""Issue 10, item 4: a custom scorer that misbehaves costs the run neither its result nor
its time; the heuristic score stands in, with one warning per run."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import time
from collections.abc import Awaitable, Callable

import pytest

from automatos import Engine, Settings, WorkflowResult
from automatos.domain.plan import Subtask
from automatos.phases.evaluate.heuristics import Dimensions
from automatos.phases.evaluate.quality import weighted
from automatos.testing import ScriptedLLM
from tests.conftest import fast_settings, step_of
from tests.phases.evaluate.test_assess import GOOD, REQUEST


class Boom(BaseException):
    """A BaseException of a plug-in's own."""


Behaviour = Callable[[], Awaitable[object]]


class BadScorer:
    """A scorer that behaves as it is told, on every output."""

    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.calls = 0

    async def score(self, request: str, subtask: Subtask, output: str) -> float:
        self.calls += 1
        return await self.behaviour()  # type: ignore[return-value]


def raising(exc: BaseException) -> Behaviour:
    async def behave() -> object:
        raise exc

    return behave


def returning(value: object) -> Behaviour:
    async def behave() -> object:
        return value

    return behave


async def hanging() -> object:
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


def llm() -> ScriptedLLM:
    return ScriptedLLM(default=lambda m: GOOD.get(step_of(m), "out"))


def settings(timeout_s: float = 5.0) -> Settings:
    s = fast_settings()
    s.quality.scorer_timeout_s = timeout_s
    return s


def heuristic(result: WorkflowResult) -> bool:
    """Whether every subtask's Q is the heuristic one, from its five dimensions."""
    assert result.quality is not None
    for scores in result.quality.subtasks.values():
        dimensions = {name: value for name, value in scores.items() if name != "q"}
        if scores["q"] != weighted(Dimensions(**dimensions)):  # type: ignore[arg-type]
            return False
    return True


async def run_with(scorer: object, s: Settings | None = None) -> WorkflowResult:
    engine = Engine(s or settings(), llm=llm(), scorer=scorer)  # type: ignore[arg-type]
    return await asyncio.wait_for(engine.run(REQUEST), 10)


def fell_back(result: WorkflowResult, reason: str) -> None:
    lines = [w for w in result.warnings if "scorer" in w]
    assert len(lines) == 1, result.warnings  # one line for the pass, not one per subtask
    assert lines[0].startswith("the scorer BadScorer failed on 3 subtask(s); heuristic scores")
    assert reason in lines[0]


MISBEHAVIOURS = {
    "an exception": (raising(ValueError("no score today")), "raised ValueError: no score today"),
    "GeneratorExit": (raising(GeneratorExit()), "raised GeneratorExit"),
    "KeyboardInterrupt": (raising(KeyboardInterrupt()), "raised KeyboardInterrupt"),
    "SystemExit": (raising(SystemExit(3)), "raised SystemExit: 3"),
    "a BaseException of its own": (raising(Boom("boom")), "raised Boom: boom"),
    "a CancelledError nobody asked for": (
        raising(asyncio.CancelledError()),
        "raised CancelledError without being cancelled",
    ),
    "None": (returning(None), "returned None, not a number in [0, 1]"),
    "a string": (returning("0.9"), "returned a str, not a number in [0, 1]"),
    "NaN": (returning(math.nan), "returned nan, not a number"),
    "infinity": (returning(math.inf), "returned inf, not a number"),
    "a bool": (returning(True), "returned a bool, not a number"),
}


@pytest.mark.parametrize("kind", sorted(MISBEHAVIOURS))
async def test_a_scorer_that_fails_leaves_the_heuristic_score_and_one_warning(kind: str) -> None:
    behaviour, reason = MISBEHAVIOURS[kind]
    scorer = BadScorer(behaviour)
    result = await run_with(scorer)
    assert scorer.calls == 3
    assert result.status.value == "succeeded"
    assert result.quality is not None and result.quality.method == "custom"
    fell_back(result, reason)
    assert heuristic(result)


async def test_a_scorer_that_hangs_is_timed_out() -> None:
    scorer = BadScorer(hanging)
    started = time.perf_counter()
    result = await run_with(scorer, settings(timeout_s=0.05))
    assert time.perf_counter() - started < 2
    fell_back(result, "gave no score within 0.05 s")
    assert result.quality is not None and result.quality.q > 0.7 and heuristic(result)


async def test_a_scorer_that_ignores_its_cancellation_is_abandoned() -> None:
    finished = asyncio.Event()

    async def stubborn() -> object:
        loop = asyncio.get_running_loop()
        until = loop.time() + 0.5
        while loop.time() < until:
            with contextlib.suppress(asyncio.CancelledError):  # it ignores its cancellation
                await asyncio.sleep(until - loop.time())
        finished.set()
        return 0.9

    s = settings(timeout_s=0.05)
    s.execution.cancel_grace_s = 0.05
    started = time.perf_counter()
    result = await run_with(BadScorer(stubborn), s)
    assert time.perf_counter() - started < 0.45  # it did not wait for the scorer
    fell_back(result, "gave no score within 0.05 s")
    await asyncio.wait_for(finished.wait(), 2)  # the abandoned scorers end on their own


async def test_a_scorer_is_bounded_by_the_workflows_deadline() -> None:
    s = settings(timeout_s=60)
    s.execution.workflow_timeout_s = 0.5
    started = time.perf_counter()
    result = await run_with(BadScorer(hanging), s)
    assert time.perf_counter() - started < 1.5
    fell_back(result, "gave no score before the workflow's deadline")
    assert result.quality is not None and heuristic(result)  # scored in time


async def test_a_score_out_of_range_is_clamped_without_a_warning() -> None:
    values = iter([7.0, -0.5, 0.25])

    async def next_value() -> object:
        return next(values)

    result = await run_with(BadScorer(next_value))
    assert result.quality is not None
    assert sorted(d["q"] or 0.0 for d in result.quality.subtasks.values()) == [0.0, 0.25, 1.0]
    assert not [w for w in result.warnings if "scorer" in w]


async def test_a_scorer_whose_score_is_not_a_coroutine_falls_back() -> None:
    class SyncScorer:
        def score(self, request: str, subtask: Subtask, output: str) -> float:
            return 0.9

    result = await run_with(SyncScorer())
    lines = [w for w in result.warnings if "scorer SyncScorer" in w]
    assert len(lines) == 1 and "raised TypeError" in lines[0]


async def test_only_some_subtasks_falling_back_are_counted() -> None:
    calls = itertools.count(1)

    async def sometimes() -> object:
        if next(calls) == 2:
            raise RuntimeError("flaky")
        return 0.5

    result = await run_with(BadScorer(sometimes))
    assert result.quality is not None
    assert [w for w in result.warnings if "scorer" in w] == [
        "the scorer BadScorer failed on 1 subtask(s); heuristic scores used "
        "(last: scorer BadScorer raised RuntimeError: flaky)"
    ]
    assert sorted(d["q"] or 0.0 for d in result.quality.subtasks.values()).count(0.5) == 2


async def test_a_real_cancellation_of_the_workflow_still_cancels_it() -> None:
    entered = asyncio.Event()
    cancelled = asyncio.Event()

    async def slow() -> object:
        entered.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return 0.5

    run = asyncio.create_task(run_with(BadScorer(slow), settings(timeout_s=60)))
    await asyncio.wait_for(entered.wait(), 5)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    await asyncio.wait_for(cancelled.wait(), 1)  # the scorer was cancelled with it
