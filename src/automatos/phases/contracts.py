"""What a stage is, and the check that a stage list can run: every input has a writer before it.

A stage names its phase and the parts of the workflow state it reads and writes (the names
below). The pipeline checks a stage list when it is built, before anything runs or is stored:
a stage list that would leave a stage without its input is refused with a typed error, not
discovered as an ``AttributeError`` halfway through a run.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Protocol

from automatos.domain.level import Phase
from automatos.errors import StageContractError, describe_value

if TYPE_CHECKING:
    from automatos.phases.state import WorkflowState

__all__ = [
    "ANSWER",
    "ASSIGNMENTS",
    "CONTEXT",
    "DIMENSIONS",
    "PLAN",
    "PROMPTS",
    "QUALITY",
    "REQUEST",
    "RESULTS",
    "RESULT_NEEDS",
    "SHARED",
    "Stage",
    "check_stages",
    "unwritten",
]

REQUEST = "request"
"""The request, its agents and budget: there before any stage."""
PLAN = "plan"
"""``state.planning.plan``"""
ASSIGNMENTS = "assignments"
"""``state.planning.assignments``"""
RESULTS = "results"
"""``state.execution.results``"""
DIMENSIONS = "dimensions"
"""``state.evaluation.dimensions``"""
QUALITY = "quality"
"""``state.evaluation.quality`` and ``quality_report``"""
CONTEXT = "context"
"""``state.preparation.context``: what stage 3 chose for each subtask. The execute stage does
not require it: without stage 3 a subtask sees its step and its dependencies' outputs."""
PROMPTS = "prompts"
"""``state.preparation.prompts``: the version of each stage's prompt (stage 3b). Stages that
use a prompt do not require it: without stage 3b they use the built-in texts."""
SHARED = "shared_context"
"""``state.execution.shared``: the workflow's shared context of findings (stage 4b)."""
ANSWER = "final_answer"
"""``state.learning.final_answer``"""

RESULT_NEEDS = frozenset({PLAN, ASSIGNMENTS, RESULTS})
"""What the workflow's result is built from, whatever the stages."""


class Stage(Protocol):
    """One stage of the pipeline.

    ``reads`` and ``writes`` name parts of the state (the constants of this module). A stage
    whose class sets ``after_deadline = False`` (planning) is skipped once the workflow's
    deadline has passed; the others still run, briefly, to account for every subtask and
    give the result (they make no model calls then: see
    :meth:`~automatos.phases.state.WorkflowState.time_left`).
    """

    name: str
    phase: Phase
    reads: frozenset[str]
    writes: frozenset[str]

    async def run(self, state: WorkflowState) -> None:
        """Advance ``state``."""
        ...


def check_stages(stages: Sequence[Stage], available: Iterable[str] = (REQUEST,)) -> None:
    """Refuse a stage list in which a stage reads what no stage before it writes.

    Raises:
        StageContractError: naming the first such stage and what it misses; also for a
            stage that declares no contract, for two stages of one name, and for a list
            after which the result's plan, assignments or results would be missing.
    """
    have = set(available)
    seen: set[str] = set()
    for index, stage in enumerate(stages):
        name = _name_of(stage, index)
        if not isinstance(getattr(stage, "name", None), str) or not stage.name:
            raise StageContractError(f"stage {name} has no name: give it a `name` (a string)")
        if not inspect.iscoroutinefunction(getattr(stage, "run", None)):
            raise StageContractError(f"stage {name!r} needs an `async def run(self, state)`")
        if name in seen:
            raise StageContractError(f"two stages are named {name!r}: stage names must differ")
        seen.add(name)
        reads = _names(getattr(stage, "reads", None))
        writes = _names(getattr(stage, "writes", None))
        phase = getattr(stage, "phase", None)
        if reads is None or writes is None or not isinstance(phase, Phase):
            raise StageContractError(
                f"stage {name!r} declares no contract (phase {describe_value(phase)}, reads "
                f"{describe_value(getattr(stage, 'reads', None))}, writes "
                f"{describe_value(getattr(stage, 'writes', None))}): it needs a `phase` (a "
                "Phase) and `reads` and `writes` (frozensets of state names, e.g. "
                f"{{{PLAN!r}, {RESULTS!r}}})"
            )
        missing = sorted(reads - have)
        if missing:
            before = ", ".join(_name_of(s, i) for i, s in enumerate(stages[:index])) or "none"
            raise StageContractError(
                f"stage {name!r} reads {', '.join(map(repr, missing))}, which no stage before "
                f"it writes (stages before it: {before})"
            )
        have.update(writes)
    missing = sorted(RESULT_NEEDS - have)
    if missing:
        raise StageContractError(
            f"the stages never write {', '.join(map(repr, missing))}, which the workflow's "
            "result is built from"
        )


def _name_of(stage: object, index: int) -> str:
    name = getattr(stage, "name", None)
    return name if isinstance(name, str) and name else f"#{index + 1} ({type(stage).__name__})"


def unwritten(stage: Stage, state: WorkflowState) -> str | None:
    """What ``stage``, having run, left unwritten of what the result is built from and it
    declares (``None`` when all is there): a plugin that declares a plan and writes none
    is named here, not met as an ``AttributeError`` in a later stage."""
    from automatos.domain.plan import Plan

    writes = stage.writes
    if PLAN in writes and not isinstance(state.planning.plan, Plan):
        return f"it declares {PLAN!r} but the plan is {describe_value(state.planning.plan)}"
    if ASSIGNMENTS in writes:
        plan = state.planning.plan
        assigned = state.planning.assignments
        missing = [s.id for s in plan.subtasks if s.id not in assigned] if plan else []
        if missing:
            return f"it declares {ASSIGNMENTS!r} but left {', '.join(missing[:5])} without one"
    if RESULTS in writes and not isinstance(state.execution.results, dict):
        return f"it declares {RESULTS!r} but they are {describe_value(state.execution.results)}"
    shared = state.execution.shared
    if SHARED in writes and shared is not None and not _is_shared_context(shared):
        return (
            f"it declares {SHARED!r} but wrote {describe_value(shared)}, which has no async "
            "add, findings and aclose (the SharedContext Protocol)"
        )
    return None


def _is_shared_context(value: object) -> bool:
    return all(
        inspect.iscoroutinefunction(getattr(value, method, None))
        for method in ("add", "findings", "aclose")
    )


def _names(value: object) -> frozenset[str] | None:
    if isinstance(value, frozenset | set | tuple | list) and all(isinstance(v, str) for v in value):
        return frozenset(value)
    return None
