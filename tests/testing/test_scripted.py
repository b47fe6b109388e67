import asyncio

import pytest

from automatos import ConfigurationError, ProviderUnavailableError, RateLimitedError
from automatos.llm import Message
from automatos.testing import Fault, Rule, ScriptedLLM


def ask(text: str) -> list[Message]:
    return [Message("system", "s"), Message("user", text)]


async def test_rules_then_sequence_then_default() -> None:
    llm = ScriptedLLM(
        ["first", "second"],
        rules=[Rule("weather", "sunny"), Rule(lambda p: p.endswith("!"), "loud", times=1)],
        default="fallback",
    )
    answers = [
        (await llm.complete(ask(t))).text for t in ["weather today", "hi!", "hi!", "x", "y", "z"]
    ]
    assert answers == ["sunny", "loud", "first", "second", "fallback", "fallback"]
    assert [c.messages[-1].content for c in llm.calls][:2] == ["weather today", "hi!"]


async def test_callable_replies_and_usage() -> None:
    llm = ScriptedLLM(default=lambda messages: messages[-1].content.upper(), model="m1")
    done = await llm.complete(ask("abcd" * 10), model="m2")
    assert done.text == ("ABCD" * 10)
    assert done.model == "m2"
    assert done.tokens_out == 10
    assert done.tokens_in >= 10


async def test_latency_is_simulated() -> None:
    llm = ScriptedLLM(default="x", latency=lambda m: 0.05)
    started = asyncio.get_running_loop().time()
    await llm.complete(ask("q"))
    assert asyncio.get_running_loop().time() - started >= 0.045


async def test_faults() -> None:
    llm = ScriptedLLM([Fault.malformed_json(), Fault.rate_limit(2), Fault.server_error()])
    assert (await llm.complete(ask("q"))).text.startswith('{"subtasks"')
    with pytest.raises(RateLimitedError) as info:
        await llm.complete(ask("q"))
    assert info.value.retry_after == 2
    with pytest.raises(ProviderUnavailableError):
        await llm.complete(ask("q"))
    hung = ScriptedLLM([Fault.timeout()])
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await hung.complete(ask("q"))


async def test_an_exhausted_script_says_so() -> None:
    with pytest.raises(ConfigurationError, match="no reply for"):
        await ScriptedLLM().complete(ask("anything"))


async def test_recording_can_be_switched_off() -> None:
    llm = ScriptedLLM(default="x", record=False)
    await llm.complete(ask("q"))
    assert llm.calls == []
