"""Dollar cost of each call, from the price table in the settings."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from automatos.llm.base import Completion, LLMProvider, Message
from automatos.settings import ModelPrice

__all__ = ["PricedLLM", "cost_of"]


def cost_of(model: str, tokens_in: int, tokens_out: int, prices: Mapping[str, ModelPrice]) -> float:
    """Cost in dollars; zero for a model missing from ``prices``."""
    price = prices.get(model)
    if price is None:
        return 0.0
    return (tokens_in * price.input_per_mtok + tokens_out * price.output_per_mtok) / 1e6


class PricedLLM:
    """Fills in :attr:`Completion.cost_usd` of every answer of the wrapped provider."""

    def __init__(self, inner: LLMProvider, prices: Mapping[str, ModelPrice]) -> None:
        self.inner = inner
        self.prices = prices

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
        """Call the wrapped provider and price its answer."""
        done = await self.inner.complete(
            messages,
            model=model,
            temperature=temperature,
            max_tokens=max_tokens,
            json_schema=json_schema,
            timeout_s=timeout_s,
        )
        cost = cost_of(done.model, done.tokens_in, done.tokens_out, self.prices)
        return dataclasses.replace(done, cost_usd=cost) if cost else done
