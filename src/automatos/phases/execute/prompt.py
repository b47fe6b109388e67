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

from collections.abc import Callable, Mapping, Sequence

from automatos.domain.agent import AgentSpec
from automatos.domain.collaboration import Finding
from automatos.domain.context import ContextItem, item_header
from automatos.domain.plan import Subtask
from automatos.domain.result import SubtaskResult
from automatos.field.findings import quote_findings
from automatos.llm.base import Message
from automatos.phases.quotes import fit_quotes
from automatos.prompts.catalog import EXECUTOR, render

__all__ = [
    "CONTEXT_HEADING",
    "MEMORY_HEADING",
    "WHOLE_REQUEST",
    "fit_context",
    "is_whole_request",
    "quote_context",
    "subtask_messages",
]

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


CONTEXT_HEADING = "Context (from the knowledge base; use what answers the step):"
MEMORY_HEADING = "Earlier runs' notes (unverified, not a source):"


def quote_context(items: Sequence[ContextItem]) -> str:
    """Stage 3's items as the prompt quotes them: numbered, with where each comes from; the
    knowledge base's first, then, apart and named as such, the memories of earlier runs."""
    chunks = [i for i in items if i.kind == "chunk"]
    notes = [i for i in items if i.kind != "chunk"]
    blocks = []
    number = 0
    for heading, group in ((CONTEXT_HEADING, chunks), (MEMORY_HEADING, notes)):
        if not group:
            continue
        quoted = []
        for item in group:
            number += 1
            quoted.append(f"{item_header(number, item.source or item.title)}{item.text}")
        blocks.append(heading + "\n\n" + "\n\n".join(quoted))
    return "\n\n".join(blocks)


def fit_context(
    build: Callable[[tuple[ContextItem, ...]], tuple[Message, ...]],
    items: tuple[ContextItem, ...],
    limit: int,
    count_tokens: Callable[[str], int],
) -> tuple[tuple[Message, ...], int]:
    """The messages ``build`` makes with as many of ``items`` as keep them within ``limit``
    tokens, leaving out the least valuable first; and how many were left out. Stage 3 kept
    the items within their budget; this keeps the whole prompt within the model's window,
    whatever the step and its dependencies' outputs take."""
    kept = items
    while True:
        messages = build(kept)
        if not kept or count_tokens("\n\n".join(m.content for m in messages)) <= limit:
            return messages, len(items) - len(kept)
        weakest = min(range(len(kept)), key=lambda i: kept[i].value)
        kept = kept[:weakest] + kept[weakest + 1 :]
