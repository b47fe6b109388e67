"""Any OpenAI-compatible endpoint (OpenAI, OpenRouter, Ollama, vLLM, llama.cpp server)."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, Literal, cast
from urllib.parse import urlsplit, urlunsplit

import openai

from automatos.errors import ConfigurationError, LLMTimeoutError, ProviderUnavailableError
from automatos.llm.base import Completion, Message, estimate_tokens
from automatos.llm.http_errors import error_for_status
from automatos.llm.profile import CAPABLE, ModelProfile
from automatos.llm.tokens import OPENAI_TOKENIZER, openai_counter

__all__ = ["OpenAICompatibleProvider"]

_OPENAI_URL = "https://api.openai.com/v1"
"""Where the SDK sends calls when no base URL is set (nor ``OPENAI_BASE_URL``)."""

JsonMode = Literal["json_schema", "json_object", "json_object_schema", "prompt"]


class OpenAICompatibleProvider:
    """Chat completion through the official ``openai`` SDK.

    The SDK's own retries are switched off: :class:`~automatos.llm.managed.ManagedLLM` retries
    every provider the same way.

    Raises:
        ConfigurationError: the endpoint is OpenAI's own (no base URL given) and there is no
            key, neither ``api_key`` nor one the SDK finds (``OPENAI_API_KEY``). Other servers
            may need none.
    """

    def __init__(
        self,
        *,
        model: str,
        base_url: str | None = None,
        api_key: str | None = None,
        json_mode: JsonMode = "json_schema",
        timeout_s: float = 120.0,
    ) -> None:
        self.model = model
        self.json_mode = json_mode
        # OpenAI's own API (no base URL given, nor OPENAI_BASE_URL) needs a key: without one,
        # the SDK looks for its own (OPENAI_API_KEY) and fails at once when there is none, not
        # after every call has been refused. Other servers may need none, but the SDK insists
        # on one; OpenAI's key is not sent to them.
        url = base_url or os.environ.get("OPENAI_BASE_URL") or _OPENAI_URL
        official = urlsplit(url).hostname == urlsplit(_OPENAI_URL).hostname
        try:
            self._client = openai.AsyncOpenAI(
                base_url=base_url,
                api_key=api_key if official else api_key or "unused",
                max_retries=0,
                timeout=timeout_s,
            )
        except openai.OpenAIError as exc:
            raise ConfigurationError(
                "the OpenAI API needs a key: set AUTOMATOS_LLM__API_KEY (or OPENAI_API_KEY), "
                "or AUTOMATOS_LLM__BASE_URL for another OpenAI-compatible server"
            ) from exc
        # Where errors say the server is: the address without any credentials in it.
        where = urlsplit(str(self._client.base_url))
        netloc = where.hostname or ""
        self._where = urlunsplit(
            (where.scheme, f"{netloc}:{where.port}" if where.port else netloc, where.path, "", "")
        )
        self._official = official

    @property
    def profile(self) -> ModelProfile:
        """A capable hosted model; on OpenAI's own API its tokens are counted with OpenAI's
        tokenizer (:mod:`automatos.llm.tokens`), elsewhere (a server of another model
        family) estimated."""
        counter = openai_counter() if self._official else None
        if counter is None:
            return CAPABLE
        return replace(CAPABLE, count_tokens=counter, tokenizer=OPENAI_TOKENIZER)

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self._client.close()

    def _response_format(self, schema: Mapping[str, Any] | None) -> dict[str, Any] | None:
        if schema is None or self.json_mode == "prompt":
            return None
        if self.json_mode == "json_object":
            return {"type": "json_object"}
        if self.json_mode == "json_object_schema":
            return {"type": "json_object", "schema": dict(schema)}
        return {"type": "json_schema", "json_schema": {"name": "output", "schema": dict(schema)}}

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
        """One chat completion."""
        extra: dict[str, Any] = {}
        response_format = self._response_format(json_schema)
        if response_format is not None:
            extra["response_format"] = response_format
        if temperature is not None:
            extra["temperature"] = temperature
        if max_tokens is not None:
            extra["max_tokens"] = max_tokens
        if timeout_s is not None:
            extra["timeout"] = timeout_s
        started = time.perf_counter()
        try:
            response = await self._client.chat.completions.create(
                model=model or self.model,
                messages=cast(Any, [{"role": m.role, "content": m.content} for m in messages]),
                **extra,
            )
        except openai.APITimeoutError as exc:
            raise LLMTimeoutError(f"{self._where} timed out: {exc}") from exc
        except openai.APIConnectionError as exc:
            raise ProviderUnavailableError(
                f"cannot reach {self._where} (setting llm.base_url): {exc}"
            ) from exc
        except openai.APIStatusError as exc:
            raise error_for_status(
                exc.status_code, exc.message, dict(exc.response.headers)
            ) from exc
        if not response.choices:
            raise ProviderUnavailableError("the server answered with no choices")
        choice = response.choices[0]
        text = choice.message.content or ""
        usage = response.usage
        prompt_text = "".join(m.content for m in messages)
        return Completion(
            text=text,
            model=response.model or model or self.model,
            tokens_in=usage.prompt_tokens if usage else estimate_tokens(prompt_text),
            tokens_out=usage.completion_tokens if usage else estimate_tokens(text),
            latency_s=time.perf_counter() - started,
            finish_reason=choice.finish_reason,
        )
