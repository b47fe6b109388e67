"""The nouns of the engine; no I/O here.

Inputs that come from outside (requests, subtask specs, agents) are pydantic models and are
validated once. Records the engine builds itself, several per subtask on the dispatcher's
hot path (subtasks with their graph metadata, assignments, results, events), are slotted
dataclasses and are not validated again. They are not ``frozen``: a frozen dataclass's
``__init__`` sets each field through ``object.__setattr__`` and costs about five times as much
(measured: 0.98 µs against 0.18 µs for eight fields), which was a tenth of the engine's
overhead per subtask. Treat them as values; the engine never changes one once it is built.
"""

from automatos.domain.agent import DEFAULT_AGENT, AgentMetrics, AgentSpec, Assignment
from automatos.domain.event import (
    Event,
    LevelChosen,
    StageFinished,
    StageStarted,
    SubtaskFinished,
    SubtaskRetried,
    SubtaskSkipped,
    SubtaskStarted,
    ToolCalled,
    WorkflowFinished,
    WorkflowStarted,
    event_to_dict,
)
from automatos.domain.level import Level, LevelChoice, Phase
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
from automatos.domain.tools import ToolUse

__all__ = [
    "DEFAULT_AGENT",
    "AgentMetrics",
    "AgentSpec",
    "Assignment",
    "ErrorInfo",
    "Event",
    "GraphMetadata",
    "LLMCall",
    "Level",
    "LevelChoice",
    "LevelChosen",
    "Phase",
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
    "ToolCalled",
    "ToolUse",
    "Totals",
    "WorkflowFinished",
    "WorkflowRequest",
    "WorkflowResult",
    "WorkflowStarted",
    "WorkflowStatus",
    "event_to_dict",
]
