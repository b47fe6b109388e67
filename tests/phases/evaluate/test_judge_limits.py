"""Issue 10, items 1 and 6 for the LLM judge: its calls stay within the workflow's budget and
deadline, and a judge's model that misbehaves in any way leaves the heuristic scores."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import pytest

from automatos import Engine, Settings, WorkflowResult
from automatos.domain.plan import GraphMetadata, Subtask
from automatos.errors import BudgetExceededError, WorkflowTimeoutError
from automatos.llm.base import Completion, Message
from automatos.phases.evaluate.guard import GatedLLM
from automatos.phases.evaluate.heuristics import Dimensions, heuristic_dimensions
from automatos.phases.evaluate.quality import weighted
from automatos.phases.evaluate.scorers import LLMJudgeScorer
from automatos.testing import ScriptedLLM
from tests.conftest import fast_settings, step_of
from tests.phases.evaluate.test_assess import GOOD, REQUEST, judge_reply, judged
from tests.phases.evaluate.test_custom_scorer import Boom, heuristic

RUBRIC_MARK = "You grade one answer"
GRAPH = GraphMetadata(0, 1, (), (), 0.0, 0.0, True)


def judge_settings(**execution: Any) -> Settings:
    s = fast_settings(**execution)
    s.quality.judge = "always"
    return s


def judge_calls(llm: ScriptedLLM) -> int:
    return len([c for c in llm.calls if RUBRIC_MARK in c.messages[0].content])


async def run(engine: Engine) -> WorkflowResult:
    return await asyncio.wait_for(engine.run(REQUEST), 10)


async def test_the_budget_stops_the_judge_and_the_heuristic_scores_stand() -> None:
    # the three subtasks take about 590 tokens, a judge call is estimated at about 560:
    # 1,300 tokens leave room for one judge call, not two
    llm = judged(judge_reply(0.4))
    result = await run(Engine(judge_settings(budget_tokens=1300), llm=llm))
    assert result.status.value == "succeeded"
    assert judge_calls(llm) == 1
    assert result.totals.tokens_in + result.totals.tokens_out <= 1300
    assert result.quality is not None and result.quality.method == "judge"
    stopped = [w for w in result.warnings if "the budget stopped the judge" in w]
    assert len(stopped) == 1, result.warnings
    assert "token budget 1300" in stopped[0] and "on 2 subtask(s)" in stopped[0]
    judged_q = [d for d in result.quality.subtasks.values() if d["completeness"] == 0.4]
    assert len(judged_q) == 1  # the one judged; the other two keep their heuristic scores


async def test_no_judge_call_once_the_budget_is_spent() -> None:
    llm = judged(judge_reply(0.4))
    result = await run(Engine(judge_settings(budget_tokens=700), llm=llm))
    assert judge_calls(llm) == 0
    assert result.quality is not None and heuristic(result)
    assert any(
        "the budget stopped the judge" in w and "on 3 subtask(s)" in w for w in result.warnings
    )


async def test_the_deadline_cuts_the_judge_off_and_the_result_keeps_its_scores() -> None:
    def latency(messages: Sequence[Message]) -> float:
        return 30.0 if RUBRIC_MARK in messages[0].content else 0.0

    llm = judged(judge_reply(0.4))
    llm.latency = latency
    started = time.perf_counter()
    result = await run(Engine(judge_settings(workflow_timeout_s=0.5), llm=llm))
    assert time.perf_counter() - started < 1.5
    assert result.quality is not None and result.quality.method == "judge" and heuristic(result)
    assert any(
        "the workflow's deadline stopped the judge" in w and "on 3 subtask(s)" in w
        for w in result.warnings
    ), result.warnings


class BreaksWhenJudging:
    """A provider that answers the subtasks well and misbehaves when asked to judge."""

    def __init__(self, judge: Callable[[], Awaitable[object]]) -> None:
        self.subtasks = ScriptedLLM(default=lambda m: GOOD.get(step_of(m), "out"))
        self.judge = judge

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        model: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        json_schema: Mapping[str, Any] | None = None,
        timeout_s: float | None = None,
    ) -> Completion:
        if RUBRIC_MARK in messages[0].content:
            return await self.judge()  # type: ignore[return-value]
        return await self.subtasks.complete(messages, model=model, max_tokens=max_tokens)


def raising(exc: BaseException) -> Callable[[], Awaitable[object]]:
    async def judge() -> object:
        raise exc

    return judge


def returning(value: object) -> Callable[[], Awaitable[object]]:
    async def judge() -> object:
        return value

    return judge


BROKEN_JUDGES = {
    "GeneratorExit": raising(GeneratorExit()),
    "KeyboardInterrupt": raising(KeyboardInterrupt()),
    "a BaseException of its own": raising(Boom("boom")),
    "a CancelledError nobody asked for": raising(asyncio.CancelledError()),
    "an exception": raising(KeyError("judge")),
    "None": returning(None),
    "a string": returning('{"completeness": 1}'),
    "a completion without text": returning(Completion(None, "m", 1, 1, 0.0)),  # type: ignore[arg-type]
}


@pytest.mark.parametrize("kind", sorted(BROKEN_JUDGES))
async def test_a_judge_provider_that_misbehaves_falls_back(kind: str) -> None:
    result = await run(Engine(judge_settings(), llm=BreaksWhenJudging(BROKEN_JUDGES[kind])))
    assert result.status.value == "succeeded"
    assert result.quality is not None and heuristic(result)
    assert any("the judge failed on 3 subtask(s)" in w for w in result.warnings), result.warnings


@pytest.mark.parametrize("kind", sorted(BROKEN_JUDGES))
async def test_the_judge_itself_survives_a_provider_that_misbehaves(kind: str) -> None:
    # without the engine's model wrapper in between: `automatos eval --judge` calls it so
    judge = LLMJudgeScorer(BreaksWhenJudging(BROKEN_JUDGES[kind]))
    subtask = Subtask("a", "Explain sourdough.", (), False, 2, "", None, GRAPH)
    fallback = Dimensions(0.5, 0.5, None, None, 0.5)
    assert await judge.judged("r", subtask, "Sourdough is bread.", fallback) is fallback
    assert judge.fallbacks == 1 and judge.last_error
    assert await judge.score("r", subtask, "Sourdough is bread.") == pytest.approx(
        weighted(heuristic_dimensions("Explain sourdough.", "Sourdough is bread.", request="r"))
    )


# The gate on its own: what it refuses, and what it lets through.


def gate(inner: object, *, left: float = math.inf, refusal: str | None = None) -> GatedLLM:
    return GatedLLM(inner, refusal=lambda tokens: refusal, time_left=lambda: left)  # type: ignore[arg-type]


PROMPT = [Message("user", "x" * 400)]


async def test_no_judge_call_starts_after_the_deadline() -> None:
    llm = ScriptedLLM(default="{}")
    with pytest.raises(WorkflowTimeoutError, match="deadline stopped the judge"):
        await gate(llm, left=0.0).complete(PROMPT)
    assert llm.calls == []


async def test_the_gate_asks_the_budget_with_the_calls_in_flight() -> None:
    asked: list[int] = []
    release = asyncio.Event()

    class Slow:
        async def complete(self, messages: Sequence[Message], **_: Any) -> Completion:
            await release.wait()
            return Completion("{}", "m", 1, 1, 0.0)

    def refusal(tokens: int) -> str | None:
        asked.append(tokens)
        return "full" if tokens > 600 else None

    gated = GatedLLM(Slow(), refusal=refusal, time_left=lambda: math.inf)
    first = asyncio.create_task(gated.complete(PROMPT))
    await asyncio.sleep(0)
    with pytest.raises(BudgetExceededError, match=r"the budget stopped the judge \(full\)"):
        await asyncio.wait_for(gated.complete(PROMPT), 1)
    assert asked == [400, 800]  # 100 tokens of prompt and 300 of answer, then twice that
    release.set()
    assert (await asyncio.wait_for(first, 1)).text == "{}"


async def test_a_real_cancellation_passes_the_gate() -> None:
    entered = asyncio.Event()

    class Hangs:
        async def complete(self, messages: Sequence[Message], **_: Any) -> Completion:
            entered.set()
            await asyncio.Event().wait()
            raise AssertionError("unreachable")

    call = asyncio.create_task(gate(Hangs()).complete(PROMPT))
    await entered.wait()
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(call, 1)
