"""Timeouts, retries and prices around any provider, added by wrapping it."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from collections.abc import Mapping, Sequence
from typing import Any

from automatos.deadlines import DeadlineQueue, caller_timeout
from automatos.errors import LLMTimeoutError, RateLimitedError, is_retryable
from automatos.llm.base import Completion, LLMProvider, Message
from automatos.llm.pricing import cost_of
from automatos.llm.retry import backoff_delay
from automatos.settings import LLMSettings

__all__ = ["ManagedLLM"]


class ManagedLLM:
    """Every call under a timeout, transient failures retried, every answer priced.

    Retries happen on :class:`~automatos.errors.LLMError` subclasses that are ``retryable``
    (429 honouring ``Retry-After``, 5xx, unreachable, timeout), up to ``max_retries`` times
    with exponential backoff and jitter. One wrapper rather than three keeps the per-call
    overhead low: thousands of calls a second pass through here.
    """

    def __init__(self, inner: LLMProvider, settings: LLMSettings) -> None:
        self.inner = inner
        self.settings = settings
        self._tokens = itertools.count()
        self._deadlines: DeadlineQueue | None = None

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
        """Call the wrapped provider; retry what a retry can fix; price the answer."""
        settings = self.settings
        timeout = timeout_s or settings.timeout_s
        shared = timeout == settings.timeout_s
        # The caller cancels this task before our timeout could fire (the dispatcher's
        # attempt timeout, usually): a timer here would be dead weight on every call.
        bounded = caller_timeout.get() <= timeout
        attempt = 0
        while True:
            attempt += 1
            call = self.inner.complete(
                messages,
                model=model,
                temperature=temperature,
                max_tokens=max_tokens,
                json_schema=json_schema,
                timeout_s=timeout,
            )
            try:
                if bounded:
                    done = await call
                elif shared:
                    # The usual case, the default timeout: on the shared deadline queue,
                    # inline, since every layer here is paid on every call.
                    queue = self._deadlines
                    if queue is None or not queue.is_current():
                        queue = self._deadlines = DeadlineQueue(timeout)
                    token = next(self._tokens)
                    queue.arm(token)
                    try:
                        done = await call
                    except asyncio.CancelledError:
                        if not queue.disarm(token):
                            raise
                        raise LLMTimeoutError(f"no answer within {timeout:g} s") from None
                    except BaseException:
                        queue.disarm(token)
                        raise
                    queue.disarm(token)
                else:
                    try:
                        async with asyncio.timeout(timeout):
                            done = await call
                    except TimeoutError as exc:
                        raise LLMTimeoutError(f"no answer within {timeout:g} s") from exc
            except Exception as exc:
                if attempt > settings.max_retries or not is_retryable(exc):
                    raise
                retry_after = exc.retry_after if isinstance(exc, RateLimitedError) else None
                delay = backoff_delay(
                    attempt, settings.backoff_base_s, settings.backoff_max_s, retry_after
                )
                if delay >= caller_timeout.get():
                    raise  # the caller would cancel the wait: let it decide, Retry-After in hand
                await asyncio.sleep(delay)
                continue
            cost = cost_of(done.model, done.tokens_in, done.tokens_out, settings.prices)
            return dataclasses.replace(done, cost_usd=cost) if cost else done
