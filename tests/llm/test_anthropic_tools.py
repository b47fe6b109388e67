"""Tool calls through the Anthropic provider: the real SDK, real HTTP, a scripted server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from automatos import ProviderContractError
from automatos.llm import Message
from automatos.llm.anthropic import AnthropicProvider
from automatos.llm.base import ToolCall, ToolSpec, completion_problem
from tests.support.fake_servers import FakeLLMServer, Reply, anthropic_message

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


def provider(server: FakeLLMServer) -> AnthropicProvider:
    return AnthropicProvider(model="claude-test", api_key="k", base_url=server.root_url)


def tool_use(name: Any, arguments: Any, call_id: Any = "toolu_1") -> Reply:
    reply = anthropic_message(
        [
            {"type": "text", "text": "Let me compute."},
            {"type": "tool_use", "id": call_id, "name": name, "input": arguments},
        ]
    )
    reply.body["stop_reason"] = "tool_use"
    return reply


async def test_tools_and_choices_are_sent_in_the_api_s_shape(server: FakeLLMServer) -> None:
    p = provider(server)
    for choice in (None, "auto", "required", "none", "calculator"):
        server.queue.append(anthropic_message([{"type": "text", "text": "ok"}]))
        await p.complete(ASK, tools=[CALC, CLOCK], tool_choice=choice)
    await p.aclose()
    bodies = [body for _, body in server.requests]
    assert bodies[0]["tools"] == [
        {
            "name": "calculator",
            "description": "Evaluate an arithmetic expression.",
            "input_schema": dict(CALC.parameters),
        },
        {"name": "now", "description": "The current time.", "input_schema": dict(CLOCK.parameters)},
    ]
    assert "tool_choice" not in bodies[0]
    assert [b["tool_choice"] for b in bodies[1:]] == [
        {"type": "auto"},
        {"type": "any"},
        {"type": "none"},  # the tools stay: earlier tool_use blocks need them
        {"type": "tool", "name": "calculator"},
    ]
    assert all(len(b["tools"]) == 2 for b in bodies)


async def test_tool_use_blocks_become_tool_calls(server: FakeLLMServer) -> None:
    server.queue.append(tool_use("calculator", {"expression": "6*7"}))
    p = provider(server)
    done = await p.complete(ASK, tools=[CALC])
    await p.aclose()
    assert done.text == "Let me compute."
    assert done.tool_calls == (ToolCall("toolu_1", "calculator", '{"expression": "6*7"}'),)
    assert done.finish_reason == "tool_calls"
    assert completion_problem(done) is None


async def test_a_conversation_with_calls_and_results_is_sent_as_the_api_wants(
    server: FakeLLMServer,
) -> None:
    history = [
        *ASK,
        Message(
            "assistant",
            "Computing.",
            tool_calls=(
                ToolCall("c1", "calculator", '{"expression": "6*7"}'),
                ToolCall("c2", "now", "{broken"),  # what a model wrote: sent as no arguments
            ),
        ),
        Message("tool", "42", tool_call_id="c1", name="calculator"),
        Message("tool", "12:00", tool_call_id="c2", name="now"),
        Message("user", "And now?"),
        Message("assistant", "", tool_calls=(ToolCall("c3", "now", "{}"),)),
        Message("tool", "12:01", tool_call_id="c3", name="now"),
    ]
    server.queue.append(anthropic_message([{"type": "text", "text": "42 at 12:01"}]))
    p = provider(server)
    done = await p.complete(history, tools=[CALC, CLOCK])
    await p.aclose()
    assert done.text == "42 at 12:01" and done.tool_calls == ()
    body = server.requests[0][1]
    assert body["system"] == "Use tools."
    assert body["messages"] == [
        {"role": "user", "content": "What is 6*7?"},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Computing."},
                {
                    "type": "tool_use",
                    "id": "c1",
                    "name": "calculator",
                    "input": {"expression": "6*7"},
                },
                {"type": "tool_use", "id": "c2", "name": "now", "input": {}},
            ],
        },
        {  # consecutive results in one user turn, the user's next words after them
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "c1", "content": "42"},
                {"type": "tool_result", "tool_use_id": "c2", "content": "12:00"},
                {"type": "text", "text": "And now?"},
            ],
        },
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "c3", "name": "now", "input": {}}],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "c3", "content": "12:01"}],
        },
    ]


async def test_structured_output_with_tools_is_one_more_tool(server: FakeLLMServer) -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    server.queue.extend(
        [
            tool_use("calculator", {"expression": "1"}),
            tool_use("emit_output", {"a": 4}),
            tool_use("emit_output", {"a": 5}),
        ]
    )
    p = provider(server)
    first = await p.complete(ASK, tools=[CALC], json_schema=schema)
    final = await p.complete(ASK, tools=[CALC], json_schema=schema, tool_choice="required")
    forced = await p.complete(ASK, tools=[CALC], json_schema=schema, tool_choice="none")
    await p.aclose()
    assert first.tool_calls[0].name == "calculator"
    assert json.loads(final.text.removeprefix("Let me compute.")) == {"a": 4}
    assert final.tool_calls == ()
    bodies = [body for _, body in server.requests]
    assert [t["name"] for t in bodies[0]["tools"]] == ["calculator", "emit_output"]
    assert "tool_choice" not in bodies[0]
    assert bodies[1]["tool_choice"] == {"type": "any"}
    assert bodies[2]["tool_choice"] == {"type": "tool", "name": "emit_output"}
    assert forced.tool_calls == ()


async def test_a_tool_use_without_an_id_gets_one(server: FakeLLMServer) -> None:
    server.queue.append(tool_use("now", {}, call_id=None))
    p = provider(server)
    done = await p.complete(ASK, tools=[CLOCK])
    await p.aclose()
    assert done.tool_calls[0].id.startswith("toolu_")
    assert done.tool_calls[0].arguments == "{}"


@pytest.mark.parametrize("name", [None, 7, ""])
async def test_a_tool_use_without_a_name_is_a_contract_error(
    server: FakeLLMServer, name: object
) -> None:
    server.queue.append(tool_use(name, {}))
    p = provider(server)
    with pytest.raises(ProviderContractError, match="tool_use block whose name"):
        await p.complete(ASK, tools=[CLOCK])
    await p.aclose()
