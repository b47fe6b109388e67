"""Stage 7, quality assessment: every succeeded subtask's output is scored by the scorer.

Only the scorer seam and this stage are built so far; the scorers of the quality issue
(heuristic and LLM judge, five dimensions, confidence interval) are not.
"""

from __future__ import annotations

import asyncio

from automatos.domain.result import SubtaskStatus
from automatos.phases.state import WorkflowState

__all__ = ["AssessStage"]


class AssessStage:
    """Stage 7."""

    name = "assess"

    async def run(self, state: WorkflowState) -> None:
        """Score the outputs, in parallel."""
        scorer = state.runtime.scorer
        if scorer is None:
            return
        plan = state.require_plan()
        done = [s for s in plan.subtasks if state.results[s.id].status is SubtaskStatus.SUCCEEDED]
        scores = await asyncio.gather(
            *(scorer.score(state.request.text, s, state.results[s.id].output or "") for s in done)
        )
        state.quality.update(
            (s.id, min(1.0, max(0.0, float(q)))) for s, q in zip(done, scores, strict=True)
        )
