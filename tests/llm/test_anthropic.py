"""The Anthropic provider, through the real SDK and real HTTP to a local server."""

import json
from collections.abc import Iterator

import pytest

from automatos import ConfigurationError, ProviderUnavailableError, RateLimitedError
from automatos.llm import Message
from automatos.llm.anthropic import AnthropicProvider
from tests.support.fake_servers import FakeLLMServer, anthropic_message, error

HELLO = [Message("system", "be brief"), Message("user", "hello")]


@pytest.fixture
def server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as s:
        yield s


def provider(server: FakeLLMServer) -> AnthropicProvider:
    return AnthropicProvider(model="claude-test", api_key="k", base_url=server.root_url)


async def test_plain_message(server: FakeLLMServer) -> None:
    server.queue.append(anthropic_message([{"type": "text", "text": "hi"}]))
    p = provider(server)
    done = await p.complete(HELLO, temperature=0.1)
    await p.aclose()
    assert (done.text, done.tokens_in, done.tokens_out) == ("hi", 13, 5)
    path, body = server.requests[0]
    assert path == "/v1/messages"
    assert body["system"] == "be brief"
    assert body["messages"] == [{"role": "user", "content": "hello"}]
    assert body["max_tokens"] == 2048
    assert body["temperature"] == 0.1


async def test_structured_output_is_a_forced_tool_call(server: FakeLLMServer) -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    server.queue.append(
        anthropic_message(
            [{"type": "tool_use", "id": "t1", "name": "emit_output", "input": {"a": 4}}]
        )
    )
    done = await provider(server).complete(HELLO, json_schema=schema)
    assert json.loads(done.text) == {"a": 4}
    body = server.requests[0][1]
    assert body["tool_choice"] == {"type": "tool", "name": "emit_output"}
    assert body["tools"][0]["input_schema"] == schema


async def test_errors_are_typed(server: FakeLLMServer) -> None:
    server.queue.extend([error(429, "busy", {"retry-after": "2"}), error(529, "overloaded")])
    with pytest.raises(RateLimitedError) as info:
        await provider(server).complete(HELLO)
    assert info.value.retry_after == 2
    with pytest.raises(ProviderUnavailableError):
        await provider(server).complete(HELLO)


def test_no_key_is_a_configuration_error_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_AUTH_TOKEN", raising=False)
    with pytest.raises(ConfigurationError, match="AUTOMATOS_LLM__API_KEY"):
        AnthropicProvider(model="claude-test")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "from-the-environment")
    assert AnthropicProvider(model="claude-test").model == "claude-test"
