"""Stage 7, quality assessment of the real outputs.

Each subtask gets ``Q = Σ w_d·s_d`` over its five dimensions (stage 5's), with the content
dimensions re-scored by an LLM judge when one is used (multi-agent plans, by default), or
the score of a custom scorer when the engine was given one. The workflow's Q is the mean over
its subtasks with the 95% interval ``Q ± 1.96·σ/√n``; below the quality gate the run is
marked as needing review. Each subtask's Q is what stage 6 learns from.

Neither scorer can cost the run its result: a custom scorer that raises, hangs past
``quality.scorer_timeout_s`` (or the workflow's deadline) or returns no number in [0, 1], and
a judge that fails or that the budget or the deadline stops, leave that subtask its
heuristic score, and the result one warning line per kind of fallback.
"""

from __future__ import annotations

import asyncio
import dataclasses

from automatos.domain.level import Phase
from automatos.domain.plan import Subtask
from automatos.domain.result import QualityReport, SubtaskStatus
from automatos.errors import ScorerError
from automatos.phases.contracts import ASSIGNMENTS, DIMENSIONS, PLAN, QUALITY, RESULTS
from automatos.phases.evaluate.aggregate import workflow_dimensions
from automatos.phases.evaluate.guard import GatedLLM, guarded_score
from automatos.phases.evaluate.heuristics import Dimensions
from automatos.phases.evaluate.quality import combine, weighted
from automatos.phases.evaluate.scorers import LLMJudgeScorer
from automatos.phases.state import WorkflowState
from automatos.scoring import Scorer

__all__ = ["AssessStage", "quality_report", "uses_judge"]

_REPORT_S = 0.05
"""Seconds of the workflow's time the stage keeps to report once a scorer or the judge is cut
off by the deadline: the pipeline cancels the stage itself at the deadline."""


def _time_to_score(state: WorkflowState) -> float:
    """Seconds a scorer or the judge may still take in this workflow (``inf``: no deadline)."""
    return state.time_left() - _REPORT_S


_DIMENSIONS = tuple(f.name for f in dataclasses.fields(Dimensions))


def _as_dict(dimensions: Dimensions) -> dict[str, float | None]:
    # `dataclasses.asdict` deep-copies each value: a measurable cost over 10,000 subtasks
    return {name: getattr(dimensions, name) for name in _DIMENSIONS}


def uses_judge(state: WorkflowState) -> bool:
    """Whether the LLM judge scores this workflow (Organ level and above, by default)."""
    settings = state.runtime.settings.quality
    if settings.judge == "always":
        return True
    if settings.judge == "never" or not state.runtime.profile.judges:
        return False
    return len({a.agent for a in state.planning.assignments.values()}) >= settings.judge_min_agents


def quality_report(state: WorkflowState, method: str) -> QualityReport:
    """The workflow's report from the scores so far: what no scorer scored keeps its
    heuristic score (stage 5's dimensions, weighted)."""
    plan = state.require_plan()
    settings = state.runtime.settings.quality
    evaluation = state.evaluation
    quality, dimensions = evaluation.quality, evaluation.dimensions
    for s in plan.subtasks:
        if s.id not in quality:
            quality[s.id] = weighted(dimensions[s.id], settings.weights)
    overall = combine([quality[s.id] for s in plan.subtasks])
    totals = workflow_dimensions([dimensions[s.id] for s in plan.subtasks])
    return QualityReport(
        q=overall.q,
        low=overall.low,
        high=overall.high,
        n=overall.n,
        needs_review=overall.q < settings.gate,
        method=method,
        fallbacks=evaluation.fallbacks,
        dimensions=_as_dict(totals),
        subtasks={s.id: {"q": quality[s.id], **_as_dict(dimensions[s.id])} for s in plan.subtasks},
    )


class AssessStage:
    """Stage 7."""

    name = "assess"
    phase = Phase.EVALUATE
    reads = frozenset({PLAN, ASSIGNMENTS, RESULTS, DIMENSIONS})
    writes = frozenset({QUALITY})

    async def run(self, state: WorkflowState) -> None:
        """Score every subtask and the workflow."""
        plan = state.require_plan()
        custom = state.runtime.scorer
        succeeded = [
            s
            for s in plan.subtasks
            if state.execution.results[s.id].status is SubtaskStatus.SUCCEEDED
        ]
        if custom is not None:
            method = "custom"
            await self._score_custom(state, custom, succeeded)
        elif uses_judge(state):
            method = "judge"
            await self._judge(state, succeeded)
        else:
            method = "heuristic"
        state.evaluation.quality_report = quality_report(state, method)

    async def _score_custom(
        self, state: WorkflowState, scorer: Scorer, subtasks: list[Subtask]
    ) -> None:
        """The custom scorer's score of each output, or a warning and the heuristic one."""
        own = state.runtime.settings.quality.scorer_timeout_s
        left = _time_to_score(state)
        timeout = min(own, left)
        grace = state.runtime.settings.execution.cancel_grace_s

        async def one(s: Subtask) -> float | ScorerError:
            output = state.execution.results[s.id].output or ""
            try:
                return await guarded_score(
                    scorer,
                    state.request.text,
                    s,
                    output,
                    timeout_s=timeout,
                    grace_s=grace,
                    by_deadline=left < own,
                )
            except ScorerError as exc:
                return exc

        outcomes = await asyncio.gather(*(one(s) for s in subtasks))
        failed = [o for o in outcomes if isinstance(o, ScorerError)]
        for s, outcome in zip(subtasks, outcomes, strict=True):
            if not isinstance(outcome, ScorerError):
                state.evaluation.quality[s.id] = outcome
        state.evaluation.fallbacks += len(failed)
        if failed:
            state.warnings.append(
                f"the scorer {type(scorer).__name__} failed on {len(failed)} subtask(s); "
                f"heuristic scores used (last: {failed[-1]})"
            )

    async def _judge(self, state: WorkflowState, subtasks: list[Subtask]) -> None:
        """The judge's content dimensions of each output, within the budget and deadline."""
        llm = GatedLLM(
            state.runtime.llm,
            refusal=state.call_refusal,
            time_left=lambda: _time_to_score(state),
            count_tokens=state.runtime.profile.count_tokens,
        )
        judge = LLMJudgeScorer(
            llm,
            state.runtime.settings.quality.weights,
            on_call=lambda done, sid: state.record_call(self.name, done, sid),
            rubric=state.prompt("judge"),
        )
        verdicts = await asyncio.gather(
            *(
                judge.judged(
                    state.request.text,
                    s,
                    state.execution.results[s.id].output or "",
                    state.evaluation.dimensions[s.id],
                )
                for s in subtasks
            )
        )
        for s, dims in zip(subtasks, verdicts, strict=True):
            state.evaluation.dimensions[s.id] = dims
        state.evaluation.fallbacks += judge.fallbacks + judge.stopped
        if judge.fallbacks:
            state.warnings.append(
                f"the judge failed on {judge.fallbacks} subtask(s); heuristic scores used "
                f"(last: {judge.last_error})"
            )
        if judge.stopped:
            state.warnings.append(
                f"{judge.last_stop}; heuristic scores used on {judge.stopped} subtask(s)"
            )
