import asyncio
import time

import pytest

from automatos import (
    LLMTimeoutError,
    ProviderContractError,
    ProviderRequestError,
    ProviderUnavailableError,
    RateLimitedError,
)
from automatos.deadlines import caller_timeout
from automatos.llm import Completion, ManagedLLM, Message, backoff_delay, cost_of, price_for
from automatos.settings import LLMSettings, ModelPrice
from automatos.testing import Fault, ScriptedLLM

HELLO = [Message("user", "hello")]


def managed(llm: ScriptedLLM, **overrides: object) -> ManagedLLM:
    base = {"timeout_s": 5.0, "max_retries": 3, "backoff_base_s": 0.001, "backoff_max_s": 0.01}
    return ManagedLLM(llm, LLMSettings.model_validate(base | overrides))


async def test_429_waits_for_retry_after_then_succeeds() -> None:
    llm = ScriptedLLM([Fault.rate_limit(retry_after=0.2), "fine"])
    started = time.perf_counter()
    done = await managed(llm).complete(HELLO)
    assert done.text == "fine"
    assert time.perf_counter() - started >= 0.19
    assert len(llm.calls) == 2


async def test_5xx_is_retried_until_it_gives_up() -> None:
    llm = ScriptedLLM([Fault.server_error()] * 3 + ["ok"])
    assert (await managed(llm).complete(HELLO)).text == "ok"
    llm = ScriptedLLM([Fault.server_error()] * 5)
    with pytest.raises(ProviderUnavailableError):
        await managed(llm, max_retries=2).complete(HELLO)
    assert len(llm.calls) == 3


async def test_a_hung_call_times_out_and_is_retried() -> None:
    llm = ScriptedLLM([Fault.timeout(), Fault.timeout()])
    with pytest.raises(LLMTimeoutError, match=r"0\.05"):
        await managed(llm, timeout_s=0.05, max_retries=1).complete(HELLO)
    assert len(llm.calls) == 2
    llm = ScriptedLLM([Fault.timeout(), "late but fine"])
    assert (await managed(llm, timeout_s=0.05).complete(HELLO)).text == "late but fine"


async def test_a_call_with_its_own_timeout() -> None:
    llm = ScriptedLLM([Fault.timeout()])
    with pytest.raises(LLMTimeoutError, match=r"0\.03"):
        await managed(llm, max_retries=0).complete(HELLO, timeout_s=0.03)


async def test_under_a_tighter_caller_timeout_no_timer_of_its_own_runs() -> None:
    # The dispatcher cancels the task first: the wrapper's timeout could never fire, so it
    # is not armed, and the caller's cancellation reaches the caller as a cancellation.
    llm = ScriptedLLM([Fault.timeout()])
    wrapper = managed(llm, timeout_s=0.05)

    async def under_caller(limit: float) -> None:
        caller_timeout.set(limit)
        await wrapper.complete(HELLO)

    task = asyncio.create_task(under_caller(0.05))
    await asyncio.sleep(0.2)  # past the wrapper's own timeout: it did not fire
    assert not task.done()
    assert wrapper._deadlines is None
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_under_a_looser_caller_timeout_its_own_timeout_still_fires() -> None:
    llm = ScriptedLLM([Fault.timeout(), "second try"])
    wrapper = managed(llm, timeout_s=0.05)

    async def under_caller() -> str:
        caller_timeout.set(10.0)
        return (await wrapper.complete(HELLO)).text

    assert await asyncio.wait_for(under_caller(), 2) == "second try"
    assert len(llm.calls) == 2


async def test_a_wait_longer_than_the_caller_allows_is_left_to_the_caller() -> None:
    llm = ScriptedLLM([Fault.rate_limit(retry_after=5.0), "too late"])
    wrapper = managed(llm)

    async def under_caller() -> str:
        caller_timeout.set(1.0)  # the dispatcher would cancel a 5 s wait after 1 s
        return (await wrapper.complete(HELLO)).text

    started = time.perf_counter()
    with pytest.raises(RateLimitedError) as caught:
        await asyncio.wait_for(under_caller(), 3)
    assert caught.value.retry_after == 5.0 and time.perf_counter() - started < 0.5
    assert len(llm.calls) == 1


async def test_a_refused_call_is_not_retried() -> None:
    def refuse(_: object) -> str:
        raise ProviderRequestError("HTTP 401: bad key")

    llm = ScriptedLLM(default=refuse)
    with pytest.raises(ProviderRequestError):
        await managed(llm).complete(HELLO)
    assert len(llm.calls) == 1


async def test_an_outside_cancel_stays_a_cancel() -> None:
    llm = ScriptedLLM([Fault.timeout()])
    task = asyncio.create_task(managed(llm).complete(HELLO))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_answers_are_priced() -> None:
    llm = ScriptedLLM(default="x" * 400, model="m")
    prices = {"m": ModelPrice(input_per_mtok=1.0, output_per_mtok=2.0)}
    done = await managed(llm, prices=prices).complete(HELLO)
    assert done.tokens_out == 100
    assert done.cost_usd == pytest.approx((done.tokens_in * 1.0 + 100 * 2.0) / 1e6)
    assert cost_of("unknown", 10, 10, prices) is None


def test_backoff_grows_with_jitter_and_honours_retry_after() -> None:
    for attempt in range(1, 8):
        delay = backoff_delay(attempt, 0.5, 4.0, None)
        ceiling = min(4.0, 0.5 * 2 ** (attempt - 1))
        assert ceiling / 2 <= delay <= ceiling
    assert backoff_delay(1, 0.5, 4.0, retry_after=9.0) == 9.0


def test_rate_limited_error_carries_its_delay() -> None:
    assert RateLimitedError("x", retry_after=3).retry_after == 3


class Broken:
    """A provider acting out one misbehaviour per call, then answering."""

    def __init__(self, *acts: object) -> None:
        self.acts = list(acts)

    async def complete(self, messages: object, **options: object) -> object:
        act = self.acts.pop(0) if self.acts else Completion("fine", "m", 1, 1, 0.0)
        if isinstance(act, BaseException) or (
            isinstance(act, type) and issubclass(act, BaseException)
        ):
            raise act
        return act


@pytest.mark.parametrize(
    ("act", "message"),
    [
        (None, "provider Broken returned None instead of a Completion"),
        ({"text": "x"}, "returned dict {'text': 'x'} instead of a Completion"),
        (KeyError("k"), "raised KeyError: 'k'"),
        (GeneratorExit, "raised GeneratorExit"),
        (asyncio.CancelledError, "raised CancelledError without being cancelled"),
    ],
)
async def test_a_provider_that_breaks_its_contract_raises_a_typed_error(
    act: object, message: str
) -> None:
    llm = ManagedLLM(Broken(act, act), LLMSettings(max_retries=1, backoff_base_s=0.001))
    with pytest.raises(ProviderContractError, match=message):
        await llm.complete(HELLO)
    llm = ManagedLLM(Broken(act), LLMSettings(max_retries=1, backoff_base_s=0.001))
    assert (await llm.complete(HELLO)).text == "fine"  # retried: it may be flaky
    # once, not llm.max_retries times: a provider that breaks it twice is broken
    broken = Broken(act, act, act)
    llm = ManagedLLM(broken, LLMSettings(max_retries=4, backoff_base_s=0.001))
    with pytest.raises(ProviderContractError, match=message):
        await llm.complete(HELLO)
    assert len(broken.acts) == 1


async def test_a_real_cancellation_of_the_caller_still_cancels() -> None:
    llm = managed(ScriptedLLM([Fault.timeout()]))
    task = asyncio.create_task(llm.complete(HELLO))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


@pytest.mark.parametrize(
    ("model", "priced_as"),
    [
        ("gpt-4o-mini", "gpt-4o-mini"),
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("openai/gpt-4o-mini", "gpt-4o-mini"),
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
        ("claude-3-5-haiku-latest", "claude-3-5-haiku-latest"),
        ("claude-3-5-haiku-20241022", "claude-3-5-haiku-latest"),
        ("anthropic/claude-3-5-haiku-20241022", "claude-3-5-haiku-latest"),
        ("gpt-4o-audio-preview", None),
        ("llama3.1", None),
    ],
)
def test_dated_model_ids_are_priced_as_their_model(model: str, priced_as: str | None) -> None:
    prices = LLMSettings().prices
    assert price_for(model, prices) == (prices[priced_as] if priced_as else None)


async def test_an_unpriced_model_is_reported_not_costed_at_zero() -> None:
    llm = managed(ScriptedLLM(["a"], model="mystery", free=False))
    done = await llm.complete(HELLO)
    assert not done.priced and done.cost_usd == 0.0
    llm = managed(ScriptedLLM(["a"], model="gpt-4o-mini-2024-07-18", free=False))
    done = await llm.complete(HELLO)
    assert done.priced and done.cost_usd > 0
