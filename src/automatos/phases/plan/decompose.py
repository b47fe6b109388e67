"""Stage 1, decomposition: the request becomes a checked dependency graph of subtasks.

The request's own structure comes first (:func:`~automatos.phases.plan.shape.shape_of`): its
separate deliverables and which of them use another's result.

A model too small to plan (its profile's ``plans_freely`` is false) is not asked at all: the
plan is that structure, each step in the request's own words
(:func:`~automatos.phases.plan.structure.plan_from_shape`). Asking the embedded 270M model
for a plan took 27-36 s and about 700 tokens a request on a two-core machine, and its plans
copied the prompt's examples into steps, cut descriptions mid-word and never ran two steps
in parallel. Letting it only reword the structure's steps, its words held to the request's by
a grammar, still took about 3 s and 200 tokens a plan and gave worse steps ("make a day by",
"1 2") than the request's own words: the plan takes well under a millisecond instead.

A capable model is asked for JSON of :class:`Decomposition`, with the deliverables as
guidance; the answer is parsed and put through :func:`automatos.graph.build_plan`. Anything
wrong with it — broken JSON, wrong types, duplicate ids, dangling or cyclic dependencies, a
limit exceeded, fewer subtasks than deliverables — is shown to the model once for repair; a
second failure raises the typed error of what is still wrong (a repaired plan with fewer
subtasks than deliverables is taken: the model may know that two of them are one).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from automatos.domain.level import Phase
from automatos.domain.plan import Plan, SubtaskSpec
from automatos.errors import PlanLimitError, PlanParseError
from automatos.graph import build_plan
from automatos.llm.base import Message
from automatos.llm.structured import (
    complete_structured,
    describe_error,
    describe_fields,
    extract_json,
    load_json,
    schema_of,
)
from automatos.phases.contracts import PLAN, REQUEST
from automatos.phases.plan.shape import RequestShape, shape_of
from automatos.phases.plan.structure import plan_from_shape
from automatos.phases.state import WorkflowState
from automatos.prompts.catalog import DECOMPOSER, render
from automatos.settings import PlanLimits

__all__ = [
    "DecomposeStage",
    "Decomposition",
    "covering_parser",
    "decomposition_messages",
    "guidance",
    "parse_plan",
]


class DraftSubtask(BaseModel):
    """A subtask as the decomposer writes it."""

    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)

    id: str = Field(min_length=1, max_length=128)
    description: str = Field(min_length=1)
    depends_on: list[str] = Field(default_factory=list)
    requires_context: bool = False
    complexity: int = Field(default=2, ge=1, le=5)
    expected_output: str = ""


class Decomposition(BaseModel):
    """The decomposer's answer."""

    model_config = ConfigDict(extra="ignore")

    subtasks: list[DraftSubtask] = Field(min_length=1)


SYSTEM_PROMPT = DECOMPOSER
"""Stage 1's built-in system prompt (the registry's ``decomposer`` slug, version 1)."""


def decomposition_messages(
    request: str,
    limits: PlanLimits,
    shape: RequestShape | None = None,
    template: str = SYSTEM_PROMPT,
) -> list[Message]:
    """The prompt of stage 1: the request, and its deliverables as guidance when it has
    several."""
    system = render(template, {"max_subtasks": limits.max_subtasks})
    user = f"Request:\n{request}"
    if shape is not None and len(shape.parts) >= 2:
        user += "\n\n" + guidance(shape, limits)
    return [Message("system", system), Message("user", user)]


def guidance(shape: RequestShape, limits: PlanLimits) -> str:
    """What the request's own structure says the plan must cover."""
    parts = shape.parts
    least = _least_subtasks(shape, limits)
    lines = [
        f"The request has {len(parts)} separate deliverables; plan at least {least} "
        "subtasks, at least one for each:"
    ]
    for n, part in enumerate(parts[:_LISTED], 1):
        uses = ", ".join(str(u + 1) for u in part.uses)
        lines.append(f"{n}. {part.text}" + (f" (uses the results of {uses})" if uses else ""))
    if len(parts) > _LISTED:
        lines.append(f"… and {len(parts) - _LISTED} more.")
    lines.append(
        "Subtasks for deliverables that do not use each other's results must not depend on "
        "each other, so that they run in parallel."
    )
    return "\n".join(lines)


_LISTED = 30
"""Deliverables the guidance lists one by one."""


def _least_subtasks(shape: RequestShape, limits: PlanLimits) -> int:
    return min(len(shape.parts), limits.max_subtasks)


def parse_plan(text: str, limits: PlanLimits) -> Plan:
    """Parse a decomposer answer into a checked plan.

    Raises:
        PlanLimitError: the answer is larger than ``limits.max_plan_chars``, or the plan
            exceeds another limit.
        PlanParseError: the answer is not JSON of the :class:`Decomposition` shape.
        PlanError: another subclass, for duplicate ids, bad dependencies or a cycle.
    """
    if len(text) > limits.max_plan_chars:
        raise PlanLimitError(
            f"the plan is {len(text)} characters long; the limit is {limits.max_plan_chars} "
            "(setting plan.max_plan_chars)"
        )
    body = extract_json(text)
    if body.startswith("["):
        body = f'{{"subtasks": {body}}}'
    try:
        drafts = Decomposition.model_validate(load_json(body)).subtasks
    except ValidationError as exc:
        raise PlanParseError(f"the plan is not valid: {describe_fields(exc)}") from exc
    except ValueError as exc:
        raise PlanParseError(f"the plan is not valid: {describe_error(exc)}") from exc
    return build_plan(to_specs(drafts), limits)


def to_specs(drafts: Sequence[DraftSubtask]) -> list[SubtaskSpec]:
    """Drafts as subtask specs."""
    return [
        SubtaskSpec(
            id=d.id.strip() or d.id,
            description=d.description,
            depends_on=tuple(dep.strip() or dep for dep in d.depends_on),
            requires_context=d.requires_context,
            complexity=d.complexity,
            expected_output=d.expected_output,
        )
        for d in drafts
    ]


def covering_parser(shape: RequestShape, limits: PlanLimits) -> Callable[[str], Plan]:
    """:func:`parse_plan`, and on the first answer a check that the plan has a subtask for
    each of the request's deliverables: a plan with fewer goes back to the model once with
    the reason; a repaired plan is taken as it is (the model may know better than the
    request's wording that two deliverables are one)."""
    answers = 0

    def parse(text: str) -> Plan:
        nonlocal answers
        answers += 1
        plan = parse_plan(text, limits)
        wanted = _least_subtasks(shape, limits)
        if answers == 1 and len(plan.subtasks) < wanted:
            raise ValueError(
                f"the plan has {len(plan.subtasks)} subtask(s) but the request has {wanted} "
                "separate deliverables: give each deliverable at least one subtask"
            )
        return plan

    return parse


class DecomposeStage:
    """Stage 1: the plan, from the request's structure (a model too small to plan) or by
    the model (guided by that structure)."""

    name = "decompose"
    phase = Phase.PLAN
    reads = frozenset({REQUEST})
    writes = frozenset({PLAN})
    after_deadline = False

    async def run(self, state: WorkflowState) -> None:
        """Plan the request."""
        settings = state.runtime.settings
        limits = settings.plan
        shape = shape_of(state.request.text)
        if not state.runtime.profile.plans_freely:
            state.planning.plan = plan_from_shape(shape, limits)
            return
        answer = await complete_structured(
            state.runtime.llm,
            decomposition_messages(
                state.request.text,
                limits,
                shape,
                state.preparation.prompts.choice("decomposer").text,
            ),
            covering_parser(shape, limits),
            json_schema=schema_of(Decomposition),
            temperature=0.2,
            # A plan must not be cut short; the local model's answer length is for prose.
            max_tokens=settings.llm.max_tokens,
            on_call=lambda done: state.record_call(self.name, done),
        )
        state.planning.plan = answer.value
