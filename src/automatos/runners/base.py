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
from automatos.domain.tools import MCPServerConfig
from automatos.llm.base import Completion, Message

__all__ = ["AgentTask", "TaskRunner", "ToolLimits"]


@dataclass(frozen=True, slots=True)
class ToolLimits:
    """The bounds of one attempt's tool loop (``tools.*`` of the orchestrator's settings).

    Attributes:
        max_calls: tool calls one attempt may make (``tools.max_calls``); 0 offers no tools.
        call_timeout_s: the longest one tool call may take (``tools.call_timeout_s``).
        secret_names: names of fields whose values are secret (``tools.secret_names``): a
            worker redacts what it records with these as well as with its own.
    """

    max_calls: int = 8
    call_timeout_s: float = 30.0
    secret_names: tuple[str, ...] = ()


@dataclass(slots=True)
class AgentTask:
    """One attempt at one subtask, as sent to a runner.

    The tool fields matter only for an agent that has tools (``agent.tools``, its allow-list):
    a runner reads none of them for the others. Left unset, a runner fills them from the
    run's tool host (:mod:`automatos.tools.host`).
    """

    workflow_id: str
    subtask: Subtask
    """The subtask with its graph metadata (layer, critical path, slack: the PRD's Fix 6)."""
    attempt: int
    agent: AgentSpec
    messages: tuple[Message, ...]
    timeout_s: float
    mcp_servers: tuple[MCPServerConfig, ...] = ()
    """The MCP servers the agent's tools name, resolved: the workspace's and the agent's own
    (the agent's wins when both have a server of one name)."""
    tool_limits: ToolLimits | None = None
    """The tool loop's bounds; unset: those of the settings where the task runs."""
    token_budget: int | None = None
    """Tokens the workflow has left when the attempt starts (its token budget,
    ``execution.budget_tokens``, less what it spent): the tool loop asks for a final answer
    once its rounds spent more. ``None``: no token budget."""

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
    """Runs agent tasks; raises :class:`~automatos.errors.AutomatosError` subclasses on failure.

    An attempt whose agent used tools returns one :class:`~automatos.llm.Completion` for the
    whole tool loop (its ``rounds`` and ``tool_uses``); one that failed after spending (a
    model call made) carries what it spent on the exception (see
    :func:`~automatos.phases.execute.tool_loop.spent_of`).
    """

    async def run(self, task: AgentTask) -> Completion:
        """Run one attempt of one subtask and return what the agent wrote, and its cost."""
        ...

    async def aclose(self) -> None:
        """Release what the runner holds (connections, workers)."""
        ...
