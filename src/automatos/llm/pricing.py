"""Dollar cost of a call, from the price table in the settings."""

from __future__ import annotations

from collections.abc import Mapping

from automatos.settings import ModelPrice

__all__ = ["cost_of"]


def cost_of(model: str, tokens_in: int, tokens_out: int, prices: Mapping[str, ModelPrice]) -> float:
    """Cost in dollars; zero for a model missing from ``prices``."""
    price = prices.get(model)
    if price is None:
        return 0.0
    return (tokens_in * price.input_per_mtok + tokens_out * price.output_per_mtok) / 1e6
