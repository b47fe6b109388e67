"""Timeouts and retries around any provider, added by wrapping it."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping, Sequence
from typing import Any

from automatos.errors import LLMTimeoutError, RateLimitedError, is_retryable
from automatos.llm.base import Completion, LLMProvider, Message

__all__ = ["RetryingLLM", "backoff_delay"]


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


class RetryingLLM:
    """Puts every call under a timeout and retries what a retry can fix.

    Retries happen on :class:`~automatos.errors.LLMError` subclasses that are ``retryable``
    (429, 5xx, unreachable, timeout), up to ``max_retries`` times.
    """

    def __init__(
        self,
        inner: LLMProvider,
        *,
        timeout_s: float,
        max_retries: int,
        backoff_base_s: float,
        backoff_max_s: float,
    ) -> None:
        self.inner = inner
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s

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
        """Call the wrapped provider, retrying transient failures."""
        timeout = timeout_s or self.timeout_s
        attempt = 0
        while True:
            attempt += 1
            try:
                async with asyncio.timeout(timeout):
                    return await self.inner.complete(
                        messages,
                        model=model,
                        temperature=temperature,
                        max_tokens=max_tokens,
                        json_schema=json_schema,
                        timeout_s=timeout,
                    )
            except TimeoutError as exc:
                error: Exception = LLMTimeoutError(f"no answer within {timeout:g} s")
                error.__cause__ = exc
            except Exception as exc:
                error = exc
            if attempt > self.max_retries or not is_retryable(error):
                raise error
            retry_after = error.retry_after if isinstance(error, RateLimitedError) else None
            await asyncio.sleep(
                backoff_delay(attempt, self.backoff_base_s, self.backoff_max_s, retry_after)
            )
