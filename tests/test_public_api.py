"""The public API is pinned: a change to it is a decision, not an accident."""

import subprocess
import sys

import pytest

import automatos
import automatos.errors

EXPECTED = {
    "DEFAULT_AGENT",
    "AgentSpec",
    "Assignment",
    "AutomatosError",
    "BudgetExceededError",
    "ConfigurationError",
    "CorruptFindingError",
    "CycleError",
    "DanglingDependencyError",
    "DuplicateSubtaskError",
    "EmptyAnswerError",
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
    "ProviderContractError",
    "ProviderRequestError",
    "ProviderUnavailableError",
    "QueueError",
    "RateLimitedError",
    "RunTakenOverError",
    "RunnerError",
    "ScorerError",
    "ServerStoppingError",
    "SharedContextError",
    "SelfDependencyError",
    "Settings",
    "StageFinished",
    "StageStarted",
    "StructuredOutputError",
    "Subtask",
    "SubtaskFinished",
    "SubtaskResult",
    "SubtaskRetried",
    "SubtaskSkipped",
    "SubtaskSpec",
    "SubtaskStarted",
    "SubtaskStatus",
    "StoreError",
    "SubtaskTimeoutError",
    "ToolArgumentsError",
    "ToolError",
    "ToolFailedError",
    "ToolLoopError",
    "ToolNotFoundError",
    "ToolTimeoutError",
    "Totals",
    "WorkflowCancelledError",
    "WorkflowFinished",
    "WorkflowRequest",
    "WorkflowResumed",
    "WorkflowResult",
    "WorkflowStarted",
    "WorkflowStatus",
    "WorkflowTimeoutError",
    "__version__",
    "build_plan",
    "event_to_dict",
    "load_recipe",
    "Level",
    "LevelChoice",
    "LevelChosen",
    "MCPError",
    "ModelProfile",
    "Phase",
    "PhaseSelector",
    "Stage",
    "StageContractError",
    "StageSelection",
    "StageSelector",
    "StageError",
    "SubtaskQueued",
    "Finding",
    "FindingShared",
    "NegotiationReport",
    "PlanNegotiated",
    "PlanReady",
    "PromptError",
    "PromptUse",
    "PromptsChosen",
    "ProposalDecided",
    "ProposalOutcome",
    "ContextItem",
    "ContextSelected",
    "MemoriesStored",
    "SubtaskContext",
    "ToolCalled",
    "ToolUse",
}


def test_all_is_pinned() -> None:
    assert set(automatos.__all__) == EXPECTED


def test_every_public_name_resolves() -> None:
    for name in automatos.__all__:
        assert getattr(automatos, name) is not None


def test_every_error_of_the_tree_is_exported() -> None:
    assert set(automatos.errors.__all__) <= set(automatos.__all__)
    for name in automatos.errors.__all__:
        assert getattr(automatos, name) is getattr(automatos.errors, name)


def test_names_outside_the_api_are_attribute_errors() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Nothing'"):
        _ = automatos.Nothing  # type: ignore[attr-defined]
    assert set(automatos.__all__) <= set(dir(automatos))


def test_importing_the_package_loads_nothing_until_a_name_is_used() -> None:
    code = (
        "import sys, automatos\n"
        "before = {m for m in sys.modules if m.startswith(('automatos.', 'pydantic'))}\n"
        "from automatos import Engine\n"
        "print(sorted(before), 'automatos.engine' in sys.modules, Engine.__name__)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[] True Engine"
