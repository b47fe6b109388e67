"""The OpenAI-compatible provider, through the real SDK and real HTTP to a local server."""

import socket
from collections.abc import Iterator

import pytest

from automatos import (
    ConfigurationError,
    LLMTimeoutError,
    ProviderRequestError,
    ProviderUnavailableError,
    RateLimitedError,
)
from automatos.llm import ManagedLLM, Message
from automatos.llm.openai_compat import OpenAICompatibleProvider
from automatos.settings import LLMSettings
from tests.support.fake_servers import FakeLLMServer, Reply, error, openai_chat

HELLO = [Message("system", "be brief"), Message("user", "hello")]


@pytest.fixture
def server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as s:
        yield s


def provider(server: FakeLLMServer, **kw: object) -> OpenAICompatibleProvider:
    return OpenAICompatibleProvider(
        model="fake-model",
        base_url=server.base_url,
        api_key="k",
        **kw,  # type: ignore[arg-type]
    )


async def test_plain_chat(server: FakeLLMServer) -> None:
    server.queue.append(openai_chat("hi there", prompt_tokens=12, completion_tokens=3))
    p = provider(server)
    done = await p.complete(HELLO, temperature=0.3, max_tokens=50)
    await p.aclose()
    assert (done.text, done.tokens_in, done.tokens_out, done.model) == (
        "hi there",
        12,
        3,
        "fake-model",
    )
    assert done.finish_reason == "stop"
    assert done.latency_s > 0
    path, body = server.requests[0]
    assert path == "/v1/chat/completions"
    assert body["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hello"},
    ]
    assert body["temperature"] == 0.3
    assert body["max_tokens"] == 50
    assert "response_format" not in body


async def test_json_schema_and_json_object_modes(server: FakeLLMServer) -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    server.queue.extend([openai_chat('{"a": 1}'), openai_chat('{"a": 2}'), openai_chat("{}")])
    await provider(server).complete(HELLO, json_schema=schema)
    await provider(server, json_mode="json_object").complete(HELLO, json_schema=schema)
    await provider(server, json_mode="prompt").complete(HELLO, json_schema=schema)
    formats = [body.get("response_format") for _, body in server.requests]
    assert formats[0] == {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": schema},
    }
    assert formats[1] == {"type": "json_object"}
    assert formats[2] is None


async def test_missing_usage_is_estimated(server: FakeLLMServer) -> None:
    reply = openai_chat("x" * 40)
    reply.body.pop("usage")
    server.queue.append(reply)
    done = await provider(server).complete(HELLO)
    assert done.tokens_out == 10
    assert done.tokens_in >= 1


async def test_429_carries_retry_after_and_is_retried(server: FakeLLMServer) -> None:
    server.queue.append(error(429, "slow down", {"retry-after": "0.2"}))
    with pytest.raises(RateLimitedError) as info:
        await provider(server).complete(HELLO)
    assert info.value.retry_after == pytest.approx(0.2)
    server.queue.extend([error(429, "slow down", {"retry-after": "0.1"}), openai_chat("ok")])
    managed = ManagedLLM(provider(server), LLMSettings(backoff_base_s=0.001))
    assert (await managed.complete(HELLO)).text == "ok"


@pytest.mark.parametrize(
    ("status", "kind"),
    [(500, ProviderUnavailableError), (503, ProviderUnavailableError), (401, ProviderRequestError)],
)
async def test_http_errors_are_typed(server: FakeLLMServer, status: int, kind: type) -> None:
    server.queue.append(error(status))
    with pytest.raises(kind, match=f"HTTP {status}"):
        await provider(server).complete(HELLO)


async def test_a_slow_server_times_out(server: FakeLLMServer) -> None:
    server.queue.append(Reply(body=openai_chat("late").body, delay_s=1.0))
    with pytest.raises(LLMTimeoutError):
        await provider(server, timeout_s=0.2).complete(HELLO)


async def test_an_unreachable_server() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://someone:s3cret@127.0.0.1:{port}/v1"
    p = OpenAICompatibleProvider(model="m", base_url=url)
    with pytest.raises(ProviderUnavailableError, match="cannot reach") as caught:
        await p.complete(HELLO)
    assert f"http://127.0.0.1:{port}/v1" in str(caught.value)  # where, and the setting
    assert "llm.base_url" in str(caught.value) and "s3cret" not in str(caught.value)


async def test_no_choices_is_unavailable(server: FakeLLMServer) -> None:
    reply = openai_chat("x")
    reply.body["choices"] = []
    server.queue.append(reply)
    with pytest.raises(ProviderUnavailableError, match="no choices"):
        await provider(server).complete(HELLO)


@pytest.fixture
def no_openai_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """None of the variables the SDK reads by itself."""
    for name in ("OPENAI_API_KEY", "OPENAI_ADMIN_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.mark.parametrize("url", [None, "https://api.openai.com/v1"])
def test_openai_itself_without_a_key_is_a_configuration_error(
    no_openai_env: pytest.MonkeyPatch, url: str | None
) -> None:
    with pytest.raises(ConfigurationError, match="AUTOMATOS_LLM__API_KEY"):
        OpenAICompatibleProvider(model="gpt-4o-mini", base_url=url)


async def test_openai_itself_takes_the_sdk_s_own_key(no_openai_env: pytest.MonkeyPatch) -> None:
    no_openai_env.setenv("OPENAI_API_KEY", "sk-from-the-environment")
    p = OpenAICompatibleProvider(model="gpt-4o-mini")
    assert p._client.api_key == "sk-from-the-environment"
    await p.aclose()


async def test_another_server_needs_no_key_and_is_not_sent_openai_s(
    no_openai_env: pytest.MonkeyPatch, server: FakeLLMServer
) -> None:
    no_openai_env.setenv("OPENAI_API_KEY", "sk-for-openai-only")
    for given in ({"base_url": server.base_url}, {}):
        no_openai_env.setenv("OPENAI_BASE_URL", server.base_url)  # the SDK's way, too
        p = OpenAICompatibleProvider(model="m", **given)  # type: ignore[arg-type]
        assert p._client.api_key == "unused"
        server.queue.append(openai_chat("hi"))
        assert (await p.complete(HELLO)).text == "hi"
        await p.aclose()
