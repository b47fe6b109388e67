"""Timeouts, retries and prices around any provider, added by wrapping it."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import math
from collections.abc import Awaitable, Mapping, Sequence
from typing import Any

from automatos.abandoned import abandon
from automatos.deadlines import DeadlineQueue, being_cancelled, caller_timeout
from automatos.errors import (
    AutomatosError,
    LLMTimeoutError,
    ProviderContractError,
    RateLimitedError,
    describe_exception,
    is_retryable,
)
from automatos.llm.base import (
    Completion,
    LLMProvider,
    Message,
    ToolSpec,
    completion_problem,
)
from automatos.llm.pricing import price_for
from automatos.llm.profile import ModelProfile, profile_of
from automatos.llm.retry import backoff_delay
from automatos.settings import LLMSettings, ModelPrice

__all__ = ["ManagedLLM"]


class ManagedLLM:
    """Every call under a timeout, transient failures retried, every answer priced.

    Retries happen on :class:`~automatos.errors.LLMError` subclasses that are ``retryable``
    (429 honouring ``Retry-After``, 5xx, unreachable, timeout), up to ``max_retries`` times
    with exponential backoff and jitter. One wrapper rather than three keeps the per-call
    overhead low: thousands of calls a second pass through here.

    A provider that breaks its contract (returns something that is not a
    :class:`~automatos.llm.Completion`, or raises an exception that is not an
    :class:`~automatos.errors.AutomatosError`, a ``CancelledError`` nobody asked for included)
    raises :class:`~automatos.errors.ProviderContractError` naming it, called again once (a
    garbled answer may be a one-off; twice is how the provider is). A model missing from the
    price table is reported as unpriced (``Completion.priced``), unless the provider says it
    is ``free`` (a model in this process).
    """

    def __init__(
        self, inner: LLMProvider, settings: LLMSettings, *, cancel_grace_s: float = 5.0
    ) -> None:
        self.inner = inner
        self.settings = settings
        self.cancel_grace_s = cancel_grace_s
        """How long a call that was cancelled may take to stop before it is abandoned."""
        self.name = type(inner).__name__
        self.free = bool(getattr(inner, "free", False))
        """Calls cost nothing (a model run in this process): no price is needed."""
        self.profile: ModelProfile = profile_of(inner, settings.profile)
        """What the model can do: the provider's word, with the settings' overrides."""
        self._tokens = itertools.count()
        self._deadlines: DeadlineQueue | None = None
        self._prices: dict[str, ModelPrice | None] = {}

    def price_known(self, model: str) -> bool:
        """Whether a call to ``model`` has a known cost (a price, or a free provider)."""
        return self.free or self._price(model) is not None

    def _price(self, model: str) -> ModelPrice | None:
        try:
            return self._prices[model]
        except KeyError:
            price = self._prices[model] = price_for(model, self.settings.prices)
            return price

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
        """Call the wrapped provider; retry what a retry can fix; price the answer."""
        settings = self.settings
        timeout = timeout_s or settings.timeout_s
        shared = timeout == settings.timeout_s
        # The caller cancels this task before our timeout could fire (the dispatcher's
        # attempt timeout, usually): a timer here would be dead weight on every call.
        caller = caller_timeout.get()
        bounded = caller <= timeout
        # Outside a subtask nothing else would stop a provider that ignores its
        # cancellation: such calls run as a task of their own, which can be given up on.
        guarded = caller == math.inf
        # Passed only when given: a provider written before tools existed takes neither.
        tooling: dict[str, Any] = {}
        if tools is not None:
            tooling["tools"] = tools
        if tool_choice is not None:
            tooling["tool_choice"] = tool_choice
        attempt = 0
        while True:
            attempt += 1
            try:
                call = self.inner.complete(
                    messages,
                    model=model,
                    temperature=temperature,
                    max_tokens=max_tokens,
                    json_schema=json_schema,
                    timeout_s=timeout,
                    **tooling,
                )
                if guarded:
                    done = await self._guarded(call, timeout)
                elif bounded:
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
                        expired = queue.disarm(token)
                        if not expired or being_cancelled():  # the caller's cancellation wins
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
            except AutomatosError as exc:
                error: AutomatosError = exc
            except asyncio.CancelledError:
                if being_cancelled():
                    raise
                error = self._broken("raised CancelledError without being cancelled")
            except BaseException as exc:  # a plugin's bug must not escape as a foreign type
                error = self._broken(f"raised {describe_exception(exc)}")
                error.__cause__ = exc
            else:
                problem = completion_problem(done)
                if problem is None:
                    return self._priced(done)
                error = self._broken(f"returned {problem}")
            if attempt > settings.max_retries or not is_retryable(error):
                raise error
            if isinstance(error, ProviderContractError) and attempt > 1:
                raise error  # once may be a garbled answer; twice is how the provider is
            retry_after = error.retry_after if isinstance(error, RateLimitedError) else None
            delay = backoff_delay(
                attempt, settings.backoff_base_s, settings.backoff_max_s, retry_after
            )
            if delay >= caller_timeout.get():
                raise error  # the caller would cancel the wait: let it decide, Retry-After in hand
            await asyncio.sleep(delay)

    async def _guarded(self, call: Awaitable[Completion], within_s: float) -> Completion:
        """Await ``call`` as a task of its own, within ``within_s``; a call that does not stop
        within the grace period once cancelled is abandoned, and so is one whose caller is
        cancelled (the caller goes at once)."""
        task = asyncio.ensure_future(self._contained(call))
        try:
            finished, _ = await asyncio.wait({task}, timeout=within_s)
            if not finished:
                task.cancel()
                await asyncio.wait({task}, timeout=self.cancel_grace_s)
                raise LLMTimeoutError(f"no answer within {within_s:g} s")
        except BaseException:
            task.cancel()
            abandon(task)
            raise
        return task.result()

    async def _contained(self, call: Awaitable[Completion]) -> Completion:
        """``call``, with what it raises typed inside its own task: a task would re-raise a
        ``KeyboardInterrupt`` or ``SystemExit`` into the event loop itself."""
        try:
            return await call
        except (AutomatosError, asyncio.CancelledError):
            raise
        except BaseException as exc:
            raise self._broken(f"raised {describe_exception(exc)}") from exc

    def _broken(self, what: str) -> ProviderContractError:
        return ProviderContractError(f"provider {self.name} {what}"[:2000])

    def _priced(self, done: Completion) -> Completion:
        price = self._price(done.model)
        if price is None:
            if self.free:
                return done
            return dataclasses.replace(done, cost_usd=0.0, priced=False)
        cost = (
            done.tokens_in * price.input_per_mtok + done.tokens_out * price.output_per_mtok
        ) / 1e6
        return dataclasses.replace(done, cost_usd=cost) if cost != done.cost_usd else done
