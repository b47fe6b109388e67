"""Stage 4's tool loop: one attempt of an agent that has tools.

The model is called with the tools' specs. While it answers with tool calls, the loop runs
each one through the agent's registry (found, arguments parsed and validated, called within
``tools.call_timeout_s``) and hands its result back as a ``tool`` message answering the call;
a call that fails is answered with its error (``error: ...``) for the model to act on, not
raised. The first answer without tool calls is the attempt's answer. A tool's result is data
for the model: it goes into the conversation as a tool message and nowhere else (never a
system message, never the plan, the agents or the settings).

Bounds, so that a model that keeps calling ends within them:

- ``tools.max_calls`` tool calls an attempt: calls past it are not run (answered with an
  ``over_limit`` error), and the next model call is told to answer (``tool_choice="none"``);
- the workflow's token budget (:attr:`AgentTask.token_budget`): once the rounds spent more,
  the next call is told to answer;
- a call repeated with the same arguments (a small model loops so): the next call is told to
  answer.

A model told to answer that still calls tools, or gives no text, fails the attempt with
:class:`~automatos.errors.ToolLoopError`. The attempt's own timeout is its caller's.

What an attempt spent is never lost: the answer is one :class:`Completion` summing every
round (each kept in ``rounds``) with a :class:`ToolUse` per tool call; an attempt that fails
after a model call carries the same on its exception (:func:`spent_of`). What is recorded of
a tool call is a digest of its arguments and a redacted, short error: never the arguments
or the result, which may hold secrets; the logs get the same.

This module is imported by ``automatos worker`` for every job: it imports nothing heavy.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from automatos.abandoned import abandon
from automatos.errors import (
    EmptyAnswerError,
    ToolArgumentsError,
    ToolError,
    ToolLoopError,
    ToolNotFoundError,
    ToolTimeoutError,
    describe_exception,
)
from automatos.llm.base import Completion, Message, ToolCall, ToolOutcome, ToolUse
from automatos.tools.function import MAX_RESULT_CHARS, truncated

if TYPE_CHECKING:
    from automatos.llm.base import LLMProvider
    from automatos.runners.base import AgentTask, ToolLimits
    from automatos.tools.redact import Redactor
    from automatos.tools.registry import ToolRegistry

__all__ = [
    "MAX_CALLS_PER_ANSWER",
    "MAX_RECORDED_ERROR_CHARS",
    "Toolbox",
    "attach_spent",
    "run_tool_loop",
    "spent_of",
]

_log = logging.getLogger(__name__)

MAX_CALLS_PER_ANSWER = 64
"""More tool calls than this in one model answer fail the attempt (ToolLoopError): every call
of an answer must be answered, and each would be recorded, past ``tools.max_calls`` too."""
MAX_RECORDED_ERROR_CHARS = 300
"""The longest error recorded of a tool call (:attr:`ToolUse.error`), after redaction."""
_MAX_RECORDED_NAME_CHARS = 64
_NOTE_ROOM = 200
"""Characters past MAX_RESULT_CHARS that a result may have for the note of its own cut."""
_DIGEST_CHARS = 16


@dataclass(frozen=True, slots=True)
class Toolbox:
    """What one attempt's tool loop may call, within which bounds, and how what it records
    is redacted: as the task's tool host resolved them for it
    (:meth:`~automatos.tools.host.ToolHost.toolbox`)."""

    tools: ToolRegistry
    """The agent's tools: its allow-list applied (a name not on it is unknown)."""
    limits: ToolLimits
    redactor: Redactor


async def run_tool_loop(llm: LLMProvider, task: AgentTask, box: Toolbox) -> Completion:
    """Run ``task``'s attempt as a tool loop (see the module's text) and return its answer.

    Raises:
        ToolLoopError: the model was told to answer and did not (``spent`` says what the
            loop cost).
        AutomatosError: a model call failed (its error, with what the loop spent before it
            attached: :func:`spent_of`).
    """
    agent = task.agent
    limits = box.limits
    specs = box.tools.specs()
    messages = list(task.messages)
    rounds: list[Completion] = []
    uses: list[ToolUse] = []
    seen: set[tuple[str, str]] = set()
    budget = task.token_budget
    calls = tokens = 0
    told: str | None = None
    """Why the model is told to answer now, once it is."""
    started = time.perf_counter()
    try:
        while True:
            done = await llm.complete(
                messages,
                model=agent.model,
                temperature=agent.temperature,
                max_tokens=agent.max_tokens,
                tools=specs,
                tool_choice=None if told is None else "none",
            )
            rounds.append(done)
            tokens += done.tokens_in + done.tokens_out
            if told is not None:
                after = f"({told}), after {calls} tool call(s) and {len(rounds)} model calls"
                if done.tool_calls:
                    raise ToolLoopError(
                        f"agent {agent.name!r} still called tools when told to give its final "
                        f"answer {after}"
                    )
                if not done.text.strip():  # as any empty answer: another attempt may do
                    raise EmptyAnswerError(
                        f"agent {agent.name!r} gave no answer when told to give its final "
                        f"answer {after}"
                    )
                return _total(rounds, uses, started, done)
            if not done.tool_calls:
                return done if len(rounds) == 1 else _total(rounds, uses, started, done)
            if len(done.tool_calls) > MAX_CALLS_PER_ANSWER:  # each would be answered, recorded
                raise ToolLoopError(
                    f"agent {agent.name!r} asked for {len(done.tool_calls)} tool calls in one "
                    f"answer; a model answer may carry at most {MAX_CALLS_PER_ANSWER}"
                )
            messages.append(Message("assistant", done.text, done.tool_calls))
            for call in done.tool_calls:
                if calls >= limits.max_calls:
                    use, content = _over_limit(call, limits.max_calls, box)
                else:
                    calls += 1
                    key = (call.name, _canonical(call.arguments))
                    if key in seen and told is None:
                        told = f"it called {_shown(call.name)} again with the same arguments"
                    seen.add(key)
                    use, content = await _run_call(call, limits.call_timeout_s, box)
                uses.append(use)
                messages.append(Message("tool", content, tool_call_id=call.id, name=call.name))
                _log_use(task, use)
            if told is None:
                if calls >= limits.max_calls:
                    told = f"its {limits.max_calls} tool call(s) (tools.max_calls) are used up"
                elif budget is not None and tokens > budget:
                    told = f"{tokens} tokens spent, over the {budget} the workflow had left"
    except BaseException as exc:  # a cancellation (the attempt's timeout) too
        if rounds:
            attach_spent(exc, _total(rounds, uses, started, None))
        raise


async def _run_call(call: ToolCall, timeout_s: float, box: Toolbox) -> tuple[ToolUse, str]:
    """Run one call; what to record of it, and the tool message's text (its result, or the
    error the model is given).

    The call runs in a task of its own, waited for up to ``timeout_s``: a tool that ignores
    its cancellation (catches ``CancelledError`` and goes on) is given up on
    (:func:`~automatos.abandoned.abandon`), and neither the attempt nor the run waits for it.
    """
    began = time.perf_counter()
    running = asyncio.ensure_future(_guarded(box.tools, call))
    try:
        done, _ = await asyncio.wait((running,), timeout=timeout_s)
    except asyncio.CancelledError:  # the attempt is being stopped: its timeout, the run's end
        _give_up(running)
        raise
    error: BaseException
    if not done:
        _give_up(running)
        error = ToolTimeoutError(
            call.name, f"no result within {timeout_s:g} s (setting tools.call_timeout_s)"
        )
    elif running.cancelled():  # the tool cancelled itself, or raised CancelledError
        error = ToolError(call.name, "failed: it was cancelled (CancelledError)")
    else:
        outcome = running.result()
        if isinstance(outcome, str):
            # a plugin's Tool that is not bounded itself (a FunctionTool's cut, with its note,
            # is within the room left for a note: not cut again, with a note on the note)
            if len(outcome) > MAX_RESULT_CHARS + _NOTE_ROOM:
                outcome = truncated(outcome, MAX_RESULT_CHARS)
            return _use(call, time.perf_counter() - began, "ok", None, box), outcome
        error = outcome
    if not isinstance(error, ToolError):
        # A plugin's tool that broke the protocol, or raised what ends a program (sys.exit,
        # as argparse does, or a BaseException of its own): the call failed, not the process
        error = ToolError(call.name, f"failed: {describe_exception(error)}")
    message = f"error: {error}"
    return _use(call, time.perf_counter() - began, _outcome(error), message, box), message


async def _guarded(tools: ToolRegistry, call: ToolCall) -> str | BaseException:
    """The call's result, or what it raised (anything but its cancellation): a task that
    raised ``SystemExit`` or ``KeyboardInterrupt`` would stop the event loop itself."""
    try:
        return await tools.call(call)
    except asyncio.CancelledError:
        raise
    except BaseException as exc:  # whatever a plugin raises is its failure
        return exc


def _give_up(running: asyncio.Future[str | BaseException]) -> None:
    """Cancel a call nobody waits for any more; kept until it ends, if it ignores that."""
    running.cancel()
    if isinstance(running, asyncio.Task):
        abandon(running)


def _outcome(error: Exception) -> ToolOutcome:
    if isinstance(error, ToolNotFoundError):
        return "unknown_tool"
    if isinstance(error, ToolArgumentsError):
        return "invalid_arguments"
    if isinstance(error, ToolTimeoutError):
        return "timeout"
    return "failed"


def _over_limit(call: ToolCall, max_calls: int, box: Toolbox) -> tuple[ToolUse, str]:
    message = (
        f"error: not run: this attempt's {max_calls} tool call(s) are used up (setting "
        "tools.max_calls); give your final answer with what you have"
    )
    return _use(call, 0.0, "over_limit", message, box), message


def _use(
    call: ToolCall, latency_s: float, outcome: ToolOutcome, message: str | None, box: Toolbox
) -> ToolUse:
    redactor = box.redactor
    error = None if message is None else redactor.text(message)[:MAX_RECORDED_ERROR_CHARS]
    return ToolUse(
        _recorded_name(call.name, redactor, known=call.name in box.tools),
        call.id[:_MAX_RECORDED_NAME_CHARS],
        _digest(call.arguments),
        latency_s,
        outcome,
        error,
    )


def _recorded_name(name: str, redactor: Redactor, *, known: bool) -> str:
    """A tool name as recorded: a registered one as it is; what else a model wrote, redacted
    and short (it could be anything)."""
    if known:
        return name
    return redactor.text(name[: _MAX_RECORDED_NAME_CHARS * 4])[:_MAX_RECORDED_NAME_CHARS]


def _digest(arguments: str) -> str:
    return hashlib.sha256(arguments.encode("utf-8", "surrogatepass")).hexdigest()[:_DIGEST_CHARS]


def _canonical(arguments: str) -> str:
    """The arguments as one text whatever their spacing and key order, to find a repeated
    call; text that is not JSON as it is."""
    try:
        return json.dumps(json.loads(arguments), sort_keys=True, separators=(",", ":"))
    except (ValueError, RecursionError):
        return arguments.strip()


def _shown(name: str) -> str:
    return repr(name if len(name) <= 64 else name[:64] + "…")


def _log_use(task: AgentTask, use: ToolUse) -> None:
    if not _log.isEnabledFor(logging.DEBUG):
        return
    _log.debug(
        "subtask %r attempt %d: tool %s %s in %.3f s%s",
        task.subtask_id,
        task.attempt,
        use.tool,
        use.outcome,
        use.latency_s,
        "" if use.error is None else f": {use.error}",  # redacted already
    )


def _total(
    rounds: Sequence[Completion], uses: Sequence[ToolUse], started: float, final: Completion | None
) -> Completion:
    """One completion for the loop: the final answer's text (none when it failed first), the
    rounds' tokens and costs summed, the loop's wall time."""
    last = rounds[-1]
    return Completion(
        text=final.text if final is not None else "",
        model=last.model,
        tokens_in=sum(r.tokens_in for r in rounds),
        tokens_out=sum(r.tokens_out for r in rounds),
        latency_s=time.perf_counter() - started,
        cost_usd=sum(r.cost_usd for r in rounds),
        finish_reason=final.finish_reason if final is not None else None,
        priced=all(r.priced for r in rounds),
        rounds=tuple(rounds),
        tool_uses=tuple(uses),
    )


def attach_spent(exc: BaseException, spent: Completion) -> None:
    """Put ``spent`` on ``exc`` (as ``spent``) unless it carries what it spent already.
    :class:`~automatos.errors.ToolLoopError` declares the attribute; other errors (a model
    call's, a cancellation's) get it too, so that whoever catches them can account it."""
    if isinstance(exc, ToolLoopError):
        if exc.spent is None:
            exc.spent = spent
        return
    if getattr(exc, "spent", None) is None:
        with contextlib.suppress(AttributeError, TypeError):  # an exception type with slots
            exc.spent = spent  # type: ignore[attr-defined]


def spent_of(exc: BaseException) -> Completion | None:
    """What the attempt that raised ``exc`` spent before it failed (its tool loop's model
    calls, summed, with ``rounds`` and ``tool_uses``), or ``None`` (nothing, or no tool loop).

    Looked for on ``exc`` and on the exceptions it was raised from: an attempt stopped by its
    timeout raises a timeout error over the loop's cancellation, which carries it.
    """
    current: BaseException | None = exc
    for _ in range(4):
        if current is None:
            return None
        spent = getattr(current, "spent", None)
        if isinstance(spent, Completion):
            return spent
        current = current.__cause__ or current.__context__
    return None
