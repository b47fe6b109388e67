"""The one error tree of Automatos.

Every error the engine raises on purpose is an :class:`AutomatosError`. Each class says
whether trying the same thing again can help (``retryable``); the retry loops of the LLM layer
and of the dispatcher read that flag instead of keeping their own lists.

```
AutomatosError
├── ConfigurationError          a setting is missing or wrong (not retryable)
├── InvalidRequestError         the request or recipe itself is malformed (not retryable)
│   └── PromptError             a prompt template or A/B test that cannot be used: an unknown
│                               slug or version, a placeholder the stage does not fill
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
│   ├── ProviderContractError   the provider returned something that is not a Completion, or
│   │                           raised an exception of its own (retryable: it may be flaky)
│   └── StructuredOutputError   the reply did not validate, even after one repair
├── StoreError                  the database of runs and agents failed (retryable when the
│   │                           cause is transient: a lost connection, a lock, a timeout)
│   └── RunTakenOverError       another process resumed the run this one was running: this
│                               process stops it and writes nothing more (not retryable)
├── SharedContextError          a workflow's shared context (Redis) could not be read or
│   │                           written in time, or Redis refused the command (retryable
│   │                           when transient)
│   └── CorruptFindingError     an entry is not the finding its id says; names the key and id
├── ScorerError                 a custom scorer raised or returned no score (not retryable)
├── ServerStoppingError         the server is shutting down and starts nothing (retryable, on
│                               another server or after the restart)
├── ToolError                   a tool could not be used; inside a subtask's tool loop it goes
│   │                           back to the model as the tool's result, it does not fail the run
│   ├── ToolNotFoundError       the model or an agent named a tool that is not registered or
│   │                           not allowed for the agent
│   ├── ToolArgumentsError      the arguments are not JSON or do not validate (names the field)
│   ├── ToolTimeoutError        the call took longer than ``tools.call_timeout_s`` (retryable)
│   ├── ToolFailedError         the tool raised; carries its type and message
│   └── MCPError                an MCP server could not start, died, or broke the protocol
│                               (retryable when a restart may help)
└── ExecutionError              a subtask could not be run
    ├── SubtaskTimeoutError     the subtask took longer than its timeout (retryable)
    ├── RunnerError             a runner returned no Completion, or raised something that is
    │                           not an AutomatosError (retryable: the next attempt may do better)
    ├── QueueError              the task queue (Redis) could not take, hand out or answer a
    │                           job, or a job came back unreadable (retryable when transient)
    ├── EmptyAnswerError        the agent's answer is empty, blank or only stop tokens (retryable)
    ├── BudgetExceededError     the workflow's token or dollar budget would be exceeded
    ├── WorkflowTimeoutError    the workflow's deadline passed before the subtask finished
    ├── WorkflowCancelledError  the run was cancelled before it finished
    └── ToolLoopError           a subtask's tool loop reached its bounds (calls, tokens) without
                                a final answer (not retryable: the same bounds would be hit)
```

``retryable`` is a class attribute that an instance may override (a :class:`StoreError` says
per cause whether it is transient).

A validation message shown back to the model so that it can repair its JSON is a signal to the
LLM, not an engine error; it only becomes :class:`StructuredOutputError` when the repair fails.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the LLM types import this module: only their names here
    from automatos.llm.base import Completion

__all__ = [
    "AutomatosError",
    "BudgetExceededError",
    "ConfigurationError",
    "CorruptFindingError",
    "CycleError",
    "DanglingDependencyError",
    "DuplicateSubtaskError",
    "EmptyAnswerError",
    "ExecutionError",
    "InvalidRequestError",
    "LLMError",
    "LLMTimeoutError",
    "MCPError",
    "PlanError",
    "PlanLimitError",
    "PlanParseError",
    "PromptError",
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
    "SharedContextError",
    "StageContractError",
    "StageError",
    "StoreError",
    "StructuredOutputError",
    "SubtaskTimeoutError",
    "ToolArgumentsError",
    "ToolError",
    "ToolFailedError",
    "ToolLoopError",
    "ToolNotFoundError",
    "ToolTimeoutError",
    "WorkflowCancelledError",
    "WorkflowTimeoutError",
]


class AutomatosError(Exception):
    """Root of every error Automatos raises on purpose."""

    retryable: bool = False


class ConfigurationError(AutomatosError):
    """A setting is missing or inconsistent; the message names the setting to change."""


class StageContractError(ConfigurationError):
    """A stage list leaves a stage without an input it reads: the message names the stage,
    the input and the stages before it."""


class StageError(AutomatosError):
    """A stage raised an exception outside this tree (a bug in it, or in a plugin stage), or
    did not write what it declares: the message names the stage."""


class InvalidRequestError(AutomatosError):
    """A request, recipe or plan file is malformed; the message names what is wrong."""


class PromptError(InvalidRequestError):
    """A prompt template or A/B test that cannot be used: an unknown slug or version, a
    placeholder the stage does not fill, a second test of one slug (not retryable)."""


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

    retryable = True


class RateLimitedError(LLMError):
    """The provider answered 429; ``retry_after`` is its requested delay in seconds, if any."""

    retryable = True

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class ProviderUnavailableError(LLMError):
    """The provider answered 5xx, or could not be reached."""

    retryable = True


class ProviderRequestError(LLMError):
    """The provider refused the call itself (4xx other than 429): fix the call or the key."""


class ProviderContractError(LLMError):
    """The provider broke the :class:`~automatos.llm.LLMProvider` contract: it returned
    something that is not a :class:`~automatos.llm.Completion`, or raised an exception that is
    not an :class:`LLMError`. The message names the provider and what it did."""

    retryable = True


class StructuredOutputError(LLMError):
    """The model's structured answer did not validate, even after one repair attempt."""

    def __init__(self, message: str, raw: str = "") -> None:
        self.raw = raw[:2000]
        super().__init__(message)


class StoreError(AutomatosError):
    """The store's database failed; the message names where it is (without its password) and
    the settings that say so. ``retryable`` when the cause is transient (a lost connection, a
    lock, a timeout), not when the database refused the data or the schema is wrong."""

    def __init__(self, message: str, *, transient: bool = True) -> None:
        self.retryable = transient
        super().__init__(message)


class RunTakenOverError(StoreError):
    """The run's record is no longer this process's: another process resumed it (this one
    was stalled past its lease, not dead) and now owns it. The record refused this process's
    write; the process stops its run and writes nothing more into it. Not retryable."""

    def __init__(self, workflow_id: str) -> None:
        self.workflow_id = workflow_id
        super().__init__(
            f"run {workflow_id} was taken over by another process (resumed elsewhere); this "
            "process stops it",
            transient=False,
        )


class SharedContextError(AutomatosError):
    """A shared context kept out of process could not be read or written: Redis could not be
    reached, did not answer within the context's I/O timeout, or refused the command. The
    message names the key (never the server's URL, which may hold a password).

    ``retryable`` when the cause is transient (a lost connection, a timeout), not when Redis
    refused the command (the key is not a hash, its count is not a number)."""

    def __init__(self, message: str, *, key: str, transient: bool = True) -> None:
        self.key = key
        self.retryable = transient
        super().__init__(message)


class CorruptFindingError(SharedContextError):
    """An entry of the shared context is not the finding its id says: not JSON of a
    :class:`~automatos.domain.collaboration.Finding`, numbered other than its field, or
    missing under an id the count covers. Names the key and the id; not retryable."""

    def __init__(self, key: str, finding_id: int, detail: str) -> None:
        self.finding_id = finding_id
        super().__init__(
            f"the shared context {key!r} holds a corrupt finding {finding_id}: {detail}",
            key=key,
            transient=False,
        )


class ScorerError(AutomatosError):
    """A custom scorer raised, hung or returned something that is not a number in [0, 1]."""


class ServerStoppingError(AutomatosError):
    """The server is shutting down (SIGTERM) and starts no new workflow."""

    retryable = True


class ToolError(AutomatosError):
    """A tool could not be used. In a subtask's tool loop the message goes back to the model
    as the tool's result (the model may correct itself); it never carries the tool's output
    into the engine's own text."""

    def __init__(self, tool: str, detail: str) -> None:
        self.tool = tool
        self.detail = detail
        super().__init__(f"tool {tool!r}: {detail}")


class ToolNotFoundError(ToolError):
    """The tool is not registered, or the agent is not allowed to use it."""


class ToolArgumentsError(ToolError):
    """The arguments are not a JSON object, or do not validate against the tool's schema; the
    message names the field and what was wrong with it."""


class ToolTimeoutError(ToolError):
    """The call took longer than its timeout and was stopped."""

    retryable = True


class ToolFailedError(ToolError):
    """The tool raised; the message has the exception's type and message."""


class MCPError(ToolError):
    """An MCP server could not be started or reached, died, or answered outside the protocol.
    The message names the server; ``retryable`` when a restart may help."""

    def __init__(self, tool: str, detail: str, *, transient: bool = True) -> None:
        self.retryable = transient
        super().__init__(tool, detail)


class ExecutionError(AutomatosError):
    """A subtask could not be run to the end."""

    retryable = True


class SubtaskTimeoutError(ExecutionError):
    """The subtask took longer than its timeout."""


class RunnerError(ExecutionError):
    """A :class:`~automatos.runners.TaskRunner` broke its contract: it returned something that
    is not a :class:`~automatos.llm.Completion`, or raised an exception that is not an
    :class:`AutomatosError` (a ``CancelledError`` nobody asked for included). The message
    names the runner and what it returned or raised."""

    def __init__(self, runner: str, detail: str) -> None:
        self.runner = runner
        self.detail = detail
        super().__init__(f"runner {runner} {detail}")


class QueueError(ExecutionError):
    """The queued runner's Redis could not be reached within its timeout, a job was handed to
    workers ``runner.max_deliveries`` times without an answer, or a job or its answer is not
    of the wire schema. ``retryable`` unless the cause is the data itself."""

    def __init__(self, message: str, *, transient: bool = True) -> None:
        self.retryable = transient
        super().__init__(message)


class EmptyAnswerError(ExecutionError):
    """The agent's answer is empty, whitespace, or only the model's stop or garbage tokens."""


class BudgetExceededError(ExecutionError):
    """Dispatching another subtask would exceed the workflow's budget (tokens or dollars)."""

    retryable = False


class WorkflowTimeoutError(ExecutionError):
    """The workflow's deadline (``execution.workflow_timeout_s``) passed before it finished."""

    retryable = False


class WorkflowCancelledError(ExecutionError):
    """The workflow was cancelled before all of its subtasks finished."""

    retryable = False


class ToolLoopError(ExecutionError):
    """A subtask's tool loop reached a bound (``tools.max_calls`` or the token budget) without
    the model giving a final answer.

    ``spent`` is what the loop cost up to there (its model calls in ``rounds``, its tool calls
    in ``tool_uses``, the sums in its figures), for the workflow's accounting.
    """

    retryable = False
    spent: Completion | None = None

    def __init__(self, message: str, *, spent: Completion | None = None) -> None:
        super().__init__(message)
        self.spent = spent


def describe_value(value: object) -> str:
    """What a plugin returned, for an error message: its type, and its repr when short (and
    when making it does not fail: a plugin's objects may be broken in their own ways)."""
    if value is None:
        return "None"
    try:
        shown = repr(value)
    except Exception:
        return type(value).__name__
    return f"{type(value).__name__} {shown}" if len(shown) <= 80 else type(value).__name__


def describe_kind(value: object) -> str:
    """A value named by its kind, without quoting text a plugin was given: numbers and
    ``None`` as they are, anything else as ``a <type>``."""
    if value is None or (type(value) in (int, float)):
        return repr(value)
    return f"a {type(value).__name__}"


def describe_exception(exc: BaseException, limit: int = 300) -> str:
    """``Type: message`` of an exception, short, even when its ``str`` fails."""
    try:
        text = str(exc)
    except Exception:
        text = "(its message cannot be shown)"
    return f"{type(exc).__name__}: {text}"[:limit] if text else type(exc).__name__


def is_retryable(exc: BaseException) -> bool:
    """Whether trying again may help: the class's own flag, and ``False`` for foreign errors."""
    return isinstance(exc, AutomatosError) and exc.retryable
