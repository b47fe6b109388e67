"""Anthropic's Messages API through the ``anthropic`` SDK (the optional extra ``anthropic``)."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any, cast

from automatos.errors import ConfigurationError, LLMTimeoutError, ProviderUnavailableError
from automatos.llm.base import Completion, Message
from automatos.llm.http_errors import error_for_status

__all__ = ["AnthropicProvider"]

_TOOL = "emit_output"


class AnthropicProvider:
    """Chat completion with Claude models.

    Structured output is asked for as a forced tool call whose input schema is the wanted
    schema, the way Anthropic documents it; the tool's input is returned as JSON text.
    """

    def __init__(
        self,
        *,
        model: str,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout_s: float = 120.0,
        max_tokens: int = 2048,
    ) -> None:
        try:
            import anthropic
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ConfigurationError(
                "the Anthropic provider needs the extra: pip install 'automatos[anthropic]'"
            ) from exc
        self._sdk = anthropic
        self.model = model
        self.max_tokens = max_tokens
        self._client = anthropic.AsyncAnthropic(
            api_key=api_key, base_url=base_url, max_retries=0, timeout=timeout_s
        )
        # The SDK looks for a key in its own environment variables too, but only says it has
        # none when the first call is sent, as a TypeError.
        if self._client.api_key is None and self._client.auth_token is None:
            raise ConfigurationError(
                "the Anthropic provider needs a key: set AUTOMATOS_LLM__API_KEY "
                "(or ANTHROPIC_API_KEY)"
            )

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self._client.close()

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        model: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        json_schema: Mapping[str, Any] | None = None,
        timeout_s: float | None = None,
    ) -> Completion:
        """One Messages API call."""
        sdk = self._sdk
        system = "\n\n".join(m.content for m in messages if m.role == "system")
        extra: dict[str, Any] = {}
        if system:
            extra["system"] = system
        if temperature is not None:
            # Current SDKs no longer take ``temperature`` as an argument; the API still reads
            # it for the models that support it.
            extra["extra_body"] = {"temperature": temperature}
        if timeout_s is not None:
            extra["timeout"] = timeout_s
        if json_schema is not None:
            extra["tools"] = [
                {
                    "name": _TOOL,
                    "description": "Return the answer as structured data.",
                    "input_schema": dict(json_schema),
                }
            ]
            extra["tool_choice"] = {"type": "tool", "name": _TOOL}
        started = time.perf_counter()
        try:
            response = await self._client.messages.create(
                model=model or self.model,
                max_tokens=max_tokens or self.max_tokens,
                messages=cast(
                    Any,
                    [
                        {"role": m.role, "content": m.content}
                        for m in messages
                        if m.role != "system"
                    ],
                ),
                **extra,
            )
        except sdk.APITimeoutError as exc:
            raise LLMTimeoutError(f"Anthropic timed out: {exc}") from exc
        except sdk.APIConnectionError as exc:
            raise ProviderUnavailableError(f"cannot reach Anthropic: {exc}") from exc
        except sdk.APIStatusError as exc:
            raise error_for_status(
                exc.status_code, exc.message, dict(exc.response.headers)
            ) from exc
        parts: list[str] = []
        for block in response.content:
            if block.type == "tool_use":
                parts.append(json.dumps(block.input))
            elif block.type == "text":
                parts.append(block.text)
        return Completion(
            text="".join(parts),
            model=response.model,
            tokens_in=response.usage.input_tokens,
            tokens_out=response.usage.output_tokens,
            latency_s=time.perf_counter() - started,
            finish_reason=response.stop_reason,
        )
