"""Stage 5, aggregation: five dimension scores per subtask and for the workflow.

Content dimensions (completeness, accuracy, coherence) come from what each agent wrote,
checked against its subtask, the request and the outputs it depended on
(:mod:`.heuristics`). Run dimensions come from the run: efficiency is time against the
subtask timeout and tokens against the answer budget; reliability is success, discounted for
retries. A subtask that did not succeed wrote nothing: its content dimensions are zero.
"""

from __future__ import annotations

import math
from statistics import fmean

from automatos.domain.level import Phase
from automatos.domain.result import SubtaskResult, SubtaskStatus
from automatos.phases.contracts import DIMENSIONS, PLAN, RESULTS
from automatos.phases.evaluate.heuristics import Dimensions, ScoringPass
from automatos.phases.evaluate.scorers import task_of
from automatos.phases.state import WorkflowState

__all__ = ["AggregateStage", "efficiency", "reliability", "workflow_dimensions"]


def efficiency(result: SubtaskResult, timeout_s: float, token_budget: int) -> float:
    """Half time against the timeout, half tokens against the budget, each in [0, 1]."""
    time_part = 1.0 - min(1.0, result.latency_s / timeout_s)
    tokens = result.tokens_in + result.tokens_out
    token_part = 1.0 - min(1.0, tokens / max(1, token_budget))
    return 0.5 * time_part + 0.5 * token_part


def reliability(result: SubtaskResult) -> float:
    """1 for a first-time success, less for each retry, 0 for a failure."""
    if result.status is not SubtaskStatus.SUCCEEDED:
        return 0.0
    return 1.0 / math.sqrt(max(1, result.attempts))


def workflow_dimensions(per_subtask: list[Dimensions]) -> Dimensions:
    """The mean of each dimension over the subtasks."""

    def mean(name: str) -> float | None:
        values = [getattr(d, name) for d in per_subtask if getattr(d, name) is not None]
        return fmean(values) if values else None

    return Dimensions(
        completeness=mean("completeness") or 0.0,
        accuracy=mean("accuracy") or 0.0,
        efficiency=mean("efficiency"),
        reliability=mean("reliability"),
        coherence=mean("coherence") or 0.0,
    )


class AggregateStage:
    """Stage 5."""

    name = "aggregate"
    phase = Phase.EVALUATE
    reads = frozenset({PLAN, RESULTS})
    writes = frozenset({DIMENSIONS})

    async def run(self, state: WorkflowState) -> None:
        """Compute every subtask's dimensions."""
        plan = state.require_plan()
        # What the outputs share is kept for this run only, and dropped with it.
        scoring = ScoringPass()
        settings = state.runtime.settings
        # The prompt plus a full answer: what one subtask is expected to need at most.
        token_budget = 4 * settings.llm.max_tokens
        for s in plan.subtasks:
            result = state.execution.results[s.id]
            eff = efficiency(result, settings.execution.subtask_timeout_s, token_budget)
            if result.status is SubtaskStatus.SUCCEEDED:
                deps = [state.execution.results[d].output or "" for d in s.graph.predecessors]
                state.evaluation.dimensions[s.id] = scoring.dimensions(
                    task_of(s),
                    result.output or "",
                    request=state.request.text,
                    dependencies=deps,
                    efficiency=eff,
                    reliability=reliability(result),
                )
            else:
                state.evaluation.dimensions[s.id] = Dimensions(0.0, 0.0, eff, 0.0, 0.0)
