"""Automatos: a workflow engine for teams of LLM agents.

Plan a request into a graph of subtasks, give each an agent, run independent subtasks in
parallel and return a structured result::

    from automatos import Engine, Settings

    async with Engine(Settings()) as engine:
        result = await engine.run("research the top three vector databases and compare them")
        print(result.final_answer)

The names below are imported when first used (PEP 562), so that importing a submodule, or
running ``automatos --help``, does not load the whole engine.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from automatos.domain import (
        DEFAULT_AGENT,
        AgentSpec,
        Assignment,
        ErrorInfo,
        Event,
        GraphMetadata,
        Level,
        LevelChoice,
        LevelChosen,
        LLMCall,
        Phase,
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
        ToolCalled,
        ToolUse,
        Totals,
        WorkflowFinished,
        WorkflowRequest,
        WorkflowResult,
        WorkflowStarted,
        WorkflowStatus,
        event_to_dict,
    )
    from automatos.domain.collaboration import (
        Finding,
        NegotiationReport,
        PromptUse,
        ProposalOutcome,
    )
    from automatos.domain.context import ContextItem, SubtaskContext
    from automatos.domain.event import (
        ContextSelected,
        FindingShared,
        MemoriesStored,
        PlanNegotiated,
        PlanReady,
        PromptsChosen,
        ProposalDecided,
        SubtaskQueued,
        WorkflowResumed,
    )
    from automatos.engine import Engine
    from automatos.errors import (
        AutomatosError,
        BudgetExceededError,
        ConfigurationError,
        CorruptFindingError,
        CycleError,
        DanglingDependencyError,
        DuplicateSubtaskError,
        EmptyAnswerError,
        ExecutionError,
        InvalidRequestError,
        LLMError,
        LLMTimeoutError,
        MCPError,
        PlanError,
        PlanLimitError,
        PlanParseError,
        PromptError,
        ProviderContractError,
        ProviderRequestError,
        ProviderUnavailableError,
        QueueError,
        RateLimitedError,
        RunnerError,
        RunTakenOverError,
        ScorerError,
        SelfDependencyError,
        ServerStoppingError,
        SharedContextError,
        StageContractError,
        StageError,
        StoreError,
        StructuredOutputError,
        SubtaskTimeoutError,
        ToolArgumentsError,
        ToolError,
        ToolFailedError,
        ToolLoopError,
        ToolNotFoundError,
        ToolTimeoutError,
        WorkflowCancelledError,
        WorkflowTimeoutError,
    )
    from automatos.graph import build_plan
    from automatos.llm.profile import ModelProfile
    from automatos.phases.contracts import Stage
    from automatos.phases.selector import PhaseSelector, StageSelection, StageSelector
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
    "ContextItem",
    "ContextSelected",
    "CorruptFindingError",
    "CycleError",
    "DanglingDependencyError",
    "DuplicateSubtaskError",
    "EmptyAnswerError",
    "Engine",
    "ErrorInfo",
    "Event",
    "ExecutionError",
    "Finding",
    "FindingShared",
    "GraphMetadata",
    "InvalidRequestError",
    "LLMCall",
    "LLMError",
    "LLMTimeoutError",
    "Level",
    "LevelChoice",
    "LevelChosen",
    "MCPError",
    "MemoriesStored",
    "ModelProfile",
    "NegotiationReport",
    "Phase",
    "PhaseSelector",
    "Plan",
    "PlanError",
    "PlanLimitError",
    "PlanNegotiated",
    "PlanParseError",
    "PlanReady",
    "PromptError",
    "PromptUse",
    "PromptsChosen",
    "ProposalDecided",
    "ProposalOutcome",
    "ProviderContractError",
    "ProviderRequestError",
    "ProviderUnavailableError",
    "QueueError",
    "RateLimitedError",
    "RunTakenOverError",
    "RunnerError",
    "ScorerError",
    "SelfDependencyError",
    "ServerStoppingError",
    "Settings",
    "SharedContextError",
    "Stage",
    "StageContractError",
    "StageError",
    "StageFinished",
    "StageSelection",
    "StageSelector",
    "StageStarted",
    "StoreError",
    "StructuredOutputError",
    "Subtask",
    "SubtaskContext",
    "SubtaskFinished",
    "SubtaskQueued",
    "SubtaskResult",
    "SubtaskRetried",
    "SubtaskSkipped",
    "SubtaskSpec",
    "SubtaskStarted",
    "SubtaskStatus",
    "SubtaskTimeoutError",
    "ToolArgumentsError",
    "ToolCalled",
    "ToolError",
    "ToolFailedError",
    "ToolLoopError",
    "ToolNotFoundError",
    "ToolTimeoutError",
    "ToolUse",
    "Totals",
    "WorkflowCancelledError",
    "WorkflowFinished",
    "WorkflowRequest",
    "WorkflowResult",
    "WorkflowResumed",
    "WorkflowStarted",
    "WorkflowStatus",
    "WorkflowTimeoutError",
    "__version__",
    "build_plan",
    "event_to_dict",
    "load_recipe",
]

# Where the public names that are not errors (automatos.errors) or domain types
# (automatos.domain) live.
_HOME = {
    "Engine": "automatos.engine",
    "ModelProfile": "automatos.llm.profile",
    "PhaseSelector": "automatos.phases.selector",
    "Stage": "automatos.phases.contracts",
    "StageSelection": "automatos.phases.selector",
    "StageSelector": "automatos.phases.selector",
    "Settings": "automatos.settings",
    "SubtaskQueued": "automatos.domain.event",
    "Finding": "automatos.domain.collaboration",
    "FindingShared": "automatos.domain.event",
    "ContextItem": "automatos.domain.context",
    "ContextSelected": "automatos.domain.event",
    "MemoriesStored": "automatos.domain.event",
    "SubtaskContext": "automatos.domain.context",
    "NegotiationReport": "automatos.domain.collaboration",
    "PlanNegotiated": "automatos.domain.event",
    "PlanReady": "automatos.domain.event",
    "WorkflowResumed": "automatos.domain.event",
    "PromptUse": "automatos.domain.collaboration",
    "PromptsChosen": "automatos.domain.event",
    "ProposalDecided": "automatos.domain.event",
    "ProposalOutcome": "automatos.domain.collaboration",
    "build_plan": "automatos.graph",
    "load_recipe": "automatos.recipe",
}
_PUBLIC = frozenset(__all__)


def __getattr__(name: str) -> Any:
    """Import a public name on first use, then keep it as a plain attribute."""
    if name not in _PUBLIC:
        raise AttributeError(f"module 'automatos' has no attribute {name!r}")
    module = _HOME.get(name) or (
        "automatos.errors" if name.endswith("Error") else "automatos.domain"
    )
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
