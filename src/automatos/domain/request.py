"""What a person asks the engine to do."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict, Field

from automatos.domain.agent import AgentSpec
from automatos.domain.plan import SubtaskSpec

__all__ = ["WorkflowRequest"]


def _new_id() -> str:
    return uuid.uuid4().hex


class WorkflowRequest(BaseModel):
    """A request; with ``subtasks`` it is a recipe and skips decomposition."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    text: str = Field(min_length=1)
    subtasks: tuple[SubtaskSpec, ...] | None = None
    agents: tuple[AgentSpec, ...] = ()
    """Agents available to this workflow, in addition to the default one."""
    workflow_id: str = Field(default_factory=_new_id, min_length=1, max_length=64)
    budget_tokens: int | None = Field(default=None, gt=0)
    """This workflow's token budget; unset uses ``execution.budget_tokens``."""
    budget_usd: float | None = Field(default=None, gt=0)
    """This workflow's dollar budget; unset uses ``execution.budget_usd``."""

    @property
    def is_recipe(self) -> bool:
        """Whether the request carries its own plan."""
        return self.subtasks is not None
