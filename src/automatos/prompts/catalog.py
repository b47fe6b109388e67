"""The prompts of the stages as the code ships them: version 1 of each slug in the registry.

A template is ``str.format`` text whose placeholders are the fields its stage fills (a
literal brace is doubled). Only those names may appear, bare: no attribute or index access,
no conversion or format spec, so that a template stored by anyone cannot reach into the
engine's objects or pad a field to gigabytes.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from automatos.errors import PromptError

__all__ = ["CATALOG", "PromptSpec", "check_template", "render"]


@dataclass(frozen=True)
class PromptSpec:
    """A stage's prompt: its slug, what it is for, the fields it may use and its built-in text."""

    slug: str
    stage: str
    purpose: str
    fields: frozenset[str]
    text: str
    required: frozenset[str] = frozenset()
    """Fields a version must keep: without them the stage would lose what it is for (an
    executor template without ``{step}`` would never show the agent its step)."""
    untestable: str = ""
    """Why an A/B test of this slug cannot be decided by stage 7's Q (empty: it can)."""


DECOMPOSER = """\
You are the planner of a workflow engine. Split the user's request into the subtasks that a \
team of agents should carry out, and say which subtasks need the results of which others.

Rules:
- Give each subtask a short unique id in snake_case.
- "depends_on" lists the ids of the subtasks whose results this one needs; subtasks that do \
not need each other must not depend on each other, so that they can run in parallel.
- No subtask may depend on itself, directly or through others.
- Use between 1 and {max_subtasks} subtasks; prefer few, substantial ones.
- "complexity" is 1 (trivial) to 5 (hard).
- "requires_context" is true only when the subtask needs documents or facts beyond the request.
- "expected_output" says what the subtask must deliver.
- The last subtask usually combines the others into the answer the user asked for.

Answer with JSON only, in this shape:
{{"subtasks": [{{"id": "research_a", "description": "...", "depends_on": [], \
"requires_context": false, "complexity": 2, "expected_output": "..."}}]}}"""

SELECTOR = """\
You assign the best agent to each subtask of a plan. For each candidate you are given what it \
is for and what was measured on its past runs: success rate, average quality (0 to 1), \
average latency, number of executions and average cost. Prefer agents whose capabilities fit \
the subtask and whose measured quality and success are high; trust measurements more when \
they come from many executions; consider cost and latency when quality is similar. Give each \
subtask exactly one agent, with your confidence (0 to 1) and a one-line reason.
Answer with JSON only: {{"assignments": [{{"subtask_id": "...", "agent": "...", \
"confidence": 0.8, "reason": "..."}}]}}"""

NEGOTIATOR = """\
You are {agent}, one agent of a team about to carry out the plan below. Review the plan and \
the subtasks assigned to you before the work starts. Propose a change only where it makes the \
plan clearly better: split a subtask that is really two jobs, merge two that duplicate each \
other, reassign a subtask to an agent that fits it better, add or drop a dependency, or add a \
step the plan is missing. Most plans need no change: then answer with an empty list.
Answer with JSON only: {{"proposals": [{{"kind": "split", "subtask": "...", "into": \
[{{"id": "...", "description": "..."}}], "reason": "..."}}]}}
Kinds and their fields: split (subtask, into: list of id and description), merge (subtasks: \
two ids, id, description), reassign (subtask, agent), add_dependency (subtask, depends_on), \
drop_dependency (subtask, depends_on), add_step (id, description, depends_on: ids it needs, \
needed_by: ids that need it). Every proposal has a one-line reason."""

ARBITER = """\
You are the planner of a workflow engine. Agents of the team reviewed your plan and each \
proposed changes that no other agent proposed. Accept a proposal only if it makes the plan \
clearly better for the request; reject it otherwise. Give each proposal, by its number, your \
decision and a one-line reason.
Answer with JSON only: {{"decisions": [{{"proposal": 1, "accept": true, "reason": "..."}}]}}"""

EXECUTOR = """\
Overall request:
{request}

Your step ({step_id}):
{step}"""

FINDINGS = (
    'If later steps should know something from your work, end your answer with "Findings:" '
    "and one line per finding (at most {max_findings}), each starting with FACT:, DECISION: "
    "or QUESTION: (a question left open). Leave this out if there is nothing to share."
)

JUDGE = """\
You grade one answer written by an agent for one step of a larger task. Score each \
dimension from 0 to 1 and give a one-line reason:
- completeness: does the answer do everything the step asks, to the end (not cut off)?
- accuracy: is it correct, consistent with the request and the facts, free of contradictions?
- coherence: is it on topic, well organised, free of repetition?
An empty answer, a refusal, or an answer to a different question scores near 0 on all three.
Answer with JSON only: {{"completeness": {{"score": 0.9, "reason": "..."}}, "accuracy": \
{{"score": 0.8, "reason": "..."}}, "coherence": {{"score": 0.9, "reason": "..."}}}}"""

SYNTHESISER = (
    "You write the final answer of a multi-step task. Combine the results of the final "
    "steps below into one complete answer to the request. Keep every fact they give; do not "
    "mention the steps themselves."
)

CATALOG: Mapping[str, PromptSpec] = MappingProxyType(
    {
        spec.slug: spec
        for spec in (
            PromptSpec(
                "decomposer",
                "decompose",
                "system prompt of stage 1: plans the request into subtasks",
                frozenset({"max_subtasks"}),
                DECOMPOSER,
            ),
            PromptSpec(
                "selector",
                "select_agents",
                "system prompt of stage 2: chooses an agent for each subtask",
                frozenset(),
                SELECTOR,
            ),
            PromptSpec(
                "negotiator",
                "negotiate",
                "system prompt of stage 2b: an agent reviews the plan and proposes changes",
                frozenset({"agent"}),
                NEGOTIATOR,
            ),
            PromptSpec(
                "arbiter",
                "negotiate",
                "system prompt of stage 2b's planner: accepts or rejects a lone agent's proposal",
                frozenset(),
                ARBITER,
            ),
            PromptSpec(
                "executor",
                "execute",
                "the step as an agent gets it in stage 4 (after the agent's own system prompt)",
                frozenset({"request", "step_id", "step"}),
                EXECUTOR,
                frozenset({"step"}),
            ),
            PromptSpec(
                "findings",
                "coordinate",
                "what a step is asked to share with later steps (stage 4b), after its step",
                frozenset({"max_findings"}),
                FINDINGS,
            ),
            PromptSpec(
                "judge",
                "assess",
                "system prompt of the judge of stage 7: its rubric",
                frozenset(),
                JUDGE,
                untestable="the judge produces Q itself: a lenient candidate would win",
            ),
            PromptSpec(
                "synthesiser",
                "respond",
                "system prompt of stage 9: combines the final steps into one answer",
                frozenset(),
                SYNTHESISER,
                untestable="the synthesis is written after stage 7 has scored the steps",
            ),
        )
    }
)
"""Every stage's prompt, by slug."""


def check_template(slug: str, text: str) -> None:
    """Refuse a template its stage could not fill.

    Raises:
        PromptError: an unknown slug, an empty text, unbalanced braces, or a placeholder
            that is not one of the slug's fields (or that uses attribute or index access,
            a conversion or a format spec).
    """
    spec = CATALOG.get(slug)
    if spec is None:
        raise PromptError(f"unknown prompt slug {slug!r}; the slugs are {', '.join(CATALOG)}")
    if not text.strip():
        raise PromptError(f"the template for {slug!r} is empty")
    if "\x00" in text:
        raise PromptError(f"the template for {slug!r} contains a NUL character (\\x00)")
    try:
        parts = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise PromptError(
            f"the template for {slug!r} does not parse ({exc}): a literal brace is written "
            "twice, {{ or }}"
        ) from None
    allowed = ", ".join("{" + f + "}" for f in sorted(spec.fields)) or "none"
    used = {name for _, name, _, _ in parts if name is not None}
    missing = sorted(spec.required - used)
    if missing:
        raise PromptError(
            f"the template for {slug!r} leaves out "
            + ", ".join("{" + f + "}" for f in missing)
            + ", which its stage needs: without it the model never sees what it is for"
        )
    for _, name, spec_text, conversion in parts:
        if name is None:
            continue
        if name not in spec.fields or spec_text or conversion:
            shown = "{" + name + (f"!{conversion}" if conversion else "")
            shown += (f":{spec_text}" if spec_text else "") + "}"
            raise PromptError(
                f"the template for {slug!r} uses the placeholder {shown}, which its stage "
                f"does not fill; its placeholders are {allowed} (a literal brace is written "
                "twice, {{ or }})"
            )


def render(text: str, fields: Mapping[str, object]) -> str:
    """``text`` with its placeholders filled (it was checked by :func:`check_template`)."""
    return text.format_map(dict(fields))
