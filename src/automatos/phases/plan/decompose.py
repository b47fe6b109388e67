"""Stage 1, decomposition: the request becomes a checked dependency graph of subtasks.

The model is asked for JSON of :class:`Decomposition`; the answer is parsed and put through
:func:`automatos.graph.build_plan`. Anything wrong with it — broken JSON, wrong types,
duplicate ids, dangling or cyclic dependencies, a limit exceeded — is shown to the model once
for repair; a second failure raises the typed error of what is still wrong.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

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
)
from automatos.phases.state import WorkflowState
from automatos.settings import PlanLimits

__all__ = [
    "DecomposeStage",
    "Decomposition",
    "RecipeStage",
    "decomposition_messages",
    "numbered_schema",
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


SYSTEM_PROMPT = """\
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


# Small models copy the form of what they are shown: without examples of descriptions they
# wrote about the plan itself ("this is the first task") instead of about the request.
NUMBERED_NOTE = """
Number the subtasks: their ids are "step_1", "step_2", … in order, and a step may depend only \
on steps before it. Use {min_steps} to {max_steps} steps. Each description names what the \
request is about, in the request's own words. Examples:
Request: Explain how vaccines train the immune system.
{{"subtasks": [{{"id": "step_1", "description": "How vaccines train the immune system: list \
the facts", "depends_on": []}}, {{"id": "step_2", "description": "How vaccines train the immune \
system: write the explanation", "depends_on": ["step_1"]}}]}}
Request: Summarise the causes of the French Revolution.
{{"subtasks": [{{"id": "step_1", "description": "The causes of the French Revolution: list the \
facts", "depends_on": []}}, {{"id": "step_2", "description": "The causes of the French \
Revolution: write the summary", "depends_on": ["step_1"]}}]}}"""


def decomposition_messages(request: str, limits: PlanLimits, *, numbered: bool) -> list[Message]:
    """The prompt of stage 1."""
    system = SYSTEM_PROMPT.format(max_subtasks=limits.max_subtasks)
    if numbered:
        system += NUMBERED_NOTE.format(
            min_steps=limits.numbered_min_steps, max_steps=limits.numbered_max_steps
        )
    return [Message("system", system), Message("user", f"Request:\n{request}")]


def numbered_schema(min_steps: int, max_steps: int) -> dict[str, Any]:
    """A decomposition schema in which every valid answer is a valid plan.

    Ids are ``step_1`` … ``step_n`` and each step after the first depends on at least one
    earlier step and on nothing else, so duplicates, dangling dependencies and cycles cannot
    be written at all. Small models decoding under this schema's grammar always produce a
    plan that runs; ``n`` ranges from ``min_steps`` to ``max_steps``.
    """

    def step(i: int) -> dict[str, Any]:
        earlier = [f"step_{j}" for j in range(1, i)]
        depends: dict[str, Any] = (
            {"type": "array", "items": {"enum": earlier}, "minItems": 1, "maxItems": i - 1}
            if earlier
            else {"type": "array", "items": {"type": "string"}, "maxItems": 0}
        )
        return {
            "type": "object",
            "properties": {
                "id": {"const": f"step_{i}"},
                # Plain characters only: escapes and newlines make small models ramble.
                "description": {"type": "string", "pattern": "^[A-Za-z0-9 ,.;:()'-]{8,100}$"},
                "depends_on": depends,
            },
            "required": ["id", "description", "depends_on"],
            "additionalProperties": False,
        }

    plans = [
        {
            "type": "array",
            "prefixItems": [step(i) for i in range(1, n + 1)],
            "items": False,
            "minItems": n,
            "maxItems": n,
        }
        for n in range(min(min_steps, max_steps), max_steps + 1)
    ]
    return {
        "type": "object",
        "properties": {"subtasks": {"anyOf": plans}},
        "required": ["subtasks"],
        "additionalProperties": False,
    }


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


class DecomposeStage:
    """Stage 1: ask the model for a plan."""

    name = "decompose"
    after_deadline = False

    async def run(self, state: WorkflowState) -> None:
        """Plan the request."""
        settings = state.runtime.settings
        limits = settings.plan
        numbered = not state.runtime.profile.plans_freely
        answer = await complete_structured(
            state.runtime.llm,
            decomposition_messages(state.request.text, limits, numbered=numbered),
            lambda text: parse_plan(text, limits),
            json_schema=(
                numbered_schema(limits.numbered_min_steps, limits.numbered_max_steps)
                if numbered
                else Decomposition.model_json_schema()
            ),
            temperature=0.2,
            # A plan must not be cut short; the local model's answer length is for prose.
            max_tokens=settings.llm.max_tokens,
            on_call=lambda done: state.record_call(self.name, done),
        )
        state.planning.plan = answer.value


class RecipeStage:
    """A recipe brings its own subtasks: they pass the same checks as a decomposed plan."""

    name = "recipe"
    after_deadline = False

    async def run(self, state: WorkflowState) -> None:
        """Check the recipe's subtasks."""
        specs = state.request.subtasks or ()
        state.planning.plan = build_plan(specs, state.runtime.settings.plan)
