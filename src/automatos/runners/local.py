"""LocalTaskRunner: agent tasks run in this process, on the event loop."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from automatos.domain.event import SubtaskQueued
from automatos.llm.base import Completion, LLMProvider
from automatos.runners.base import AgentTask
from automatos.runners.executor import execute

if TYPE_CHECKING:
    from automatos.phases.execute.tool_loop import Toolbox
    from automatos.tools.host import ToolHost

__all__ = ["LocalTaskRunner", "subtask_events"]

subtask_events: ContextVar[Callable[..., object] | None] = ContextVar(
    "automatos_subtask_events", default=None
)
"""The ``EventBus.emit`` of the workflow whose subtasks run in this context, set by the
dispatcher: the runner reports through it when a subtask's call waits for a model that
serves one call at a time (:class:`~automatos.domain.event.SubtaskQueued`)."""


class LocalTaskRunner:
    """Runs each task as one call to ``llm`` (a tool loop for an agent that has tools);
    concurrency is the orchestrator's to bound.

    An agent's tools come from the run's tool host (:data:`~automatos.tools.host.
    current_host`, made current by the pipeline for the run); a task run outside a run (no
    current host) gets a host of its own, with the default ``tools.*`` settings, closed when
    the attempt ends.

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
        if task.agent.tools:
            return self._run_with_tools(task)
        if self._one_at_a_time:
            emit = subtask_events.get()
            if emit is not None:
                return self._run_in_turn(task, None, emit)
        return execute(self.llm, task)

    async def _run_with_tools(self, task: AgentTask) -> Completion:
        from automatos.tools.host import ToolHost, current_host

        host = current_host.get()
        if host is None:  # outside a run: nothing would close a shared host's servers
            own = ToolHost()
            try:
                return await self._call(task, own)
            finally:
                await own.aclose()
        return await self._call(task, host)

    async def _call(self, task: AgentTask, host: ToolHost) -> Completion:
        toolbox = await host.toolbox(task)
        if self._one_at_a_time:
            emit = subtask_events.get()
            if emit is not None:
                return await self._run_in_turn(task, toolbox, emit)
        return await execute(self.llm, task, toolbox)

    async def _run_in_turn(
        self, task: AgentTask, toolbox: Toolbox | None, emit: Callable[..., object]
    ) -> Completion:
        subtask_id, attempt = task.subtask_id, task.attempt

        def report(ahead: int) -> None:
            emit(SubtaskQueued, subtask_id, attempt, ahead)

        # Imported here: only the in-process model's runs get here, and it is loaded by then.
        from automatos.llm.local import turn_listener

        token = turn_listener.set(report)
        try:
            return await execute(self.llm, task, toolbox)
        finally:
            turn_listener.reset(token)

    async def aclose(self) -> None:
        """Nothing to release: the provider belongs to the engine."""
