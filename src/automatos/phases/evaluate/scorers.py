"""Scorers of stage 7: the heuristic one (no model) and an LLM judge with a rubric."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field

from automatos.domain.plan import Subtask
from automatos.errors import BudgetExceededError, WorkflowTimeoutError, describe_exception
from automatos.llm.base import Completion, LLMProvider, Message
from automatos.llm.structured import complete_structured, pydantic_parser, schema_of
from automatos.phases.evaluate.guard import passes_through
from automatos.phases.evaluate.heuristics import Dimensions, heuristic_dimensions
from automatos.phases.evaluate.quality import DEFAULT_WEIGHTS, weighted
from automatos.prompts.catalog import JUDGE, render

__all__ = ["HeuristicScorer", "JudgeVerdict", "LLMJudgeScorer", "task_of"]


def task_of(subtask: Subtask) -> str:
    """What a subtask asked for, as one text."""
    if subtask.expected_output:
        return f"{subtask.description} Expected: {subtask.expected_output}"
    return subtask.description


@dataclass
class HeuristicScorer:
    """Scores outputs with the heuristics of :mod:`.heuristics`; fast, free, no model."""

    weights: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))

    def dimensions(self, request: str, subtask: Subtask, output: str) -> Dimensions:
        """The content dimensions of one output (no run data)."""
        return heuristic_dimensions(task_of(subtask), output, request=request)

    async def score(self, request: str, subtask: Subtask, output: str) -> float:
        """Q over the content dimensions."""
        return weighted(self.dimensions(request, subtask, output), self.weights)


class Judged(BaseModel):
    """One rubric dimension as the judge scores it."""

    model_config = ConfigDict(extra="ignore")

    score: float = Field(ge=0, le=1)
    reason: str = ""


class JudgeVerdict(BaseModel):
    """The judge's answer: three content dimensions, each with a one-line reason."""

    model_config = ConfigDict(extra="ignore")

    completeness: Judged
    accuracy: Judged
    coherence: Judged


RUBRIC = render(JUDGE, {})
"""The judge's built-in rubric (the registry's ``judge`` slug, version 1)."""


@dataclass
class LLMJudgeScorer:
    """Scores outputs by asking a model to apply a rubric.

    A judge whose JSON does not validate gets one repair attempt; if that fails too (or
    the call fails: any exception, a ``BaseException`` of the provider's included), the
    heuristic scorer's score is used and :attr:`fallbacks` counts it. A call that the
    workflow's budget or deadline did not allow (``BudgetExceededError``,
    ``WorkflowTimeoutError``) is no failure of the judge: :attr:`stopped` counts those.
    """

    llm: LLMProvider
    weights: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    on_call: Callable[[Completion, str], None] | None = None
    """Given each of the judge's answers and the id of the subtask judged (accounting)."""
    fallbacks: int = 0
    last_error: str | None = None
    stopped: int = 0
    """Outputs not judged because the budget or the deadline stopped the judge."""
    last_stop: str | None = None
    rubric: str = RUBRIC
    """The judge's system prompt (a run's is the registry's ``judge`` version)."""

    async def verdict(self, request: str, subtask: Subtask, output: str) -> JudgeVerdict:
        """The judge's rubric scores of one output.

        Raises:
            LLMError: the judge failed, or its answer did not validate after a repair.
        """
        report = self.on_call
        answer = await complete_structured(
            self.llm,
            [
                Message("system", self.rubric),
                Message(
                    "user",
                    f"Request:\n{request}\n\nStep:\n{task_of(subtask)}\n\nAnswer:\n{output}",
                ),
            ],
            pydantic_parser(JudgeVerdict),
            json_schema=schema_of(JudgeVerdict),
            temperature=0.0,
            on_call=None if report is None else (lambda done: report(done, subtask.id)),
        )
        return answer.value

    async def judged(
        self, request: str, subtask: Subtask, output: str, fallback: Dimensions
    ) -> Dimensions:
        """``fallback`` with its content dimensions replaced by the judge's scores; ``fallback``
        as it is if the judge fails (counted in :attr:`fallbacks`, the reason kept in
        :attr:`last_error`; or in :attr:`stopped` and :attr:`last_stop` when the budget or
        the deadline stopped it)."""
        try:
            v = await self.verdict(request, subtask, output)
        except (BudgetExceededError, WorkflowTimeoutError) as exc:
            self.stopped += 1
            self.last_stop = str(exc)
            return fallback
        except BaseException as exc:  # a failed judge must not cost the run its result
            if passes_through(exc):
                raise
            self.fallbacks += 1
            self.last_error = describe_exception(exc)
            return fallback
        return dataclasses.replace(
            fallback,
            completeness=v.completeness.score,
            accuracy=v.accuracy.score,
            coherence=v.coherence.score,
        )

    async def score(self, request: str, subtask: Subtask, output: str) -> float:
        """Q over the judged dimensions, or the heuristic score if the judge fails."""
        if not output.strip():
            return 0.0
        heuristic = HeuristicScorer(self.weights).dimensions(request, subtask, output)
        return weighted(await self.judged(request, subtask, output, heuristic), self.weights)
