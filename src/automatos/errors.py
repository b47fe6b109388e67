"""The one error tree of Automatos.

Every error the engine raises on purpose is an :class:`AutomatosError`. Each class says
whether trying the same thing again can help (``retryable``); the retry loops of the LLM layer
and of the dispatcher read that flag instead of keeping their own lists.

```
AutomatosError
├── ConfigurationError          a setting is missing or wrong (not retryable)
├── InvalidRequestError         the request or recipe itself is malformed (not retryable)
├── PlanError                   a plan that cannot be run (not retryable)
│   ├── PlanParseError          the decomposer's answer is not valid JSON of the plan shape
│   ├── DuplicateSubtaskError   two subtasks share an id
│   ├── DanglingDependencyError a dependency names no subtask
│   ├── SelfDependencyError     a subtask depends on itself
│   ├── CycleError              the dependencies form a cycle (the cycle is named)
│   └── PlanLimitError          too many subtasks, too deep, too wide, or too large
├── LLMError                    a call to a language model failed
│   ├── LLMTimeoutError         the call took longer than its timeout (retryable)
│   ├── RateLimitedError        429; carries ``retry_after`` (retryable)
│   ├── ProviderUnavailableError 5xx or the connection failed (retryable)
│   ├── ProviderRequestError    4xx other than 429: the call itself is wrong (not retryable)
│   └── StructuredOutputError   the reply did not validate, even after one repair
├── StoreError                  the database of runs and agents cannot be reached (retryable)
└── ExecutionError              a subtask could not be run
    ├── SubtaskTimeoutError     the subtask took longer than its timeout (retryable)
    ├── BudgetExceededError     the workflow's token or dollar budget would be exceeded
    └── WorkflowCancelledError  the run was cancelled before it finished
```

A validation message shown back to the model so that it can repair its JSON is a signal to the
LLM, not an engine error; it only becomes :class:`StructuredOutputError` when the repair fails.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

__all__ = [
    "AutomatosError",
    "BudgetExceededError",
    "ConfigurationError",
    "CycleError",
    "DanglingDependencyError",
    "DuplicateSubtaskError",
    "ExecutionError",
    "InvalidRequestError",
    "LLMError",
    "LLMTimeoutError",
    "PlanError",
    "PlanLimitError",
    "PlanParseError",
    "ProviderRequestError",
    "ProviderUnavailableError",
    "RateLimitedError",
    "SelfDependencyError",
    "StoreError",
    "StructuredOutputError",
    "SubtaskTimeoutError",
    "WorkflowCancelledError",
]


class AutomatosError(Exception):
    """Root of every error Automatos raises on purpose."""

    retryable: ClassVar[bool] = False


class ConfigurationError(AutomatosError):
    """A setting is missing or inconsistent; the message names the setting to change."""


class InvalidRequestError(AutomatosError):
    """A request, recipe or plan file is malformed; the message names what is wrong."""


class PlanError(AutomatosError):
    """A plan that the engine will not run."""


class PlanParseError(PlanError):
    """The decomposer's answer is not JSON of the plan's shape."""


class DuplicateSubtaskError(PlanError):
    """Two or more subtasks share an id."""

    def __init__(self, ids: Sequence[str]) -> None:
        self.ids = list(ids)
        super().__init__(f"duplicate subtask ids: {', '.join(self.ids)}")


class DanglingDependencyError(PlanError):
    """A subtask depends on an id that no subtask has."""

    def __init__(self, missing: dict[str, list[str]]) -> None:
        self.missing = missing
        parts = [f"{sid} -> {', '.join(deps)}" for sid, deps in sorted(missing.items())]
        super().__init__(f"dependencies on unknown subtasks: {'; '.join(parts)}")


class SelfDependencyError(PlanError):
    """A subtask lists itself among its dependencies."""

    def __init__(self, ids: Sequence[str]) -> None:
        self.ids = list(ids)
        super().__init__(f"subtasks that depend on themselves: {', '.join(self.ids)}")


class CycleError(PlanError):
    """The dependencies form a cycle; ``cycle`` lists it in order, first id repeated last."""

    def __init__(self, cycle: Sequence[str]) -> None:
        self.cycle = list(cycle)
        super().__init__(f"dependency cycle: {' -> '.join(self.cycle)}")


class PlanLimitError(PlanError):
    """The plan exceeds a limit from the settings; the message names the limit."""


class LLMError(AutomatosError):
    """A call to a language model failed."""


class LLMTimeoutError(LLMError):
    """The call took longer than its timeout."""

    retryable: ClassVar[bool] = True


class RateLimitedError(LLMError):
    """The provider answered 429; ``retry_after`` is its requested delay in seconds, if any."""

    retryable: ClassVar[bool] = True

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class ProviderUnavailableError(LLMError):
    """The provider answered 5xx, or could not be reached."""

    retryable: ClassVar[bool] = True


class ProviderRequestError(LLMError):
    """The provider refused the call itself (4xx other than 429): fix the call or the key."""


class StructuredOutputError(LLMError):
    """The model's structured answer did not validate, even after one repair attempt."""

    def __init__(self, message: str, raw: str = "") -> None:
        self.raw = raw[:2000]
        super().__init__(message)


class StoreError(AutomatosError):
    """The store's database cannot be opened or reached; the message names where it is (without
    its password) and the settings that say so."""

    retryable: ClassVar[bool] = True


class ExecutionError(AutomatosError):
    """A subtask could not be run to the end."""

    retryable: ClassVar[bool] = True


class SubtaskTimeoutError(ExecutionError):
    """The subtask took longer than its timeout."""


class BudgetExceededError(ExecutionError):
    """Dispatching another subtask would exceed the workflow's budget (tokens or dollars)."""

    retryable: ClassVar[bool] = False


class WorkflowCancelledError(ExecutionError):
    """The workflow was cancelled before all of its subtasks finished."""

    retryable: ClassVar[bool] = False


def is_retryable(exc: BaseException) -> bool:
    """Whether trying again may help: the class's own flag, and ``False`` for foreign errors."""
    return isinstance(exc, AutomatosError) and exc.retryable
