"""The messages one agent gets for one subtask: its own step and its dependencies' outputs."""

from __future__ import annotations

from collections.abc import Mapping

from automatos.domain.agent import AgentSpec
from automatos.domain.plan import Subtask
from automatos.domain.result import SubtaskResult
from automatos.runners.base import ChatTurn

__all__ = ["subtask_messages"]


def subtask_messages(
    request: str,
    subtask: Subtask,
    agent: AgentSpec,
    results: Mapping[str, SubtaskResult],
    max_dependency_chars: int,
) -> tuple[ChatTurn, ...]:
    """System prompt of the agent, then the step with the outputs it depends on."""
    parts = [f"Overall request:\n{request}", f"Your step ({subtask.id}):\n{subtask.description}"]
    if subtask.expected_output:
        parts.append(f"Expected output:\n{subtask.expected_output}")
    if subtask.graph.predecessors:
        quoted = []
        for dep in subtask.graph.predecessors:
            output = results[dep].output or ""
            if len(output) > max_dependency_chars:
                output = output[:max_dependency_chars] + "\n[… truncated]"
            quoted.append(f"### {dep}\n{output}")
        parts.append("Results of the steps this one depends on:\n\n" + "\n\n".join(quoted))
    return (
        ChatTurn.model_construct(role="system", content=agent.system_prompt),
        ChatTurn.model_construct(role="user", content="\n\n".join(parts)),
    )
