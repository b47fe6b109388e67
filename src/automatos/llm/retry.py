"""Backoff between retries."""

from __future__ import annotations

import random

__all__ = ["backoff_delay"]


def backoff_delay(attempt: int, base_s: float, max_s: float, retry_after: float | None) -> float:
    """Delay before retry number ``attempt`` (1-based): exponential with jitter.

    A server's ``Retry-After`` wins when it asks for longer, since retrying sooner is
    certain to be refused again.
    """
    ceiling = min(max_s, base_s * 2 ** (attempt - 1))
    delay = random.uniform(ceiling / 2, ceiling)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay
