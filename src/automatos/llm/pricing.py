"""Dollar cost of a call, from the price table in the settings.

Providers answer with the exact model that served a call, often a dated snapshot of the name
that was asked for (``gpt-4o-mini-2024-07-18`` for ``gpt-4o-mini``,
``claude-sonnet-4-5-20250929``), or with a router's prefix (``openai/gpt-4o-mini``). A price
is looked up under the name as given, then without the prefix, then without the date (on
both sides: a table's ``-latest`` alias prices its dated snapshots); a model found under none
of them has no known price, which is reported, never taken as free.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from automatos.settings import ModelPrice

__all__ = ["cost_of", "price_for"]

# A snapshot date (-2024-07-18, -20250929, @20241022) or a moving alias (-latest) at the end.
_SNAPSHOT = re.compile(r"(?:[-@](?:\d{4}-\d{2}-\d{2}|\d{8})|-latest)$")


def _names(model: str) -> list[str]:
    """``model`` as given, without a router's prefix, and without a date (or ``-latest``)."""
    names = [model]
    bare = model.rsplit("/", 1)[-1]
    if bare != model:
        names.append(bare)
    for name in list(names):
        undated = _SNAPSHOT.sub("", name)
        if undated != name and undated:
            names.append(undated)
    return names


def price_for(model: str, prices: Mapping[str, ModelPrice]) -> ModelPrice | None:
    """The price of ``model``, under its own name or the one it is a snapshot of.

    Dates are compared on both sides: ``claude-3-5-haiku-20241022`` finds a price listed
    under ``claude-3-5-haiku-latest``.
    """
    price = prices.get(model)
    if price is not None:
        return price
    names = _names(model)
    for name in names[1:]:
        price = prices.get(name)
        if price is not None:
            return price
    undated = names[-1]
    for listed, price in prices.items():
        if _SNAPSHOT.sub("", listed.rsplit("/", 1)[-1]) == undated:
            return price
    return None


def cost_of(
    model: str, tokens_in: int, tokens_out: int, prices: Mapping[str, ModelPrice]
) -> float | None:
    """Cost in dollars; ``None`` for a model with no price in ``prices``."""
    price = price_for(model, prices)
    if price is None:
        return None
    return (tokens_in * price.input_per_mtok + tokens_out * price.output_per_mtok) / 1e6
