"""The changes an agent may propose to a plan in stage 2b, and how one is applied.

An agent's answer is JSON of :class:`Review`: a list of proposals, each one of six kinds
told apart by ``kind`` (a discriminated union), each with a one-line ``reason``. Stage 2b
validates each proposal on its own (:func:`read_proposal`), so that one wrong proposal does
not cost the agent the others:

=================  ==========================================================================
kind               what it changes
=================  ==========================================================================
split              one subtask becomes two or more parts
merge              two subtasks become one
reassign           a subtask gets another agent
add_dependency     a subtask waits for another's result
drop_dependency    a subtask no longer waits for another's result
add_step           a new subtask, after ``depends_on`` and before ``needed_by``
=================  ==========================================================================

:func:`apply` applies one proposal to a :class:`Draft` (a checked plan and the agent of each
subtask) and returns the new draft, or a :class:`Rejection` naming why not. It never
mutates its input, and every draft it returns was rebuilt by
:func:`automatos.graph.build_plan` under the plan limits: a change that would make a cycle,
a dangling or duplicate id, or exceed a limit is rejected with the graph error's message.

How each change treats what it touches:

- split: the parts take the split subtask's place. Each part inherits its dependencies (a
  part may also depend on other parts, or on other subtasks of the plan), its agent, its
  need of context and its share of its complexity; whatever depended on it depends on every
  part, so that nothing that used its result loses any of it.
- merge: the merged subtask takes the place of the first of the two in the plan, with the
  union of their dependencies, their dependents rewired to it, the sum of their complexity
  (at most 5), and the agent of the subtask named first in ``subtasks`` (unless a recipe
  fixed the other's).
- add_step: the new subtask goes to the agent that proposed it (the first of them, when
  several agreed), placed before the first subtask that needs it.
- A subtask whose agent a recipe fixed (its ``agent`` field) keeps it: reassigning it is
  rejected, its parts keep the agent, and a merge of two subtasks fixed to different agents
  is rejected. The recipe's author chose that agent; a reviewer's taste does not overrule
  them.
- A proposal that would change nothing (a reassignment to the agent it has, a dependency
  already there or not there) is rejected as such, so that a round of only such proposals
  ends the negotiation.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    field_validator,
)

from automatos.domain.plan import Plan, Subtask, SubtaskSpec
from automatos.errors import PlanError
from automatos.graph import build_plan
from automatos.llm.structured import describe_fields
from automatos.phases.quotes import CUT_MARK
from automatos.settings import PlanLimits

__all__ = [
    "MAX_CHANGE_CHARS",
    "MAX_CHANGE_ITEMS",
    "MAX_REASON_CHARS",
    "AddDependency",
    "AddStep",
    "Draft",
    "DropDependency",
    "Merge",
    "Part",
    "Proposal",
    "Reassign",
    "Rejection",
    "Review",
    "Split",
    "apply",
    "as_change",
    "consensus_key",
    "read_proposal",
    "spec_of",
]

MAX_REASON_CHARS = 500
"""Longest reason kept from a proposal; a longer one is cut, not refused."""
MAX_CHANGE_CHARS = 500
"""Longest string of a proposal as events and the record show it (:func:`as_change`)."""
MAX_CHANGE_ITEMS = 20
"""Most items of a list of a proposal as events and the record show it."""

Id = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
"""A subtask's id or an agent's name, as :class:`~automatos.domain.plan.SubtaskSpec` bounds
it."""
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class _Change(BaseModel):
    """What every proposal has: a kind and a reason."""

    # Models add fields of their own ("confidence", "priority"): ignored, as the
    # decomposer's drafts ignore them.
    model_config = ConfigDict(frozen=True, extra="ignore", allow_inf_nan=False)

    reason: str = ""

    @field_validator("reason")
    @classmethod
    def _short(cls, reason: str) -> str:
        return reason.strip()[:MAX_REASON_CHARS]


class Part(BaseModel):
    """One part of a split subtask."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: Id
    description: Text
    depends_on: tuple[Id, ...] = ()
    """Other parts (or other subtasks of the plan) this part needs, besides what the split
    subtask needed."""


class Split(_Change):
    """Split ``subtask`` into the parts ``into``."""

    kind: Literal["split"]
    subtask: Id
    into: tuple[Part, ...] = Field(min_length=2)


class Merge(_Change):
    """Merge the two ``subtasks`` into one with ``id`` and ``description``."""

    kind: Literal["merge"]
    subtasks: tuple[Id, Id]
    id: Id
    description: Text

    @field_validator("subtasks")
    @classmethod
    def _two(cls, ids: tuple[str, str]) -> tuple[str, str]:
        if ids[0] == ids[1]:
            raise ValueError(f"a merge needs two different subtasks, not {ids[0]!r} twice")
        return ids


class Reassign(_Change):
    """Give ``subtask`` to ``agent``."""

    kind: Literal["reassign"]
    subtask: Id
    agent: Id


class AddDependency(_Change):
    """Make ``subtask`` wait for ``depends_on``."""

    kind: Literal["add_dependency"]
    subtask: Id
    depends_on: Id


class DropDependency(_Change):
    """Let ``subtask`` no longer wait for ``depends_on``."""

    kind: Literal["drop_dependency"]
    subtask: Id
    depends_on: Id


class AddStep(_Change):
    """Add a subtask the plan misses, after ``depends_on`` and before ``needed_by``."""

    kind: Literal["add_step"]
    id: Id
    description: Text
    depends_on: tuple[Id, ...] = ()
    needed_by: tuple[Id, ...] = ()


Proposal = Annotated[
    Split | Merge | Reassign | AddDependency | DropDependency | AddStep,
    Field(discriminator="kind"),
]
"""One proposed change, of any kind."""


class Review(BaseModel):
    """An agent's answer: its proposals (an empty list when the plan needs no change)."""

    model_config = ConfigDict(extra="ignore")

    proposals: list[Proposal]


_PROPOSAL: TypeAdapter[Proposal] = TypeAdapter(Proposal)


@dataclass(frozen=True, slots=True)
class Draft:
    """A plan under negotiation: the checked plan, and the agent of each of its subtasks."""

    plan: Plan
    agents: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a proposal was not applied; ``error`` is the graph check's error class when the
    changed plan failed one (``None`` when the proposal was refused before that)."""

    reason: str
    error: type[PlanError] | None = None


def as_change(proposal: Proposal) -> dict[str, Any]:
    """``proposal`` as JSON, its kind first: how events, the record and the planner show it.

    Its strings are cut to :data:`MAX_CHANGE_CHARS` characters and its lists to
    :data:`MAX_CHANGE_ITEMS` items (the rest counted in a last item), so that one proposal
    cannot put megabytes into the events and the run's record.
    """
    bounded: dict[str, Any] = _bounded({"kind": proposal.kind, **proposal.model_dump(mode="json")})
    return bounded


def _bounded(value: Any) -> Any:
    if isinstance(value, str):
        if len(value) <= MAX_CHANGE_CHARS:
            return value
        return value[:MAX_CHANGE_CHARS] + CUT_MARK
    if isinstance(value, dict):
        return {k: _bounded(v) for k, v in value.items()}
    if isinstance(value, list):
        kept = [_bounded(v) for v in value[:MAX_CHANGE_ITEMS]]
        more = len(value) - MAX_CHANGE_ITEMS
        return [*kept, f"[… and {more} more]"] if more > 0 else kept
    return value


def spec_of(subtask: Subtask) -> SubtaskSpec:
    """The spec a checked subtask was built from."""
    return SubtaskSpec(
        id=subtask.id,
        description=subtask.description,
        depends_on=subtask.depends_on,
        requires_context=subtask.requires_context,
        complexity=subtask.complexity,
        expected_output=subtask.expected_output,
        agent=subtask.agent,
    )


def consensus_key(proposal: Proposal) -> tuple[object, ...]:
    """What makes two agents' proposals the same change: proposals with equal keys agree.

    The key is the whole change, normalised: its kind and every field that decides what it
    does to the plan (the reason is not one). Descriptions compare without regard to case or
    spacing, lists of ids (dependencies, ``needed_by``, the parts of a split) without regard
    to order. The order of a merge's ``subtasks`` counts: the first one's agent gets the
    merged subtask. Two splits of the same subtask into different parts, or two steps of
    the same id with different neighbours, are different changes.
    """
    match proposal:
        case Split():
            parts = sorted(
                (part.id, _words(part.description), _ids(part.depends_on)) for part in proposal.into
            )
            return ("split", proposal.subtask, tuple(parts))
        case Merge():
            return ("merge", proposal.subtasks, proposal.id, _words(proposal.description))
        case Reassign():
            return ("reassign", proposal.subtask, proposal.agent)
        case AddDependency() | DropDependency():
            return (proposal.kind, proposal.subtask, proposal.depends_on)
        case AddStep():
            return (
                "add_step",
                proposal.id,
                _words(proposal.description),
                _ids(proposal.depends_on),
                _ids(proposal.needed_by),
            )


def _words(text: str) -> str:
    return " ".join(text.split()).casefold()


def _ids(ids: Sequence[str]) -> tuple[str, ...]:
    return tuple(sorted(set(ids)))


def read_proposal(item: object) -> Proposal:
    """One proposal of an answer's list, validated on its own.

    Raises:
        ValidationError: it is not a proposal of a known kind with valid fields.
    """
    return _PROPOSAL.validate_python(item)


def apply(
    proposal: Proposal,
    draft: Draft,
    *,
    proposer: str,
    agents: Collection[str],
    limits: PlanLimits,
) -> Draft | Rejection:
    """``draft`` with ``proposal`` applied, or why it cannot be.

    ``proposer`` is the agent a new step goes to; ``agents`` are the names a reassignment
    may use; ``limits`` are the plan limits the changed plan must keep.
    """
    specs = [spec_of(s) for s in draft.plan.subtasks]
    owners = dict(draft.agents)
    by_id = {s.id: s for s in specs}
    outcome: tuple[list[SubtaskSpec], dict[str, str]] | Rejection
    try:
        match proposal:
            case Split():
                outcome = _split(proposal, specs, by_id, owners)
            case Merge():
                outcome = _merge(proposal, specs, by_id, owners)
            case Reassign():
                outcome = _reassign(proposal, specs, by_id, owners, agents)
            case AddDependency() | DropDependency():
                outcome = _dependency(proposal, specs, by_id, owners)
            case AddStep():
                outcome = _add_step(proposal, specs, by_id, owners, proposer)
    except ValidationError as exc:  # a spec the changed plan cannot have
        return Rejection(f"the changed subtask is not valid: {describe_fields(exc)}")
    if isinstance(outcome, Rejection):
        return outcome
    new_specs, new_owners = outcome
    try:
        plan = build_plan(new_specs, limits)
    except PlanError as exc:
        return Rejection(f"it would break the plan: {exc}", type(exc))
    return Draft(plan, new_owners)


_Edit = tuple[list[SubtaskSpec], dict[str, str]] | Rejection


def _unknown(ids: Sequence[str], by_id: Mapping[str, SubtaskSpec]) -> Rejection | None:
    missing = [i for i in dict.fromkeys(ids) if i not in by_id]
    if not missing:
        return None
    names = ", ".join(repr(i) for i in missing)
    return Rejection(f"it names no subtask of the plan: {names} (the plan has {_listed(by_id)})")


def _listed(names: Collection[str], most: int = 20) -> str:
    shown = list(names)[:most]
    more = len(names) - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


def _rewired(spec: SubtaskSpec, old: Collection[str], new: Sequence[str]) -> SubtaskSpec:
    """``spec`` with its dependencies on ``old`` replaced by dependencies on ``new``."""
    if not any(d in old for d in spec.depends_on):
        return spec
    deps: list[str] = []
    for d in spec.depends_on:
        deps.extend(new if d in old else (d,))
    return spec.model_copy(update={"depends_on": tuple(dict.fromkeys(deps))})


def _split(
    p: Split,
    specs: list[SubtaskSpec],
    by_id: Mapping[str, SubtaskSpec],
    owners: dict[str, str],
) -> _Edit:
    missing = _unknown([p.subtask], by_id)
    if missing is not None:
        return missing
    old = by_id[p.subtask]
    share = max(1, -(-old.complexity // len(p.into)))  # each part a share, rounded up
    parts = [
        SubtaskSpec(
            id=part.id,
            description=part.description,
            depends_on=tuple(dict.fromkeys((*old.depends_on, *part.depends_on))),
            requires_context=old.requires_context,
            complexity=share,
            agent=old.agent,
        )
        for part in p.into
    ]
    ids = [part.id for part in parts]
    new: list[SubtaskSpec] = []
    for s in specs:
        new.extend(parts if s is old else (_rewired(s, {old.id}, ids),))
    agent = owners.pop(old.id)
    owners.update((i, agent) for i in ids)
    return new, owners


def _merge(
    p: Merge,
    specs: list[SubtaskSpec],
    by_id: Mapping[str, SubtaskSpec],
    owners: dict[str, str],
) -> _Edit:
    missing = _unknown(p.subtasks, by_id)
    if missing is not None:
        return missing
    first, second = (by_id[i] for i in p.subtasks)
    if first.agent and second.agent and first.agent != second.agent:
        return Rejection(
            f"the recipe fixed {first.id!r} to {first.agent!r} and {second.id!r} to "
            f"{second.agent!r}: one subtask cannot keep both"
        )
    pair = {first.id, second.id}
    deps = [d for d in (*first.depends_on, *second.depends_on) if d not in pair]
    outputs = [o for o in (first.expected_output, second.expected_output) if o]
    merged = SubtaskSpec(
        id=p.id,
        description=p.description,
        depends_on=tuple(dict.fromkeys(deps)),
        requires_context=first.requires_context or second.requires_context,
        complexity=min(5, first.complexity + second.complexity),
        expected_output="\n".join(outputs),
        agent=first.agent or second.agent,
    )
    new: list[SubtaskSpec] = []
    placed = False
    for s in specs:
        if s.id in pair:
            if not placed:  # where the earlier of the two was
                new.append(merged)
                placed = True
            continue
        new.append(_rewired(s, pair, [merged.id]))
    agent = merged.agent or owners[first.id]
    for i in pair:
        del owners[i]
    owners[merged.id] = agent
    return new, owners


def _reassign(
    p: Reassign,
    specs: list[SubtaskSpec],
    by_id: Mapping[str, SubtaskSpec],
    owners: dict[str, str],
    agents: Collection[str],
) -> _Edit:
    missing = _unknown([p.subtask], by_id)
    if missing is not None:
        return missing
    if p.agent not in agents:
        return Rejection(f"it names no known agent: {p.agent!r} (the agents are {_listed(agents)})")
    fixed = by_id[p.subtask].agent
    if fixed:
        return Rejection(f"the recipe fixed the agent of {p.subtask!r} to {fixed!r}")
    if owners[p.subtask] == p.agent:
        return Rejection(f"{p.subtask!r} is already assigned to {p.agent!r}: nothing to change")
    owners[p.subtask] = p.agent
    return specs, owners


def _dependency(
    p: AddDependency | DropDependency,
    specs: list[SubtaskSpec],
    by_id: Mapping[str, SubtaskSpec],
    owners: dict[str, str],
) -> _Edit:
    """Add or drop one edge of the graph (which by ``p``'s kind)."""
    missing = _unknown([p.subtask, p.depends_on], by_id)
    if missing is not None:
        return missing
    spec = by_id[p.subtask]
    has = p.depends_on in spec.depends_on
    if isinstance(p, AddDependency):
        if has:
            return Rejection(
                f"{p.subtask!r} already depends on {p.depends_on!r}: nothing to change"
            )
        deps = (*spec.depends_on, p.depends_on)
    else:
        if not has:
            return Rejection(f"{p.subtask!r} does not depend on {p.depends_on!r}: nothing to drop")
        deps = tuple(d for d in spec.depends_on if d != p.depends_on)
    changed = spec.model_copy(update={"depends_on": deps})
    return [changed if s is spec else s for s in specs], owners


def _add_step(
    p: AddStep,
    specs: list[SubtaskSpec],
    by_id: Mapping[str, SubtaskSpec],
    owners: dict[str, str],
    proposer: str,
) -> _Edit:
    missing = _unknown([*p.depends_on, *p.needed_by], by_id)
    if missing is not None:
        return missing
    step = SubtaskSpec(id=p.id, description=p.description, depends_on=p.depends_on)
    needed_by = set(p.needed_by)
    new: list[SubtaskSpec] = []
    placed = False
    for s in specs:
        if s.id in needed_by:
            if not placed:  # before the first subtask that needs it
                new.append(step)
                placed = True
            s = s.model_copy(update={"depends_on": (*s.depends_on, step.id)})
        new.append(s)
    if not placed:
        new.append(step)
    if p.id in owners:  # the graph check names the duplicate; the owner must not change
        return new, owners
    owners[p.id] = proposer
    return new, owners
