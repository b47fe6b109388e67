"""The OpenAI-compatible provider against a real server: llama-cpp-python's own, started here
on a free loopback port with the embedded model."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator

import pytest

from automatos import LLMTimeoutError, ProviderUnavailableError
from automatos.llm import ManagedLLM, Message
from automatos.llm.local import default_model_path
from automatos.llm.openai_compat import OpenAICompatibleProvider
from automatos.settings import LLMSettings

SCHEMA = {
    "type": "object",
    "properties": {
        "colour": {"type": "string", "maxLength": 20},
        "confidence": {"type": "integer"},
    },
    "required": ["colour", "confidence"],
    "additionalProperties": False,
}


# Grammar-forced output of at least this many characters: a call that cannot end quickly,
# whatever the base model would rather say (its chat answers are often empty).
LONG = {
    "type": "object",
    "properties": {"story": {"type": "string", "pattern": "^[a-z ]{600,800}$"}},
    "required": ["story"],
}


class LlamaServer:
    """``python -m llama_cpp.server`` as a child process that the test may kill and restart."""

    def __init__(self, *options: str) -> None:
        self.options = options
        """More of the server's command-line options (``--chat_format``, say)."""
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "llama_cpp.server",
                "--model",
                str(default_model_path()),
                "--model_alias",
                "gemma",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--n_ctx",
                "2048",
                *self.options,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("llama_cpp.server exited at start")
            try:
                with urllib.request.urlopen(f"{self.base_url}/models", timeout=1) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError("llama_cpp.server did not come up within 120 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture(scope="module")
def server() -> Iterator[LlamaServer]:
    s = LlamaServer()
    s.start()
    yield s
    s.stop()


def provider(server: LlamaServer, **kw: object) -> OpenAICompatibleProvider:
    return OpenAICompatibleProvider(
        model="gemma",
        base_url=server.base_url,
        json_mode="json_object_schema",
        **kw,  # type: ignore[arg-type]
    )


@pytest.fixture
async def client(server: LlamaServer) -> AsyncIterator[OpenAICompatibleProvider]:
    p = provider(server)
    yield p
    await p.aclose()


async def test_plain_chat_and_usage(client: OpenAICompatibleProvider) -> None:
    done = await client.complete([Message("user", "Say hello.")], max_tokens=16, temperature=0)
    assert isinstance(done.text, str)
    assert done.tokens_in > 0
    assert 0 <= done.tokens_out <= 16
    assert done.finish_reason in ("stop", "length")


async def test_json_schema_output(client: OpenAICompatibleProvider) -> None:
    done = await client.complete(
        [Message("user", "What colour is the sky? Answer in JSON.")],
        json_schema=SCHEMA,
        max_tokens=60,
        temperature=0,
    )
    data = json.loads(done.text)
    assert set(data) == {"colour", "confidence"}
    assert isinstance(data["confidence"], int)


async def test_a_call_over_its_timeout(server: LlamaServer) -> None:
    p = provider(server, timeout_s=0.3)
    try:
        with pytest.raises(LLMTimeoutError):
            await p.complete([Message("user", "A story:")], json_schema=LONG, max_tokens=1500)
    finally:
        await p.aclose()


async def test_a_server_restart_mid_call_is_survived(server: LlamaServer) -> None:
    import asyncio

    p = provider(server)
    try:
        call = asyncio.create_task(
            p.complete([Message("user", "A story:")], json_schema=LONG, max_tokens=1500)
        )
        await asyncio.sleep(0.5)
        server.stop()
        with pytest.raises(ProviderUnavailableError):
            await call
        managed = ManagedLLM(p, LLMSettings(max_retries=8, backoff_base_s=0.5, backoff_max_s=2))
        restart = asyncio.get_running_loop().run_in_executor(None, server.start)
        done = await managed.complete([Message("user", "Say hi.")], max_tokens=4)
        await restart
    finally:
        await p.aclose()
    assert done.tokens_in > 0
