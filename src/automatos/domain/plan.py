"""Subtasks and the plan: the dependency graph the engine runs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["GraphMetadata", "Plan", "Subtask", "SubtaskSpec"]


class SubtaskSpec(BaseModel):
    """One subtask as the decomposer or a recipe states it, before graph analysis.

    An unknown field is refused: a misspelt ``depend_on`` would otherwise drop the
    dependencies without a word. (The decomposer's own answers are parsed leniently, into
    drafts, before they become specs.)
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    id: str = Field(min_length=1, max_length=128)
    description: str = Field(min_length=1)
    depends_on: tuple[str, ...] = ()
    requires_context: bool = False
    """Whether the subtask needs retrieved context (the PRD's Fix 4: respected, not forced)."""
    complexity: int = Field(default=2, ge=1, le=5)
    """Estimated effort, 1 (trivial) to 5 (hard); the critical path is weighted by it."""
    expected_output: str = ""
    agent: str | None = None
    """Name of a pre-assigned agent (recipes); the selection stage keeps it."""


# Subtask and GraphMetadata are built by graph analysis from already validated specs, many
# per plan, so they are slotted dataclasses: no second validation, one object each.
@dataclass(slots=True)
class GraphMetadata:
    """Where a subtask sits in the plan (the PRD's Fix 6: stage 1's graph reaches execution)."""

    layer: int
    """Topological layer, 0 for subtasks with no dependencies."""
    depth: int
    """Subtasks on the longest chain that ends here, this one included."""
    predecessors: tuple[str, ...]
    successors: tuple[str, ...]
    earliest_start: float
    """Estimated cost of the longest chain before this subtask."""
    slack: float
    """How much this subtask may be delayed without delaying the plan (estimated cost units)."""
    on_critical_path: bool


@dataclass(slots=True)
class Subtask:
    """A subtask of a checked plan (the fields of :class:`SubtaskSpec`) with its graph metadata."""

    id: str
    description: str
    depends_on: tuple[str, ...]
    requires_context: bool
    complexity: int
    expected_output: str
    agent: str | None
    graph: GraphMetadata


class Plan(BaseModel):
    """A checked, acyclic plan with its analysis."""

    model_config = ConfigDict(frozen=True)

    subtasks: tuple[Subtask, ...]
    layers: tuple[tuple[str, ...], ...]
    critical_path: tuple[str, ...]
    critical_path_cost: float

    @cached_property
    def by_id(self) -> Mapping[str, Subtask]:
        """Subtasks keyed by id."""
        return {s.id: s for s in self.subtasks}

    @property
    def sinks(self) -> tuple[str, ...]:
        """Ids of the subtasks nothing depends on, in plan order."""
        return tuple(s.id for s in self.subtasks if not s.graph.successors)
