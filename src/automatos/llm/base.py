"""The LLM seam: one Protocol for chat completion, and the values that cross it."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

from automatos.errors import describe_kind, describe_value

__all__ = ["Completion", "LLMProvider", "Message", "completion_problem", "estimate_tokens"]

Role = Literal["system", "user", "assistant"]


@dataclass(slots=True)
class Message:
    """One chat message."""

    role: Role
    content: str


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


def completion_problem(value: object) -> str | None:
    """What makes ``value`` something other than a sound :class:`Completion` (a phrase that
    follows "returned"), or ``None``.

    Plugins (providers, runners, the servers behind them) can hand back anything: the
    engine sums tokens and dollars and quotes the text, so each field must be what its type
    says (a server's ``"usage": {"prompt_tokens": null}`` included).
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
        return None
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
    return "a Completion of an unknown shape"  # pragma: no cover - the checks above are all


_NUMBERS = (float, int)
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
    as far as their server allows, and callers validate the answer anyway. Providers raise
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
