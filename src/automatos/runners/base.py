"""The TaskRunner seam (the PRD's bridge to distributed execution).

A runner takes one :class:`AgentTask` — everything an agent needs to do one subtask, and
nothing that lives only in this process — and returns the agent's answer as a
:class:`~automatos.llm.Completion`. The orchestrator keeps the graph, the retries, the
timeouts and the commit of results, so a
runner that runs tasks in-process, on a Redis queue or as Kubernetes Jobs changes none of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from automatos.domain.agent import AgentSpec
from automatos.domain.plan import Subtask
from automatos.llm.base import Completion, Message

__all__ = ["AgentTask", "TaskRunner"]


@dataclass(slots=True)
class AgentTask:
    """One attempt at one subtask, as sent to a runner."""

    workflow_id: str
    subtask: Subtask
    """The subtask with its graph metadata (layer, critical path, slack: the PRD's Fix 6)."""
    attempt: int
    agent: AgentSpec
    messages: tuple[Message, ...]
    timeout_s: float

    @property
    def subtask_id(self) -> str:
        """The subtask's id."""
        return self.subtask.id

    @property
    def task_id(self) -> str:
        """Unique per attempt, for queues that deduplicate."""
        return f"{self.workflow_id}:{self.subtask_id}:{self.attempt}"


@runtime_checkable
class TaskRunner(Protocol):
    """Runs agent tasks; raises :class:`~automatos.errors.AutomatosError` subclasses on failure."""

    async def run(self, task: AgentTask) -> Completion:
        """Run one attempt of one subtask and return what the agent wrote, and its cost."""
        ...

    async def aclose(self) -> None:
        """Release what the runner holds (connections, workers)."""
        ...
