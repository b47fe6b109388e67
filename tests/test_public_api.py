"""The public API is pinned: a change to it is a decision, not an accident."""

import automatos

EXPECTED = {
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
}


def test_all_is_pinned() -> None:
    assert set(automatos.__all__) == EXPECTED


def test_every_public_name_resolves() -> None:
    for name in automatos.__all__:
        assert getattr(automatos, name) is not None
