"""Tool calls through the OpenAI-compatible provider: the real SDK, real HTTP, a scripted
server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from automatos import ProviderContractError
from automatos.llm import ManagedLLM, Message
from automatos.llm.base import ToolCall, ToolSpec, completion_problem
from automatos.llm.openai_compat import OpenAICompatibleProvider
from automatos.settings import LLMSettings
from tests.support.fake_servers import FakeLLMServer, Reply, openai_chat

CALC = ToolSpec(
    "calculator",
    "Evaluate an arithmetic expression.",
    {
        "type": "object",
        "properties": {"expression": {"type": "string"}},
        "required": ["expression"],
    },
)
CLOCK = ToolSpec("now", "The current time.", {"type": "object", "properties": {}})
ASK = [Message("system", "Use tools."), Message("user", "What is 6*7?")]


@pytest.fixture
def server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as s:
        yield s


def provider(server: FakeLLMServer) -> OpenAICompatibleProvider:
    return OpenAICompatibleProvider(model="fake-model", base_url=server.base_url, api_key="k")


def calling(tool_calls: Any, *, content: Any = None, finish: str = "tool_calls") -> Reply:
    """An answer whose message carries ``tool_calls`` as given (shape unchecked)."""
    reply = openai_chat("")
    choice = reply.body["choices"][0]
    choice["message"] = {"role": "assistant", "content": content, "tool_calls": tool_calls}
    choice["finish_reason"] = finish
    return reply


def function_call(name: str, arguments: Any, call_id: str | None = "call_1") -> dict[str, Any]:
    call: dict[str, Any] = {"type": "function", "function": {"name": name, "arguments": arguments}}
    if call_id is not None:
        call["id"] = call_id
    return call


async def test_tools_and_choices_are_sent_in_the_api_s_shape(server: FakeLLMServer) -> None:
    p = provider(server)
    for choice in (None, "auto", "required", "none", "calculator"):
        server.queue.append(openai_chat("ok"))
        await p.complete(ASK, tools=[CALC, CLOCK], tool_choice=choice)
    await p.aclose()
    bodies = [body for _, body in server.requests]
    assert bodies[0]["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "calculator",
                "description": "Evaluate an arithmetic expression.",
                "parameters": dict(CALC.parameters),
            },
        },
        {
            "type": "function",
            "function": {
                "name": "now",
                "description": "The current time.",
                "parameters": {
                    "type": "object",
                    "properties": {},
                },
            },
        },
    ]
    assert "tool_choice" not in bodies[0]
    assert [b["tool_choice"] for b in bodies[1:]] == [
        "auto",
        "required",
        "none",
        {"type": "function", "function": {"name": "calculator"}},
    ]


async def test_without_tools_nothing_about_tools_is_sent(server: FakeLLMServer) -> None:
    p = provider(server)
    server.queue.extend([openai_chat("a"), openai_chat("b")])
    await p.complete(ASK)
    await p.complete(ASK, tools=[], tool_choice="auto")  # no tools: a choice means nothing
    await p.aclose()
    for _, body in server.requests:
        assert "tools" not in body and "tool_choice" not in body


async def test_a_conversation_with_calls_and_results_is_sent_as_the_api_wants(
    server: FakeLLMServer,
) -> None:
    history = [
        *ASK,
        Message(
            "assistant",
            "",
            tool_calls=(
                ToolCall("c1", "calculator", '{"expression": "6*7"}'),
                ToolCall("c2", "now", "{}"),
            ),
        ),
        Message("tool", "42", tool_call_id="c1", name="calculator"),
        Message("tool", "12:00", tool_call_id="c2", name="now"),
    ]
    server.queue.append(openai_chat("It is 42."))
    p = provider(server)
    done = await p.complete(history, tools=[CALC, CLOCK])
    await p.aclose()
    assert done.text == "It is 42." and done.tool_calls == ()
    assert server.requests[0][1]["messages"][2:] == [
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "calculator", "arguments": '{"expression": "6*7"}'},
                },
                {"id": "c2", "type": "function", "function": {"name": "now", "arguments": "{}"}},
            ],
        },
        {"role": "tool", "content": "42", "tool_call_id": "c1", "name": "calculator"},
        {"role": "tool", "content": "12:00", "tool_call_id": "c2", "name": "now"},
    ]


async def test_the_answer_s_tool_calls_are_parsed(server: FakeLLMServer) -> None:
    server.queue.append(
        calling(
            [
                function_call("calculator", '{"expression": "6*7"}'),
                function_call("nosuchtool", "{not json", call_id=None),  # kept as written
            ]
        )
    )
    p = provider(server)
    done = await p.complete(ASK, tools=[CALC])
    await p.aclose()
    assert done.text == ""
    assert done.finish_reason == "tool_calls"
    first, second = done.tool_calls
    assert first == ToolCall("call_1", "calculator", '{"expression": "6*7"}')
    assert (second.name, second.arguments) == ("nosuchtool", "{not json")
    assert second.id.startswith("call_") and second.id != "call_1"  # generated, unique
    assert completion_problem(done) is None


async def test_servers_that_say_stop_or_send_objects_are_read_alike(
    server: FakeLLMServer,
) -> None:
    call = function_call("calculator", {"expression": "1+1"})  # an object, not its JSON text
    server.queue.append(calling([call, function_call("now", None)], finish="stop"))
    p = provider(server)
    done = await p.complete(ASK, tools=[CALC, CLOCK])
    await p.aclose()
    assert done.finish_reason == "tool_calls"
    assert json.loads(done.tool_calls[0].arguments) == {"expression": "1+1"}
    assert done.tool_calls[1].arguments == "{}"  # no arguments: none


@pytest.mark.parametrize(
    "tool_calls",
    [
        "calculator",
        {"function": {"name": "calculator"}},
        [{"type": "function"}],
        [{"type": "function", "function": {"name": 7, "arguments": "{}"}}],
        [{"type": "function", "function": {"name": "", "arguments": "{}"}}],
        [function_call("calculator", 12)],
        [42],
    ],
)
async def test_malformed_tool_calls_are_a_contract_error(
    server: FakeLLMServer, tool_calls: Any
) -> None:
    server.queue.append(calling(tool_calls))
    p = provider(server)
    with pytest.raises(ProviderContractError, match="tool calls the API does not allow"):
        await p.complete(ASK, tools=[CALC])
    await p.aclose()


async def test_the_managed_wrapper_passes_tools_through_and_retries_a_broken_answer(
    server: FakeLLMServer,
) -> None:
    server.queue.extend(
        [calling("nonsense"), calling([function_call("calculator", '{"expression": "2"}')])]
    )
    managed = ManagedLLM(provider(server), LLMSettings(backoff_base_s=0.001))
    done = await managed.complete(ASK, tools=[CALC], tool_choice="required")
    assert done.tool_calls[0].name == "calculator"
    assert [body["tool_choice"] for _, body in server.requests] == ["required", "required"]
