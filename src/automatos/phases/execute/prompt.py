"""The messages one agent gets for one subtask: its own step, the context stage 3 chose for
it, its dependencies' outputs, and (with stage 4b) the findings other agents shared and the
request to share its own.

The context items are quoted whole, as chosen: stage 3 already kept them within the subtask's
token budget.

Quoted text shares one budget, ``execution.max_quoted_chars``: findings take what they need
up to their share (:func:`~automatos.field.findings.findings_budget`, a quarter), and the
dependencies' outputs divide the rest as :func:`~automatos.phases.quotes.fit_quotes` does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from automatos.domain.agent import AgentSpec
from automatos.domain.collaboration import Finding
from automatos.domain.context import ContextItem
from automatos.domain.plan import Subtask
from automatos.domain.result import SubtaskResult
from automatos.field.findings import quote_findings
from automatos.llm.base import Message
from automatos.phases.quotes import fit_quotes
from automatos.prompts.catalog import EXECUTOR, render

__all__ = ["WHOLE_REQUEST", "is_whole_request", "quote_context", "subtask_messages"]

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
    *,
    findings: Sequence[Finding] = (),
    findings_chars: int = 0,
    instruction: str | None = None,
    context: Sequence[ContextItem] = (),
) -> tuple[Message, ...]:
    """System prompt of the agent, then the step (``template``: the registry's ``executor``
    version) with the outputs it depends on.

    With stage 4b: ``findings`` (most important first) are quoted with their provenance
    within ``findings_chars``, after the outputs, and ``instruction`` (how to share its own)
    ends the message.
    """
    if is_whole_request(request, subtask):
        text = request
    else:
        text = render(
            template, {"request": request, "step_id": subtask.id, "step": subtask.description}
        )
    if subtask.expected_output:
        text += f"\n\nExpected output:\n{subtask.expected_output}"
    if context:
        text += "\n\n" + quote_context(context)
    shared = quote_findings(findings, min(findings_chars, max_quoted_chars)) if findings else ""
    deps = subtask.graph.predecessors
    if deps:
        outputs = fit_quotes(
            [results[dep].output or "" for dep in deps],
            max_quoted_chars - len(shared),
            max_dependency_chars,
        )
        quoted = "\n\n".join(f"### {dep}\n{out}" for dep, out in zip(deps, outputs, strict=True))
        text += "\n\nResults of the steps this one depends on:\n\n" + quoted
    if shared:
        text += "\n\n" + shared
    if instruction:
        text += "\n\n" + instruction
    return (Message("system", agent.system_prompt), Message("user", text))


def quote_context(items: Sequence[ContextItem]) -> str:
    """Stage 3's items as the prompt quotes them: numbered, with where each comes from."""
    quoted = "\n\n".join(
        f"[{n}] {item.source or item.title}\n{item.text}" for n, item in enumerate(items, start=1)
    )
    return (
        "Context (from the knowledge base and earlier runs, most relevant first; use what "
        "answers the step):\n\n" + quoted
    )
