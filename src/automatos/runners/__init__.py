"""Where agent tasks run: the TaskRunner Protocol and its implementations."""

from automatos.runners.base import AgentOutput, AgentTask, ChatTurn, TaskRunner
from automatos.runners.local import LocalTaskRunner

__all__ = ["AgentOutput", "AgentTask", "ChatTurn", "LocalTaskRunner", "TaskRunner"]
