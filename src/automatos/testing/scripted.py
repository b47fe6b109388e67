"""A scripted LLM for tests and benchmarks: replies by rule or in sequence, with latency and
injected faults, through the same Protocol as the real providers.

A reply is text, a :class:`Fault`, a :class:`~automatos.llm.base.ToolCall`, several tool
calls (one answer asking for all of them), or a function of the messages giving one of
these. Tool calls are what a model would write, bad ones included: an unknown tool's name,
arguments that are not JSON (:func:`tool_call` builds them).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from automatos.errors import (
    ConfigurationError,
    ProviderUnavailableError,
    RateLimitedError,
)
from automatos.llm.base import Completion, Message, ToolCall, ToolSpec, estimate_tokens
from automatos.llm.profile import ModelProfile

__all__ = ["Fault", "Rule", "ScriptedCall", "ScriptedLLM", "tool_call"]

_call_ids = itertools.count(1)


def tool_call(
    name: str, arguments: Mapping[str, Any] | str = "{}", *, id: str | None = None
) -> ToolCall:
    """A tool call to script: ``arguments`` as an object (written as JSON) or as the text a
    model would write, broken JSON included; the id is ``call_<n>`` unless given."""
    text = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return ToolCall(id if id is not None else f"call_{next(_call_ids)}", name, text)


@dataclass(frozen=True)
class Fault:
    """A failure to inject in place of a reply. Build one with the class methods."""

    kind: str
    retry_after: float | None = None
    text: str = ""

    @classmethod
    def malformed_json(cls, text: str = '{"subtasks": [{"id": "a", "descr') -> Fault:
        """Answer with text that is not valid JSON (truncated by default)."""
        return cls("malformed_json", text=text)

    @classmethod
    def rate_limit(cls, retry_after: float | None = 0.0) -> Fault:
        """Raise a 429 carrying ``Retry-After``."""
        return cls("rate_limit", retry_after=retry_after)

    @classmethod
    def server_error(cls) -> Fault:
        """Raise a 500."""
        return cls("server_error")

    @classmethod
    def timeout(cls) -> Fault:
        """Never answer, so that the caller's timeout fires."""
        return cls("timeout")


Answer = str | Fault | ToolCall | Sequence[ToolCall]
Reply = Answer | Callable[[Sequence[Message]], Answer]


@dataclass
class Rule:
    """Reply with ``reply`` to calls whose last user message (by default) matches ``match``.

    ``match`` is a regular expression searched in that message, or a predicate on it.
    ``times`` limits how often the rule fires; ``None`` is unlimited. ``role`` says which
    message is searched:

    - ``"user"`` (the default): the last user message. In a tool loop it stays the same
      from turn to turn, so such a rule answers every turn unless ``times`` limits it;
    - ``"tool"``: the last message, only when it is a tool's result: the rule answers
      once a tool ran (with several results in a row, the last one is searched);
    - ``"any"``: the last message, whatever its role.

    Rules are tried in order: put those on tool results before those on the task.
    """

    match: str | re.Pattern[str] | Callable[[str], bool]
    reply: Reply
    times: int | None = None
    role: Literal["user", "tool", "any"] = "user"

    def matches(self, prompt: str) -> bool:
        """Whether this rule answers ``prompt``."""
        if self.times is not None and self.times <= 0:
            return False
        if callable(self.match):
            return self.match(prompt)
        return re.search(self.match, prompt) is not None

    def subject(self, messages: Sequence[Message]) -> str | None:
        """The text of ``messages`` that ``match`` is searched in (see ``role``), or
        ``None`` when there is none for this rule."""
        if self.role == "user":
            return _last_user(messages)
        if not messages:
            return None
        last = messages[-1]
        return last.content if self.role == "any" or last.role == "tool" else None


@dataclass(frozen=True)
class ScriptedCall:
    """One call the scripted LLM received, with the tools it was offered."""

    messages: tuple[Message, ...]
    model: str | None
    json_schema: Mapping[str, Any] | None
    tools: tuple[ToolSpec, ...] | None = None
    tool_choice: str | None = None


def _last_user(messages: Sequence[Message]) -> str:
    return next((m.content for m in reversed(messages) if m.role == "user"), "")


@dataclass
class ScriptedLLM:
    """An :class:`~automatos.llm.LLMProvider` that answers from a script.

    A call is answered by the first matching rule, else by the next reply of ``replies``,
    else by ``default``; with none of these it raises
    :class:`~automatos.errors.ConfigurationError`. ``latency`` is seconds (or a function of
    the messages giving seconds) slept before answering. Calls are kept in :attr:`calls`
    unless ``record`` is false.
    """

    replies: Iterable[Reply] = ()
    rules: Sequence[Rule] = ()
    default: Reply | None = None
    latency: float | Callable[[Sequence[Message]], float] = 0.0
    model: str = "scripted"
    free: bool = True
    """Calls cost nothing, so no price is needed; ``False`` to test an unpriced model."""
    record: bool = True
    profile: ModelProfile | None = None
    """What the scripted model says it can do (a small model's, to test that path); unset,
    a capable model's."""
    calls: list[ScriptedCall] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._queue: deque[Reply] = deque(self.replies)

    def _pick(self, messages: Sequence[Message]) -> Reply:
        if self.rules:
            for rule in self.rules:
                subject = rule.subject(messages)
                if subject is not None and rule.matches(subject):
                    if rule.times is not None:
                        rule.times -= 1
                    return rule.reply
        if self._queue:
            return self._queue.popleft()
        if self.default is not None:
            return self.default
        raise ConfigurationError(
            f"the scripted LLM has no reply for: {_last_user(messages)[:200]!r}"
        )

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
        """Answer from the script."""
        if self.record:
            offered = None if tools is None else tuple(tools)
            self.calls.append(
                ScriptedCall(tuple(messages), model, json_schema, offered, tool_choice)
            )
        delay = self.latency(messages) if callable(self.latency) else self.latency
        if delay > 0:
            await asyncio.sleep(delay)
        reply = self._pick(messages)
        if callable(reply):
            reply = reply(messages)
        if isinstance(reply, Fault):
            reply = await self._fault(reply)
        prompt_chars = sum([len(m.content) for m in messages])
        if isinstance(reply, str):
            return Completion(
                reply, model or self.model, max(1, prompt_chars // 4), estimate_tokens(reply), delay
            )
        calls = (reply,) if isinstance(reply, ToolCall) else tuple(reply)
        return Completion(
            "",
            model or self.model,
            max(1, prompt_chars // 4),
            sum(estimate_tokens(c.name + c.arguments) for c in calls),
            delay,
            finish_reason="tool_calls",
            tool_calls=calls,
        )

    async def _fault(self, fault: Fault) -> str:
        if fault.kind == "malformed_json":
            return fault.text
        if fault.kind == "rate_limit":
            raise RateLimitedError("HTTP 429: scripted rate limit", retry_after=fault.retry_after)
        if fault.kind == "server_error":
            raise ProviderUnavailableError("HTTP 500: scripted server error")
        await asyncio.Event().wait()  # a hung server: only the caller's timeout ends this
        raise AssertionError("unreachable")  # pragma: no cover
