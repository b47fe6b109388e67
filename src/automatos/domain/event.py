"""Typed events, numbered in the order they happened within one workflow."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

__all__ = [
    "ContextSelected",
    "Event",
    "FindingShared",
    "LevelChosen",
    "MemoriesStored",
    "PlanNegotiated",
    "PlanReady",
    "PromptsChosen",
    "ProposalDecided",
    "StageFinished",
    "StageStarted",
    "SubtaskFinished",
    "SubtaskQueued",
    "SubtaskRetried",
    "SubtaskSkipped",
    "SubtaskStarted",
    "ToolCalled",
    "WorkflowFinished",
    "WorkflowResumed",
    "WorkflowStarted",
    "event_to_dict",
]


# Frozen slotted dataclasses rather than pydantic models: a run emits several events per
# subtask, and these sit on the dispatcher's hot path.
@dataclass(slots=True)
class Event:
    """Base of all events: ``seq`` counts from 1 within a workflow; ``at`` is a Unix time."""

    kind: ClassVar[str] = "event"
    seq: int
    workflow_id: str
    at: float


@dataclass(slots=True)
class WorkflowStarted(Event):
    """A workflow began."""

    kind: ClassVar[str] = "workflow_started"
    request: str


@dataclass(slots=True)
class WorkflowResumed(Event):
    """A workflow whose process stopped before it ended (killed, or a server shutting down)
    goes on in this process, under the same id, its events numbered on from the stored ones.

    ``carried`` maps each subtask whose stored result is kept (not run again) to that
    result's status; ``carried_over`` is how many, ``remaining`` how many run now.
    ``replanned`` is true when the run stopped before its plan was saved: it starts over
    from planning, with nothing carried over.
    """

    kind: ClassVar[str] = "workflow_resumed"
    carried_over: int
    remaining: int
    carried: dict[str, str]
    replanned: bool = False


@dataclass(slots=True)
class WorkflowFinished(Event):
    """A workflow ended; ``status`` is a :class:`~automatos.domain.result.WorkflowStatus`."""

    kind: ClassVar[str] = "workflow_finished"
    status: str
    elapsed_s: float


@dataclass(slots=True)
class LevelChosen(Event):
    """The workflow's complexity level, why, and the stages it runs.

    ``level`` is an :class:`~automatos.domain.level.Level` value; ``source`` says who set it
    (``caller``, ``settings``, ``features`` or ``model``); ``skipped`` maps each stage not run
    to the reason.
    """

    kind: ClassVar[str] = "level_chosen"
    level: str
    source: str
    reasons: list[str]
    stages: list[str]
    skipped: dict[str, str]


@dataclass(slots=True)
class StageStarted(Event):
    """A stage of ``phase`` (plan, prepare, execute, evaluate, learn) began."""

    kind: ClassVar[str] = "stage_started"
    stage: str
    phase: str = ""


@dataclass(slots=True)
class StageFinished(Event):
    """A stage ended, successfully or with ``error``."""

    kind: ClassVar[str] = "stage_finished"
    stage: str
    elapsed_s: float
    error: str | None = None
    phase: str = ""


@dataclass(slots=True)
class SubtaskStarted(Event):
    """An attempt at a subtask began."""

    kind: ClassVar[str] = "subtask_started"
    subtask_id: str
    agent: str
    attempt: int


@dataclass(slots=True)
class SubtaskRetried(Event):
    """An attempt failed and the subtask will be tried again after ``delay_s``."""

    kind: ClassVar[str] = "subtask_retried"
    subtask_id: str
    attempt: int
    error: str
    delay_s: float


@dataclass(slots=True)
class SubtaskFinished(Event):
    """A subtask reached its final status (succeeded, failed or cancelled)."""

    kind: ClassVar[str] = "subtask_finished"
    subtask_id: str
    status: str
    elapsed_s: float
    error: str | None = None


@dataclass(slots=True)
class ToolCalled(Event):
    """An agent's tool call in a subtask's attempt ended: which tool, a digest of its
    arguments (never the arguments: they may hold secrets), how long it took and how it
    ended (see :class:`~automatos.llm.base.ToolUse`). ``error`` is redacted."""

    kind: ClassVar[str] = "tool_called"
    subtask_id: str
    attempt: int
    tool: str
    arguments_digest: str
    latency_s: float
    outcome: str
    error: str | None = None


@dataclass(slots=True)
class SubtaskSkipped(Event):
    """A subtask will not run because a dependency did not succeed."""

    kind: ClassVar[str] = "subtask_skipped"
    subtask_id: str
    reason: str


def event_to_dict(event: Event) -> dict[str, Any]:
    """A JSON-ready dict of an event, with its ``kind``. Its lists and dicts are the
    event's own, not copies (``dataclasses.asdict`` copies deeply, at several times the
    cost, on the path of every event a server streams): an emitted event is not changed."""
    cls = type(event)
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELDS[cls] = tuple(f.name for f in dataclasses.fields(cls))
    out: dict[str, Any] = {"kind": event.kind}
    for name in names:
        out[name] = getattr(event, name)
    return out


_FIELDS: dict[type, tuple[str, ...]] = {}


@dataclass(slots=True)
class SubtaskQueued(Event):
    """An attempt that started waits for a model that serves one call at a time (the
    in-process model): ``ahead`` calls are served before it. A second event, with ``ahead``
    0, says its turn came and the model is answering it. An attempt that finds the model
    free has neither."""

    kind: ClassVar[str] = "subtask_queued"
    subtask_id: str
    attempt: int
    ahead: int


@dataclass(slots=True)
class ProposalDecided(Event):
    """Stage 2b decided on a change to the plan that agents proposed: ``status`` is
    ``applied`` or ``rejected``, and ``reason`` says why (see
    :class:`~automatos.domain.collaboration.ProposalOutcome`)."""

    kind: ClassVar[str] = "proposal_decided"
    round: int
    agents: list[str]
    proposal: str
    change: dict[str, Any]
    status: str
    reason: str


@dataclass(slots=True)
class PlanReady(Event):
    """A stage of the PLAN phase made or changed the plan or its agents: ``plan`` is
    ``{"subtasks": [{"id", "description", "depends_on", "agent"}]}`` as it now stands
    (``agent`` is none until agents are chosen). Whoever follows a run live can draw its
    graph before any subtask starts."""

    kind: ClassVar[str] = "plan_ready"
    plan: dict[str, Any]


@dataclass(slots=True)
class PlanNegotiated(Event):
    """Stage 2b ended: its rounds, the changes applied and rejected, the plan's size before
    and after."""

    kind: ClassVar[str] = "plan_negotiated"
    rounds: int
    applied: int
    rejected: int
    subtasks_before: int
    subtasks_after: int


@dataclass(slots=True)
class PromptsChosen(Event):
    """Stage 3b chose the version of each stage's prompt: by slug, the version and, for a
    workflow in an A/B test, the test and its arm."""

    kind: ClassVar[str] = "prompts_chosen"
    prompts: dict[str, dict[str, Any]]


@dataclass(slots=True)
class FindingShared(Event):
    """An agent shared a finding (stage 4b); ``contradicts`` lists the ids of earlier
    findings it contradicts."""

    kind: ClassVar[str] = "finding_shared"
    finding: int
    finding_kind: str
    text: str
    subtask_id: str
    agent: str
    contradicts: list[int]


@dataclass(slots=True)
class ContextSelected(Event):
    """Stage 3 chose a subtask's context: the items (id, title, tokens, relevance) within
    its budget, and how many candidates each step of the optimiser dropped. ``retrieved`` is
    false when it got none, ``reason`` saying why."""

    kind: ClassVar[str] = "context_selected"
    subtask_id: str
    retrieved: bool
    reason: str
    budget: int
    tokens: int
    candidates: int
    items: list[dict[str, Any]]
    dropped_by: dict[str, int]


@dataclass(slots=True)
class MemoriesStored(Event):
    """Stage 8 stored the run's memories: how many of each kind, how many collective lessons
    were merged into one already kept, and whether they wait to be embedded."""

    kind: ClassVar[str] = "memories_stored"
    stored: dict[str, int]
    merged: int
    pending: bool = False
    """Kept without vectors (the embedder was not loaded): the next recall embeds them."""
