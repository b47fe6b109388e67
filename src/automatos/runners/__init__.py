"""Where agent tasks run: the TaskRunner Protocol and its implementations."""

from automatos.runners.base import AgentTask, TaskRunner
from automatos.runners.local import LocalTaskRunner

__all__ = ["AgentTask", "LocalTaskRunner", "TaskRunner"]
