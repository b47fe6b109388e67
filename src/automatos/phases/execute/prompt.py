"""The messages one agent gets for one subtask: its own step and its dependencies' outputs."""

from __future__ import annotations

from collections.abc import Mapping

from automatos.domain.agent import AgentSpec
from automatos.domain.plan import Subtask
from automatos.domain.result import SubtaskResult
from automatos.llm.base import Message
from automatos.phases.quotes import fit_quotes
from automatos.prompts.catalog import EXECUTOR, render

__all__ = ["WHOLE_REQUEST", "is_whole_request", "subtask_messages"]

WHOLE_REQUEST = "Do what the request asks, in full."
"""The one step's description when the request is longer than a description may be: its
prompt is the request itself all the same."""


def is_whole_request(request: str, subtask: Subtask) -> bool:
    """Whether ``subtask`` is the request run as its own one step (its prompt is the request)."""
    return subtask.description in (request, WHOLE_REQUEST)


def subtask_messages(
    request: str,
    subtask: Subtask,
    agent: AgentSpec,
    results: Mapping[str, SubtaskResult],
    max_dependency_chars: int,
    max_quoted_chars: int,
    template: str = EXECUTOR,
) -> tuple[Message, ...]:
    """System prompt of the agent, then the step (``template``: the registry's ``executor``
    version) with the outputs it depends on."""
    if is_whole_request(request, subtask):
        text = request
    else:
        text = render(
            template, {"request": request, "step_id": subtask.id, "step": subtask.description}
        )
    if subtask.expected_output:
        text += f"\n\nExpected output:\n{subtask.expected_output}"
    deps = subtask.graph.predecessors
    if deps:
        outputs = fit_quotes(
            [results[dep].output or "" for dep in deps], max_quoted_chars, max_dependency_chars
        )
        quoted = "\n\n".join(f"### {dep}\n{out}" for dep, out in zip(deps, outputs, strict=True))
        text += "\n\nResults of the steps this one depends on:\n\n" + quoted
    return (Message("system", agent.system_prompt), Message("user", text))
