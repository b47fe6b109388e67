"""OpenAI-style tool calls against a real server: llama-cpp-python's own, with its
``chatml-function-calling`` format, on the embedded model. A tool named in ``tool_choice``
is a forced call there: the server writes the call's arguments under the tool's schema."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator

import pytest

from automatos.llm import Message
from automatos.llm.base import ToolSpec, completion_problem
from automatos.llm.openai_compat import OpenAICompatibleProvider
from tests.llm.test_llama_server import LlamaServer

CALC = ToolSpec(
    "calculator",
    "Evaluate an arithmetic expression.",
    {
        "type": "object",
        "properties": {"expression": {"type": "string", "pattern": "^[0-9+*/() -]{1,20}$"}},
        "required": ["expression"],
        "additionalProperties": False,
    },
)
ASK = [Message("system", "Use the tools."), Message("user", "What is 6*7?")]


@pytest.fixture(scope="module")
def server() -> Iterator[LlamaServer]:
    s = LlamaServer("--chat_format", "chatml-function-calling")
    s.start()
    yield s
    s.stop()


@pytest.fixture
async def client(server: LlamaServer) -> AsyncIterator[OpenAICompatibleProvider]:
    p = OpenAICompatibleProvider(model="gemma", base_url=server.base_url)
    yield p
    await p.aclose()


async def test_a_named_tool_is_called_with_arguments_of_its_schema(
    client: OpenAICompatibleProvider,
) -> None:
    done = await client.complete(
        ASK, tools=[CALC], tool_choice="calculator", temperature=0, max_tokens=40
    )
    assert completion_problem(done) is None
    (call,) = done.tool_calls
    assert call.name == "calculator"
    assert call.id
    assert set(json.loads(call.arguments)) == {"expression"}
    assert done.finish_reason == "tool_calls"
    # The call and its result go back to the server in the API's shape, which it accepts.
    history = [
        *ASK,
        Message("assistant", "", tool_calls=done.tool_calls),
        Message("tool", "42", tool_call_id=call.id, name="calculator"),
    ]
    again = await client.complete(history, tools=[CALC], tool_choice="none", max_tokens=8)
    assert completion_problem(again) is None
    assert again.tool_calls == ()
