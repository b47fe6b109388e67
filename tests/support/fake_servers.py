"""A local HTTP server that speaks the OpenAI and Anthropic chat APIs from a script.

The providers are tested through their real SDKs and real HTTP against this server, so that
what is mocked is only the remote model itself.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    """One scripted HTTP answer."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


def openai_chat(
    text: str, *, model: str = "fake-model", prompt_tokens: int = 11, completion_tokens: int = 7
) -> Reply:
    """A successful chat completion."""
    return Reply(
        body={
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": text},
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
    )


def anthropic_message(content: list[dict[str, Any]], *, model: str = "claude-test") -> Reply:
    """A successful Messages API answer."""
    return Reply(
        body={
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": content,
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": 13, "output_tokens": 5},
        }
    )


def error(
    status: int,
    message: str = "scripted error",
    headers: dict[str, str] | None = None,
) -> Reply:
    """An error answer in the shape both APIs use."""
    return Reply(
        status=status,
        headers=headers or {},
        body={"error": {"message": message, "type": "error", "code": None}, "type": "error"},
    )


Responder = Callable[[str, dict[str, Any]], Reply]


class FakeLLMServer:
    """Serves scripted replies on 127.0.0.1 at a free port, in a background thread.

    Replies come from :attr:`queue` first, then from :attr:`responder` (path, body) -> Reply.
    Every request body is kept in :attr:`requests`.
    """

    def __init__(self, responder: Responder | None = None) -> None:
        self.queue: deque[Reply] = deque()
        self.responder = responder
        self.requests: list[tuple[str, dict[str, Any]]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                server.requests.append((self.path, body))
                reply = server._next(self.path, body)
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                payload = json.dumps(reply.body).encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(payload)))
                    for key, value in reply.headers.items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def _next(self, path: str, body: dict[str, Any]) -> Reply:
        if self.queue:
            return self.queue.popleft()
        if self.responder is not None:
            return self.responder(path, body)
        return error(500, "the fake server has no reply scripted")

    @property
    def base_url(self) -> str:
        """Base URL of the OpenAI-style API (``…/v1``)."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    @property
    def root_url(self) -> str:
        """Base URL without ``/v1`` (what the Anthropic SDK expects)."""
        return self.base_url.removesuffix("/v1")

    def __enter__(self) -> FakeLLMServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
