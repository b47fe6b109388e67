"""The one executor of an agent task: what a runner does with a task, in any process.

The local runner calls it on the orchestrator's event loop; ``automatos worker`` calls it
for each job it takes from the queue. Both therefore send the same messages to the same
model with the same agent settings, and give back the same :class:`Completion`.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

from automatos.llm.base import Completion, LLMProvider
from automatos.runners.base import AgentTask

__all__ = ["execute"]


def execute(llm: LLMProvider, task: AgentTask) -> Coroutine[Any, Any, Completion]:
    """One call of the agent's model with the task's messages.

    A plain function returning the model's coroutine: one coroutine frame less per subtask.
    The provider (a :class:`~automatos.llm.managed.ManagedLLM`) gives the call its timeout
    and retries transient model errors; the attempt's own timeout is its caller's.
    """
    agent = task.agent
    return llm.complete(
        task.messages,
        model=agent.model,
        temperature=agent.temperature,
        max_tokens=agent.max_tokens,
    )
