"""The one executor of an agent task: what a runner does with a task, in any process.

The local runner calls it on the orchestrator's event loop; ``automatos worker`` calls it
for each job it takes from the queue. Both therefore send the same messages to the same
model with the same agent settings, run the same tool loop, and give back the same
:class:`Completion`.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

from automatos.llm.base import Completion, LLMProvider
from automatos.phases.execute.tool_loop import Toolbox, run_tool_loop
from automatos.runners.base import AgentTask

__all__ = ["execute"]


def execute(
    llm: LLMProvider, task: AgentTask, toolbox: Toolbox | None = None
) -> Coroutine[Any, Any, Completion]:
    """One call of the agent's model with the task's messages; with a ``toolbox`` (an agent
    that has tools, as its host resolved them: :meth:`~automatos.tools.host.ToolHost.
    toolbox`), the tool loop of :mod:`~automatos.phases.execute.tool_loop` instead.

    A plain function returning the model's coroutine: one coroutine frame less per subtask.
    The provider (a :class:`~automatos.llm.managed.ManagedLLM`) gives each call its timeout
    and retries transient model errors; the attempt's own timeout is its caller's.
    """
    agent = task.agent
    if toolbox is not None:
        return run_tool_loop(llm, task, toolbox)
    return llm.complete(
        task.messages,
        model=agent.model,
        temperature=agent.temperature,
        max_tokens=agent.max_tokens,
    )
