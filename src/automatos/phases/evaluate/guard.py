"""Code the engine does not own, called at scoring time: a custom scorer, the judge's model.

A plug-in that raises (any exception, a ``BaseException`` such as ``GeneratorExit``,
``KeyboardInterrupt`` or a ``CancelledError`` nobody asked for included), hangs, or answers
with something that is not a score must not cost the run its result: the subtask keeps its
heuristic score and the result says why. Only a cancellation of the workflow itself gets
through. (Under ``asyncio.run`` a real Ctrl-C cancels the main task; a ``KeyboardInterrupt``
raised inside a plug-in is the plug-in's own.)
"""

from __future__ import annotations

import asyncio
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from automatos.abandoned import abandon
from automatos.deadlines import being_cancelled
from automatos.domain.plan import Subtask
from automatos.errors import (
    BudgetExceededError,
    ScorerError,
    WorkflowTimeoutError,
    describe_exception,
    describe_kind,
)
from automatos.llm.base import Completion, LLMProvider, Message, ToolSpec, estimate_tokens
from automatos.scoring import Scorer

__all__ = ["GatedLLM", "guarded_score", "passes_through"]

_JUDGE_ANSWER_TOKENS = 300
"""What a judge's answer is expected to take when the call sets no ``max_tokens``: three
scores with a line of reason each."""


def passes_through(exc: BaseException) -> bool:
    """Whether ``exc`` must propagate as it is: a cancellation of the current task (the
    workflow's), not a ``CancelledError`` a plug-in raised on its own."""
    return isinstance(exc, asyncio.CancelledError) and being_cancelled()


def _checked(name: str, value: object) -> float:
    """``value`` as a score, clamped into [0, 1]; a failure if it is not a finite number."""
    score = math.nan
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        try:
            score = float(value)
        except Exception:  # a Real that cannot say its value is no score either
            score = math.nan
    if not math.isfinite(score):
        raise ScorerError(f"scorer {name} returned {describe_kind(value)}, not a number in [0, 1]")
    return min(1.0, max(0.0, score))


async def _call(scorer: Scorer, request: str, subtask: Subtask, output: str) -> object:
    """The scorer's answer, run as a task; a `score` that is not a coroutine function fails
    here too."""
    try:
        return await scorer.score(request, subtask, output)
    except asyncio.CancelledError:
        raise  # the task ends cancelled: the caller knows whether it asked for that
    except BaseException as exc:
        # A task would re-raise KeyboardInterrupt and SystemExit into the event loop itself.
        raise ScorerError(
            f"scorer {type(scorer).__name__} raised {describe_exception(exc)}"
        ) from exc


async def guarded_score(
    scorer: Scorer,
    request: str,
    subtask: Subtask,
    output: str,
    *,
    timeout_s: float,
    grace_s: float,
    by_deadline: bool = False,
) -> float:
    """``scorer``'s score of ``output``, clamped into [0, 1].

    The scorer runs in a task of its own: what it raises (a ``CancelledError`` of its own
    too) stays there, and one that ignores its cancellation after ``timeout_s`` is given
    ``grace_s`` to stop and then abandoned. ``by_deadline`` says that ``timeout_s`` is what
    is left of the workflow's time, not the scorer's own timeout.

    Raises:
        ScorerError: the scorer raised, gave no score within ``timeout_s`` (or was not
            called: ``timeout_s`` is 0, the workflow's deadline has passed), or returned
            something that is not a finite number.
        asyncio.CancelledError: the workflow was cancelled (the scorer is cancelled too).
    """
    name = type(scorer).__name__
    if timeout_s <= 0:
        raise ScorerError(f"scorer {name} was not called: the workflow's deadline has passed")
    task = asyncio.ensure_future(_call(scorer, request, subtask, output))
    try:
        done, _ = await asyncio.wait({task}, timeout=None if math.isinf(timeout_s) else timeout_s)
        if not done:
            task.cancel()
            await asyncio.wait({task}, timeout=grace_s)
            limit = "before the workflow's deadline" if by_deadline else "within"
            raise ScorerError(f"scorer {name} gave no score {limit} {timeout_s:.3g} s")
    finally:
        task.cancel()  # a no-op once it is done; the workflow's cancellation reaches it
        abandon(task)  # kept alive if it ignores that, its outcome read when it ends
    if task.cancelled():  # it raised CancelledError itself: nobody here cancelled it
        raise ScorerError(f"scorer {name} raised CancelledError without being cancelled")
    error = task.exception()
    if error is not None:
        raise error  # a ScorerError: `_call` turns whatever the scorer raised into one
    return _checked(name, task.result())


class GatedLLM:
    """The judge's model behind the workflow's budget and deadline.

    Before each call (the repair of a broken answer included): no call once the deadline
    has passed (:class:`~automatos.errors.WorkflowTimeoutError`), none the budget refuses
    (:class:`~automatos.errors.BudgetExceededError`; calls in flight count with their
    estimate). A call still running at the deadline is cut off. The model's own contract
    (a :class:`~automatos.llm.Completion`, no foreign exception) is the engine's model
    wrapper's to keep, and :meth:`LLMJudgeScorer.judged` survives whatever gets past it.
    """

    def __init__(
        self,
        inner: LLMProvider,
        *,
        refusal: Callable[[int], str | None],
        time_left: Callable[[], float],
        purpose: str = "the judge",
        count_tokens: Callable[[str], int] = estimate_tokens,
    ) -> None:
        """``refusal`` says why a call of about so many tokens may not be made now (or
        ``None``); ``time_left`` gives the seconds until the workflow's deadline; ``purpose``
        names the calls in the errors ("the budget stopped the judge"); ``count_tokens``
        counts a prompt's tokens for the budget (the model's tokenizer, where it has one)."""
        self._count_tokens = count_tokens
        self.purpose = purpose
        self.inner = inner
        self._refusal = refusal
        self._time_left = time_left
        self._in_flight = 0

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        model: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        json_schema: Mapping[str, Any] | None = None,
        timeout_s: float | None = None,
        tools: Sequence[ToolSpec] | None = None,
        tool_choice: str | None = None,
    ) -> Completion:
        """Call the model if the deadline and the budget allow it."""
        left = self._time_left()
        if left <= 0:
            raise WorkflowTimeoutError(f"the workflow's deadline stopped {self.purpose}")
        estimate = self._count_tokens(
            "".join(m.content + "".join(c.arguments for c in m.tool_calls) for m in messages)
        )
        estimate += max_tokens or _JUDGE_ANSWER_TOKENS
        refused = self._refusal(estimate + self._in_flight)
        if refused is not None:
            raise BudgetExceededError(f"the budget stopped {self.purpose} ({refused})")
        timer = asyncio.timeout(None if math.isinf(left) else left)
        # Passed only when given: a provider written before tools existed takes neither.
        tooling: dict[str, Any] = {}
        if tools is not None:
            tooling["tools"] = tools
        if tool_choice is not None:
            tooling["tool_choice"] = tool_choice
        self._in_flight += estimate
        try:
            async with timer:
                done = await self.inner.complete(
                    messages,
                    model=model,
                    temperature=temperature,
                    max_tokens=max_tokens,
                    json_schema=json_schema,
                    timeout_s=timeout_s,
                    **tooling,
                )
        except TimeoutError:
            if timer.expired():
                raise WorkflowTimeoutError(
                    f"the workflow's deadline stopped {self.purpose}"
                ) from None
            raise
        finally:
            self._in_flight -= estimate
        return done
