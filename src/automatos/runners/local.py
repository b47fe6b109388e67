"""LocalTaskRunner: agent tasks run in this process, on the event loop."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

from automatos.llm.base import Completion, LLMProvider
from automatos.runners.base import AgentTask

__all__ = ["LocalTaskRunner"]


class LocalTaskRunner:
    """Runs each task as one call to ``llm``; concurrency is the orchestrator's to bound."""

    def __init__(self, llm: LLMProvider) -> None:
        self.llm = llm

    def run(self, task: AgentTask) -> Coroutine[Any, Any, Completion]:
        """Call the agent's model with the task's messages.

        The call gets the LLM settings' timeout and retries; the task's own timeout bounds
        the whole attempt and is enforced by the dispatcher. (A plain function returning the
        model's coroutine: one coroutine frame less per subtask.)
        """
        agent = task.agent
        return self.llm.complete(
            task.messages,
            model=agent.model,
            temperature=agent.temperature,
            max_tokens=agent.max_tokens,
        )

    async def aclose(self) -> None:
        """Nothing to release: the provider belongs to the engine."""
