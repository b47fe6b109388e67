"""A recipe brings its own subtasks: they pass the same checks as a decomposed plan."""

from __future__ import annotations

from automatos.domain.level import Phase
from automatos.graph import build_plan
from automatos.phases.contracts import PLAN, REQUEST
from automatos.phases.state import WorkflowState

__all__ = ["RecipeStage"]


class RecipeStage:
    """Stage 1 for a recipe: no model call, the recipe's subtasks checked as a plan."""

    name = "recipe"
    phase = Phase.PLAN
    reads = frozenset({REQUEST})
    writes = frozenset({PLAN})
    after_deadline = False

    async def run(self, state: WorkflowState) -> None:
        """Check the recipe's subtasks."""
        specs = state.request.subtasks or ()
        state.planning.plan = build_plan(specs, state.runtime.settings.plan)
