"""The LLM seam: one Protocol for chat completion, and the values that cross it."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, get_args, runtime_checkable

from automatos.domain.tools import ToolOutcome, ToolUse
from automatos.errors import describe_kind, describe_value

__all__ = [
    "Completion",
    "LLMProvider",
    "Message",
    "ToolCall",
    "ToolOutcome",
    "ToolSpec",
    "ToolUse",
    "completion_problem",
    "estimate_tokens",
]

Role = Literal["system", "user", "assistant", "tool"]


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A model's request to call one tool.

    ``arguments`` is the JSON text the model wrote, unparsed: a model can write broken JSON,
    and that is the tool layer's to report back to the model, not the provider's to crash on.
    """

    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A tool as a model sees it: a name, what it does, and the JSON schema of its arguments
    (an object schema)."""

    name: str
    description: str
    parameters: Mapping[str, Any]


@dataclass(slots=True)
class Message:
    """One chat message.

    An assistant message may carry ``tool_calls``; a ``tool`` message is one tool's result,
    answering the call whose id is ``tool_call_id`` (``name`` is the tool's). A tool's result
    is data for the model: it never enters a system message.
    """

    role: Role
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None


@dataclass(slots=True)
class Completion:
    """A model's answer to one call, with what it cost."""

    text: str
    model: str
    tokens_in: int
    tokens_out: int
    latency_s: float
    cost_usd: float = 0.0
    finish_reason: str | None = None
    priced: bool = True
    """Whether ``cost_usd`` is known: ``False`` for a model missing from the price table
    (its cost then counts as 0 and the result says it is unknown)."""
    tool_calls: tuple[ToolCall, ...] = ()
    """The tools the model asks to call before it answers (``text`` may then be empty)."""
    rounds: tuple[Completion, ...] = ()
    """An answer reached through a tool loop: each model call of the loop, in order, with
    its own tokens, cost and latency (this completion's figures are their sums, plus the
    tools' time in ``latency_s``). Empty for an answer of one call."""
    tool_uses: tuple[ToolUse, ...] = ()
    """The tool calls of the loop, in order."""


def completion_problem(value: object) -> str | None:
    """What makes ``value`` something other than a sound :class:`Completion` (a phrase that
    follows "returned"), or ``None``.

    Plugins (providers, runners, the servers behind them) can hand back anything: the
    engine sums tokens and dollars and quotes the text, so each field must be what its type
    says (a server's ``"usage": {"prompt_tokens": null}`` included), and so must each round
    and tool use of a tool loop.
    """
    if (  # the usual case, in one expression: this runs on every call
        type(value) is Completion
        and type(value.text) is str
        and type(value.model) is str
        and type(value.tokens_in) is int
        and type(value.tokens_out) is int
        and value.tokens_in >= 0
        and value.tokens_out >= 0
        and type(value.latency_s) in _NUMBERS
        and type(value.cost_usd) in _NUMBERS
        and 0 <= value.latency_s < math.inf
        and 0 <= value.cost_usd < math.inf
    ):
        # The empty tuple is one object: three identity tests say "no tools" at once.
        if value.tool_calls is _NONE and value.rounds is _NONE and value.tool_uses is _NONE:
            return None
        return _tools_problem(value)
    if type(value) is not Completion:
        return f"{describe_value(value)} instead of a Completion"
    for name, kind in _FIELDS:
        field = getattr(value, name)
        if kind is str and type(field) is not str:
            return f"a Completion whose {name} is {describe_kind(field)}, not a str"
        if kind is int and (type(field) is not int or field < 0):
            return f"a Completion whose {name} is {describe_kind(field)}, not a count"
        if kind is float and (type(field) not in _NUMBERS or not 0 <= field < math.inf):
            return f"a Completion whose {name} is {describe_kind(field)}, not a finite amount"
    return _tools_problem(value)


def _tools_problem(value: Completion) -> str | None:
    """What is wrong with a Completion's tool calls, rounds or tool uses, or ``None``. A
    round is a sound completion without rounds of its own."""
    for name in ("tool_calls", "rounds", "tool_uses"):
        field = getattr(value, name)
        if type(field) is not tuple:
            return f"a Completion whose {name} is {describe_kind(field)}, not a tuple"
    problem = _tool_calls_problem(value.tool_calls) if value.tool_calls else None
    if problem is not None:
        return problem
    for i, round_ in enumerate(value.rounds):
        if type(round_) is Completion and round_.rounds:
            return f"a Completion whose rounds[{i}] has rounds of its own"
        problem = completion_problem(round_)
        if problem is not None:
            return f"a Completion whose rounds[{i}] is {problem}"
    for i, use in enumerate(value.tool_uses):
        problem = _tool_use_problem(use)
        if problem is not None:
            return f"a Completion whose tool_uses[{i}] {problem}"
    return None


def _tool_use_problem(use: object) -> str | None:
    if type(use) is not ToolUse:
        return f"is {describe_kind(use)}, not a ToolUse"
    for name in ("tool", "call_id", "arguments_digest"):
        field = getattr(use, name)
        if type(field) is not str:
            return f"has a {name} that is {describe_kind(field)}, not a str"
    if type(use.latency_s) not in _NUMBERS or not 0 <= use.latency_s < math.inf:
        return f"has a latency_s that is {describe_kind(use.latency_s)}, not a finite amount"
    if use.outcome not in _OUTCOMES:
        return "has an outcome that is not one of " + ", ".join(_OUTCOMES)
    if use.error is not None and type(use.error) is not str:
        return f"has an error that is {describe_kind(use.error)}, not a str"
    return None


def _tool_calls_problem(calls: tuple[object, ...]) -> str | None:
    """What is wrong with a Completion's non-empty ``tool_calls``, or ``None``. A call's
    name and arguments may be anything a model wrote (the tool layer answers those), but
    each must be text."""
    for i, call in enumerate(calls):
        if type(call) is not ToolCall:
            return f"a Completion whose tool_calls[{i}] is {describe_kind(call)}, not a ToolCall"
        for name in ("id", "name", "arguments"):
            field = getattr(call, name)
            if type(field) is not str:
                return (
                    f"a Completion whose tool_calls[{i}].{name} is {describe_kind(field)}, "
                    "not a str"
                )
    return None


_NUMBERS = (float, int)
_NONE: tuple[()] = ()
_OUTCOMES: tuple[str, ...] = get_args(ToolOutcome)
_FIELDS = (
    ("text", str),
    ("model", str),
    ("tokens_in", int),
    ("tokens_out", int),
    ("latency_s", float),
    ("cost_usd", float),
)


@runtime_checkable
class LLMProvider(Protocol):
    """Anything that completes a chat.

    ``json_schema``, when given, asks for a JSON answer of that schema; providers enforce it
    as far as their server allows, and callers validate the answer anyway.

    ``tools``, when given, lets the model answer with :attr:`Completion.tool_calls` instead
    of text; ``tool_choice`` is ``"auto"`` (the default), ``"required"``, ``"none"`` or one
    tool's name. Callers pass these two only when there are tools, so a provider written
    before tools existed keeps working for agents without tools. Providers raise
    :class:`~automatos.errors.LLMError` subclasses so that the retry layer knows what a
    retry can fix.
    """

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
        """Answer ``messages``."""
        ...


_IDEOGRAPHS = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def estimate_tokens(text: str) -> int:
    """A tokenizer-free count, for models whose tokenizer is not on this machine and servers
    that report no usage: the larger of 1.3 tokens per word and 1 token per 4 characters,
    rounded up (0 for empty text). The first is close for English prose with a BPE tokenizer; the
    second keeps long runs without spaces (URLs, base64, code) from counting as one token.
    Chinese and Japanese characters count one token each (BPE tokenizers give them one to
    three)."""
    ideographs = len(_IDEOGRAPHS.findall(text))
    if ideographs:  # Chinese and Japanese: about one token a character, and no spaces
        rest = _IDEOGRAPHS.sub(" ", text)
        return ideographs + max(math.ceil(len(rest.split()) * 1.3), math.ceil(len(rest) / 4))
    words = len(text.split())
    return max(math.ceil(words * 1.3), math.ceil(len(text) / 4))
