"""What a run produces: per-subtask results, LLM calls, totals and the workflow result."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from automatos.domain.agent import Assignment
from automatos.domain.collaboration import Finding, NegotiationReport, PromptUse
from automatos.domain.context import SubtaskContext
from automatos.domain.level import LevelChoice
from automatos.domain.plan import Plan
from automatos.domain.tools import ToolUse

__all__ = [
    "ErrorInfo",
    "LLMCall",
    "QualityReport",
    "SubtaskResult",
    "SubtaskStatus",
    "Totals",
    "WorkflowResult",
    "WorkflowStatus",
]


class SubtaskStatus(StrEnum):
    """How a subtask ended."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"


class WorkflowStatus(StrEnum):
    """How a workflow ended: ``partial`` when some subtasks did not succeed."""

    SUCCEEDED = "succeeded"
    PARTIAL = "partial"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"
    """Stopped with the engine (a server shutting down) before it ended: not given up by
    anyone, so its record says so rather than ``cancelled``."""


@dataclass(slots=True)
class ErrorInfo:
    """An error, kept as data: its class name and message."""

    type: str
    message: str

    @classmethod
    def of(cls, exc: BaseException) -> ErrorInfo:
        """Describe an exception (one whose message cannot be made is described by type)."""
        try:
            message = str(exc) or repr(exc)
        except Exception:
            message = "(its message cannot be shown)"
        return cls(type(exc).__name__, message)


@dataclass(slots=True)
class SubtaskResult:
    """The one committed result of a subtask."""

    subtask_id: str
    status: SubtaskStatus
    agent: str | None = None
    output: str | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    latency_s: float = 0.0
    attempts: int = 0
    error: ErrorInfo | None = None
    tool_calls: tuple[ToolUse, ...] = ()
    """The tools the agent called in the attempt that answered (for a subtask that failed,
    in its last attempt, when that attempt's runner reported them), in order: which tool, a
    digest of its arguments, how long and how it ended; never the arguments or results."""


@dataclass(slots=True)
class LLMCall:
    """One call to a model, successful or not."""

    stage: str
    model: str
    subtask_id: str | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    latency_s: float = 0.0
    priced: bool = True
    """Whether ``cost_usd`` is known (the model is in the price table, or is free)."""


class Totals(BaseModel):
    """Sums over a workflow."""

    model_config = ConfigDict(frozen=True)

    tokens_in: int
    tokens_out: int
    cost_usd: float
    """Dollars of the calls whose price is known; see :attr:`unpriced_models`."""
    wall_time_s: float
    llm_calls: int
    by_status: dict[SubtaskStatus, int]
    unpriced_models: tuple[str, ...] = ()
    """Models called without a known price (missing from ``llm.prices``): their cost is
    unknown and not in :attr:`cost_usd`, which is then a lower bound."""

    @property
    def cost_known(self) -> bool:
        """Whether :attr:`cost_usd` is the whole cost."""
        return not self.unpriced_models


class QualityReport(BaseModel):
    """Stage 7's verdict on a workflow: Q with its 95% interval, the dimensions, per subtask."""

    model_config = ConfigDict(frozen=True)

    q: float
    low: float
    high: float
    n: int
    needs_review: bool
    """Q fell below the quality gate (setting ``quality.gate``)."""
    method: str
    """``heuristic``, ``judge`` or ``custom`` (stage 7), or ``aggregate``: stage 5's
    dimension scores alone, where the level has no assessment (Molecule)."""
    dimensions: dict[str, float | None]
    subtasks: dict[str, dict[str, float | None]]
    fallbacks: int = 0
    """Subtasks the judge or the custom scorer could not score (they failed, or the budget
    or the deadline stopped them): the heuristics scored them, on another scale."""


class WorkflowResult(BaseModel):
    """The final structured result of a workflow (stage 9)."""

    model_config = ConfigDict(frozen=True)

    workflow_id: str
    request: str
    status: WorkflowStatus
    plan: Plan
    assignments: tuple[Assignment, ...]
    results: dict[str, SubtaskResult]
    final_answer: str | None
    totals: Totals
    llm_calls: tuple[LLMCall, ...]
    stages: tuple[str, ...]
    """The stages that ran, in order."""
    warnings: tuple[str, ...] = ()
    quality: QualityReport | None = None
    level: LevelChoice | None = None
    """The level the workflow ran at, why, the stages it ran and those it did not."""
    negotiation: NegotiationReport | None = None
    """Stage 2b's record, if the agents negotiated the plan: the plan before, every proposal
    with its fate (the plan after is :attr:`plan`)."""
    prompts: dict[str, PromptUse] = {}
    """The version of each stage's prompt the run used, with its A/B arm if it had one."""
    findings: tuple[Finding, ...] = ()
    """What the agents shared with each other (stage 4b), in order, with provenance."""
    context: dict[str, SubtaskContext] = {}
    """Stage 3's record of each subtask, when it ran: the chunks and memories chosen, and
    what was dropped by which step and why."""
