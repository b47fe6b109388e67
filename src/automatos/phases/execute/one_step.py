"""The request as its one subtask: the Atom, Molecule and Cell levels have no PLAN phase.

No model call: the plan is the request itself, and the agent is the one the scores choose
(the registry's learned metrics, the request's own agents), as stage 2 would without a model.
"""

from __future__ import annotations

from automatos.domain.level import Phase
from automatos.domain.plan import SubtaskSpec
from automatos.graph import build_plan
from automatos.phases.contracts import ASSIGNMENTS, PLAN, REQUEST
from automatos.phases.execute.prompt import WHOLE_REQUEST
from automatos.phases.plan.context_need import needs_context
from automatos.phases.plan.select import SelectStage
from automatos.phases.state import WorkflowState

__all__ = ["ONE_STEP_ID", "WHOLE_REQUEST", "OneStepStage"]

ONE_STEP_ID = "task"
"""The id of the one subtask."""


class OneStepStage:
    """The request becomes one subtask with one agent."""

    name = "one_step"
    phase = Phase.EXECUTE
    reads = frozenset({REQUEST})
    writes = frozenset({PLAN, ASSIGNMENTS})
    after_deadline = False

    async def run(self, state: WorkflowState) -> None:
        """Plan the one subtask and choose its agent."""
        text = state.request.text
        if len(text) > state.runtime.settings.plan.max_field_chars:
            text = WHOLE_REQUEST  # the prompt quotes the request itself in full
        step = SubtaskSpec(
            id=ONE_STEP_ID,
            description=text,
            requires_context=needs_context(state.request.text),
        )
        state.planning.plan = build_plan([step], state.runtime.settings.plan)
        await SelectStage(ask_model=False).run(state)
