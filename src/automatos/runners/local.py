"""LocalTaskRunner: agent tasks run in this process, on the event loop."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from contextvars import ContextVar
from typing import Any

from automatos.domain.event import SubtaskQueued
from automatos.llm.base import Completion, LLMProvider
from automatos.runners.base import AgentTask
from automatos.runners.executor import execute

__all__ = ["LocalTaskRunner", "subtask_events"]

subtask_events: ContextVar[Callable[..., object] | None] = ContextVar(
    "automatos_subtask_events", default=None
)
"""The ``EventBus.emit`` of the workflow whose subtasks run in this context, set by the
dispatcher: the runner reports through it when a subtask's call waits for a model that
serves one call at a time (:class:`~automatos.domain.event.SubtaskQueued`)."""


class LocalTaskRunner:
    """Runs each task as one call to ``llm``; concurrency is the orchestrator's to bound.

    When the model serves one call at a time (the in-process model: its provider says
    ``one_at_a_time``), a subtask whose call waits behind others is reported as queued, and
    as running again when the model starts on it, so that a display does not show subtasks
    as running that only wait.
    """

    def __init__(self, llm: LLMProvider) -> None:
        self.llm = llm
        # Asked once: other models pay one attribute test per subtask for this.
        provider = getattr(llm, "inner", llm)
        self._one_at_a_time = bool(getattr(provider, "one_at_a_time", False))

    def run(self, task: AgentTask) -> Coroutine[Any, Any, Completion]:
        """Call the agent's model with the task's messages (:func:`execute`, as a worker
        does); the task's own timeout bounds the whole attempt and is enforced by the
        dispatcher."""
        if self._one_at_a_time:
            emit = subtask_events.get()
            if emit is not None:
                return self._run_in_turn(task, emit)
        return execute(self.llm, task)

    async def _run_in_turn(self, task: AgentTask, emit: Callable[..., object]) -> Completion:
        subtask_id, attempt = task.subtask_id, task.attempt

        def report(ahead: int) -> None:
            emit(SubtaskQueued, subtask_id, attempt, ahead)

        # Imported here: only the in-process model's runs get here, and it is loaded by then.
        from automatos.llm.local import turn_listener

        token = turn_listener.set(report)
        try:
            return await execute(self.llm, task)
        finally:
            turn_listener.reset(token)

    async def aclose(self) -> None:
        """Nothing to release: the provider belongs to the engine."""
