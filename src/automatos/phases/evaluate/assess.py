"""Stage 7, quality assessment of the real outputs.

Each subtask gets ``Q = Σ w_d·s_d`` over its five dimensions (stage 5's), with the content
dimensions re-scored by an LLM judge when one is used (multi-agent plans, by default), or
the score of a custom scorer when the engine was given one. The workflow's Q is the mean over
its subtasks with the 95% interval ``Q ± 1.96·σ/√n``; below the quality gate the run is
marked as needing review. Each subtask's Q is what stage 6 learns from.
"""

from __future__ import annotations

import asyncio
import dataclasses

from automatos.domain.result import QualityReport, SubtaskStatus
from automatos.phases.evaluate.aggregate import workflow_dimensions
from automatos.phases.evaluate.quality import combine, weighted
from automatos.phases.evaluate.scorers import LLMJudgeScorer
from automatos.phases.state import WorkflowState

__all__ = ["AssessStage", "uses_judge"]


def uses_judge(state: WorkflowState) -> bool:
    """Whether the LLM judge scores this workflow (Organ level and above, by default)."""
    settings = state.runtime.settings.quality
    if settings.judge == "always":
        return True
    if settings.judge == "never" or state.runtime.numbered_plans:
        return False  # a model too small to plan freely is too small to judge
    return len({a.agent for a in state.assignments.values()}) >= settings.judge_min_agents


class AssessStage:
    """Stage 7."""

    name = "assess"

    async def run(self, state: WorkflowState) -> None:
        """Score every subtask and the workflow."""
        plan = state.require_plan()
        settings = state.runtime.settings.quality
        custom = state.runtime.scorer
        judge = (
            None
            if custom is not None or not uses_judge(state)
            else LLMJudgeScorer(
                state.runtime.llm,
                settings.weights,
                on_call=lambda done, sid: state.record_call(self.name, done, sid),
            )
        )
        method = "custom" if custom is not None else "judge" if judge else "heuristic"
        succeeded = [
            s for s in plan.subtasks if state.results[s.id].status is SubtaskStatus.SUCCEEDED
        ]
        if custom is not None:
            scores = await asyncio.gather(
                *(
                    custom.score(state.request.text, s, state.results[s.id].output or "")
                    for s in succeeded
                )
            )
            for s, q in zip(succeeded, scores, strict=True):
                state.quality[s.id] = min(1.0, max(0.0, float(q)))
        elif judge is not None:
            verdicts = await asyncio.gather(
                *(
                    judge.judged(
                        state.request.text,
                        s,
                        state.results[s.id].output or "",
                        state.dimensions[s.id],
                    )
                    for s in succeeded
                )
            )
            for s, dims in zip(succeeded, verdicts, strict=True):
                state.dimensions[s.id] = dims
        for s in plan.subtasks:
            if s.id not in state.quality:
                state.quality[s.id] = weighted(state.dimensions[s.id], settings.weights)
        overall = combine([state.quality[s.id] for s in plan.subtasks])
        if judge is not None and judge.fallbacks:
            state.warnings.append(
                f"the judge failed on {judge.fallbacks} subtask(s); heuristic scores used "
                f"(last: {judge.last_error})"
            )
        totals = workflow_dimensions([state.dimensions[s.id] for s in plan.subtasks])
        state.quality_report = QualityReport(
            q=overall.q,
            low=overall.low,
            high=overall.high,
            n=overall.n,
            needs_review=overall.q < settings.gate,
            method=method,
            dimensions=dataclasses.asdict(totals),
            subtasks={
                s.id: {
                    "q": state.quality[s.id],
                    **dataclasses.asdict(state.dimensions[s.id]),
                }
                for s in plan.subtasks
            },
        )
