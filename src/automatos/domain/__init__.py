"""The nouns of the engine; no I/O here."""

from automatos.domain.agent import DEFAULT_AGENT, AgentSpec, Assignment
from automatos.domain.event import (
    Event,
    StageFinished,
    StageStarted,
    SubtaskFinished,
    SubtaskRetried,
    SubtaskSkipped,
    SubtaskStarted,
    WorkflowFinished,
    WorkflowStarted,
    event_to_dict,
)
from automatos.domain.plan import GraphMetadata, Plan, Subtask, SubtaskSpec
from automatos.domain.request import WorkflowRequest
from automatos.domain.result import (
    ErrorInfo,
    LLMCall,
    SubtaskResult,
    SubtaskStatus,
    Totals,
    WorkflowResult,
    WorkflowStatus,
)

__all__ = [
    "DEFAULT_AGENT",
    "AgentSpec",
    "Assignment",
    "ErrorInfo",
    "Event",
    "GraphMetadata",
    "LLMCall",
    "Plan",
    "StageFinished",
    "StageStarted",
    "Subtask",
    "SubtaskFinished",
    "SubtaskResult",
    "SubtaskRetried",
    "SubtaskSkipped",
    "SubtaskSpec",
    "SubtaskStarted",
    "SubtaskStatus",
    "Totals",
    "WorkflowFinished",
    "WorkflowRequest",
    "WorkflowResult",
    "WorkflowStarted",
    "WorkflowStatus",
    "event_to_dict",
]
