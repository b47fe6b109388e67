"""Assignment of agents to subtasks.

This is the part of stage 2 that needs no registry: a recipe's pre-assigned agents are kept
(and must exist), and every other subtask gets the default generalist agent. Learned,
LLM-driven selection over a registry of agents is not built yet.
"""

from __future__ import annotations

from automatos.domain.agent import DEFAULT_AGENT, Assignment
from automatos.errors import InvalidRequestError
from automatos.phases.state import WorkflowState

__all__ = ["AssignStage"]


class AssignStage:
    """Give every subtask an agent."""

    name = "select_agents"

    async def run(self, state: WorkflowState) -> None:
        """Assign agents, keeping those a recipe names."""
        plan = state.require_plan()
        unknown = sorted(
            {s.agent for s in plan.subtasks if s.agent and s.agent not in state.agents}
        )
        if unknown:
            raise InvalidRequestError(
                f"the recipe names unknown agents: {', '.join(unknown)}; "
                f"known agents: {', '.join(sorted(state.agents))}"
            )
        state.assignments = {
            s.id: Assignment(
                subtask_id=s.id,
                agent=s.agent or DEFAULT_AGENT.name,
                reason="pre-assigned by the recipe" if s.agent else "default agent",
            )
            for s in plan.subtasks
        }
