import asyncio
import json

import pytest

from automatos import ConfigurationError, ProviderUnavailableError, RateLimitedError
from automatos.llm import Message
from automatos.llm.base import ToolCall, ToolSpec, completion_problem
from automatos.testing import Fault, Rule, ScriptedLLM
from automatos.testing.scripted import tool_call


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


CALC = ToolSpec("calculator", "Arithmetic.", {"type": "object", "properties": {}})


async def test_a_reply_can_be_tool_calls_good_or_bad() -> None:
    broken = tool_call("calculator", "{not json", id="c9")
    llm = ScriptedLLM(
        [
            tool_call("calculator", {"expression": "6*7"}),
            [tool_call("nosuchtool"), broken],
            lambda messages: tool_call("calculator", {"expression": messages[-1].content}),
        ]
    )
    one = await llm.complete(ask("q"), tools=[CALC])
    assert one.text == "" and one.finish_reason == "tool_calls"
    assert [(c.name, json.loads(c.arguments)) for c in one.tool_calls] == [
        ("calculator", {"expression": "6*7"})
    ]
    two = await llm.complete(ask("q"), tools=[CALC], tool_choice="required")
    assert [c.name for c in two.tool_calls] == ["nosuchtool", "calculator"]
    assert two.tool_calls[1] == ToolCall("c9", "calculator", "{not json")
    three = await llm.complete(ask("1+1"))
    assert three.tool_calls[0].arguments == '{"expression": "1+1"}'
    ids = [c.id for done in (one, two, three) for c in done.tool_calls]
    assert len(set(ids)) == len(ids) == 4
    assert all(completion_problem(done) is None for done in (one, two, three))
    assert three.tokens_out > 0


async def test_the_tools_each_call_was_offered_are_recorded() -> None:
    llm = ScriptedLLM(default="x")
    await llm.complete(ask("q"), tools=[CALC], tool_choice="calculator")
    await llm.complete(ask("q"))
    assert (llm.calls[0].tools, llm.calls[0].tool_choice) == ((CALC,), "calculator")
    assert (llm.calls[1].tools, llm.calls[1].tool_choice) == (None, None)


def tool_turn(result: str) -> list[Message]:
    """A conversation that ends with a tool's result."""
    call = tool_call("calculator", {"expression": "6*7"})
    return [
        *ask("What is 6*7?"),
        Message("assistant", "", tool_calls=(call,)),
        Message("tool", result, tool_call_id=call.id, name="calculator"),
    ]


async def test_rules_can_answer_a_tool_s_result() -> None:
    llm = ScriptedLLM(
        rules=[
            Rule(r"^\d+$", lambda m: f"It is {m[-1].content}.", role="tool"),
            Rule("error", "The tool failed.", role="any"),
            Rule("6\\*7", tool_call("calculator", {"expression": "6*7"})),
        ],
        default="default",
    )
    first = await llm.complete(ask("What is 6*7?"))
    assert first.tool_calls[0].name == "calculator"
    assert (await llm.complete(tool_turn("42"))).text == "It is 42."
    assert (await llm.complete(tool_turn("error: division by zero"))).text == "The tool failed."
    # A tool rule never answers a conversation that does not end with a tool's result.
    assert (await llm.complete(ask("42"))).text == "default"


async def test_a_user_rule_still_sees_the_task_after_a_tool_ran() -> None:
    llm = ScriptedLLM(rules=[Rule("6\\*7", "task rule", times=1)], default="default")
    assert (await llm.complete(tool_turn("42"))).text == "task rule"
    assert (await llm.complete(tool_turn("42"))).text == "default"
