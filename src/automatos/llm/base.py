"""The LLM seam: one Protocol for chat completion, and the values that cross it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

__all__ = ["Completion", "LLMProvider", "Message", "estimate_tokens"]

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


def estimate_tokens(text: str) -> int:
    """A rough token count (four characters a token) for servers that report no usage."""
    return max(1, len(text) // 4)
