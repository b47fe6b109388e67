"""Automatos: a workflow engine for teams of LLM agents.

Plan a request into a graph of subtasks, give each an agent, run independent subtasks in
parallel and return a structured result::

    from automatos import Engine, Settings

    async with Engine(Settings()) as engine:
        result = await engine.run("research the top three vector databases and compare them")
        print(result.final_answer)
"""

from automatos.domain import (
    DEFAULT_AGENT,
    AgentSpec,
    Assignment,
    ErrorInfo,
    Event,
    GraphMetadata,
    LLMCall,
    Plan,
    StageFinished,
    StageStarted,
    Subtask,
    SubtaskFinished,
    SubtaskResult,
    SubtaskRetried,
    SubtaskSkipped,
    SubtaskSpec,
    SubtaskStarted,
    SubtaskStatus,
    Totals,
    WorkflowFinished,
    WorkflowRequest,
    WorkflowResult,
    WorkflowStarted,
    WorkflowStatus,
    event_to_dict,
)
from automatos.engine import Engine
from automatos.errors import (
    AutomatosError,
    BudgetExceededError,
    ConfigurationError,
    CycleError,
    DanglingDependencyError,
    DuplicateSubtaskError,
    ExecutionError,
    InvalidRequestError,
    LLMError,
    LLMTimeoutError,
    PlanError,
    PlanLimitError,
    PlanParseError,
    ProviderRequestError,
    ProviderUnavailableError,
    RateLimitedError,
    SelfDependencyError,
    StoreError,
    StructuredOutputError,
    SubtaskTimeoutError,
    WorkflowCancelledError,
)
from automatos.graph import build_plan
from automatos.recipe import load_recipe
from automatos.settings import Settings

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_AGENT",
    "AgentSpec",
    "Assignment",
    "AutomatosError",
    "BudgetExceededError",
    "ConfigurationError",
    "CycleError",
    "DanglingDependencyError",
    "DuplicateSubtaskError",
    "Engine",
    "ErrorInfo",
    "Event",
    "ExecutionError",
    "GraphMetadata",
    "InvalidRequestError",
    "LLMCall",
    "LLMError",
    "LLMTimeoutError",
    "Plan",
    "PlanError",
    "PlanLimitError",
    "PlanParseError",
    "ProviderRequestError",
    "ProviderUnavailableError",
    "RateLimitedError",
    "SelfDependencyError",
    "Settings",
    "StageFinished",
    "StageStarted",
    "StoreError",
    "StructuredOutputError",
    "Subtask",
    "SubtaskFinished",
    "SubtaskResult",
    "SubtaskRetried",
    "SubtaskSkipped",
    "SubtaskSpec",
    "SubtaskStarted",
    "SubtaskStatus",
    "SubtaskTimeoutError",
    "Totals",
    "WorkflowCancelledError",
    "WorkflowFinished",
    "WorkflowRequest",
    "WorkflowResult",
    "WorkflowStarted",
    "WorkflowStatus",
    "__version__",
    "build_plan",
    "event_to_dict",
    "load_recipe",
]
