"""The TaskRunner seam (the PRD's bridge to distributed execution).

A runner takes one :class:`AgentTask` — everything an agent needs to do one subtask, and
nothing that lives only in this process — and returns the agent's :class:`AgentOutput`. The
orchestrator keeps the graph, the retries, the timeouts and the commit of results, so a
runner that runs tasks in-process, on a Redis queue or as Kubernetes Jobs changes none of it.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

from automatos.domain.agent import AgentSpec

__all__ = ["AgentOutput", "AgentTask", "ChatTurn", "TaskRunner"]


class ChatTurn(BaseModel):
    """A serialisable chat message."""

    model_config = ConfigDict(frozen=True)

    role: str
    content: str


class AgentTask(BaseModel):
    """One attempt at one subtask, as sent to a runner."""

    model_config = ConfigDict(frozen=True)

    workflow_id: str
    subtask_id: str
    attempt: int
    agent: AgentSpec
    messages: tuple[ChatTurn, ...]
    timeout_s: float

    @property
    def task_id(self) -> str:
        """Unique per attempt, for queues that deduplicate."""
        return f"{self.workflow_id}:{self.subtask_id}:{self.attempt}"


class AgentOutput(BaseModel):
    """What the agent wrote, and what it cost."""

    model_config = ConfigDict(frozen=True)

    text: str
    model: str
    tokens_in: int
    tokens_out: int
    cost_usd: float
    latency_s: float


@runtime_checkable
class TaskRunner(Protocol):
    """Runs agent tasks; raises :class:`~automatos.errors.AutomatosError` subclasses on failure."""

    async def run(self, task: AgentTask) -> AgentOutput:
        """Run one attempt of one subtask and return its output."""
        ...

    async def aclose(self) -> None:
        """Release what the runner holds (connections, workers)."""
        ...
