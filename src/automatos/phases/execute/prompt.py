"""The messages one agent gets for one subtask: its own step and its dependencies' outputs."""

from __future__ import annotations

from collections.abc import Mapping

from automatos.domain.agent import AgentSpec
from automatos.domain.plan import Subtask
from automatos.domain.result import SubtaskResult
from automatos.llm.base import Message

__all__ = ["subtask_messages"]


def subtask_messages(
    request: str,
    subtask: Subtask,
    agent: AgentSpec,
    results: Mapping[str, SubtaskResult],
    max_dependency_chars: int,
) -> tuple[Message, ...]:
    """System prompt of the agent, then the step with the outputs it depends on."""
    text = f"Overall request:\n{request}\n\nYour step ({subtask.id}):\n{subtask.description}"
    if subtask.expected_output:
        text += f"\n\nExpected output:\n{subtask.expected_output}"
    if subtask.graph.predecessors:
        quoted = []
        for dep in subtask.graph.predecessors:
            output = results[dep].output or ""
            if len(output) > max_dependency_chars:
                output = output[:max_dependency_chars] + "\n[… truncated]"
            quoted.append(f"### {dep}\n{output}")
        text += "\n\nResults of the steps this one depends on:\n\n" + "\n\n".join(quoted)
    return (Message("system", agent.system_prompt), Message("user", text))
