"""Stage 1, decomposition: the request becomes a checked dependency graph of subtasks.

The model is asked for JSON of :class:`Decomposition`; the answer is parsed and put through
:func:`automatos.graph.build_plan`. Anything wrong with it — broken JSON, wrong types,
duplicate ids, dangling or cyclic dependencies, a limit exceeded — is shown to the model once
for repair; a second failure raises the typed error of what is still wrong.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from automatos.domain.plan import Plan, SubtaskSpec
from automatos.domain.result import LLMCall
from automatos.errors import InvalidRequestError, PlanLimitError, PlanParseError
from automatos.graph import build_plan
from automatos.llm.base import Message
from automatos.llm.structured import complete_structured, describe_error, extract_json
from automatos.phases.state import WorkflowState
from automatos.settings import PlanLimits

__all__ = ["DecomposeStage", "Decomposition", "RecipeStage", "decomposition_messages", "parse_plan"]


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


def decomposition_messages(request: str, limits: PlanLimits) -> list[Message]:
    """The prompt of stage 1."""
    return [
        Message("system", SYSTEM_PROMPT.format(max_subtasks=limits.max_subtasks)),
        Message("user", f"Request:\n{request}"),
    ]


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
        drafts = Decomposition.model_validate_json(body).subtasks
    except ValidationError as exc:
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

    async def run(self, state: WorkflowState) -> None:
        """Plan the request."""
        settings = state.runtime.settings
        limits = settings.plan
        if len(state.request.text) > limits.max_request_chars:
            raise InvalidRequestError(
                f"the request is {len(state.request.text)} characters long; the limit is "
                f"{limits.max_request_chars} (setting plan.max_request_chars)"
            )
        answer = await complete_structured(
            state.runtime.llm,
            decomposition_messages(state.request.text, limits),
            lambda text: parse_plan(text, limits),
            json_schema=Decomposition.model_json_schema(),
            temperature=0.2,
        )
        state.llm_calls.extend(
            LLMCall(
                stage=self.name,
                model=c.model,
                tokens_in=c.tokens_in,
                tokens_out=c.tokens_out,
                cost_usd=c.cost_usd,
                latency_s=c.latency_s,
            )
            for c in answer.completions
        )
        state.plan = answer.value


class RecipeStage:
    """A recipe brings its own subtasks: they pass the same checks as a decomposed plan."""

    name = "recipe"

    async def run(self, state: WorkflowState) -> None:
        """Check the recipe's subtasks."""
        specs = state.request.subtasks or ()
        state.plan = build_plan(specs, state.runtime.settings.plan)
