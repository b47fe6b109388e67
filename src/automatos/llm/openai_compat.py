"""Any OpenAI-compatible endpoint (OpenAI, OpenRouter, Ollama, vLLM, llama.cpp server)."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, Literal, cast
from urllib.parse import urlsplit, urlunsplit

import openai

from automatos.errors import (
    ConfigurationError,
    LLMTimeoutError,
    ProviderContractError,
    ProviderUnavailableError,
    describe_kind,
)
from automatos.llm.base import Completion, Message, ToolCall, ToolSpec, estimate_tokens
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
        tools: Sequence[ToolSpec] | None = None,
        tool_choice: str | None = None,
    ) -> Completion:
        """One chat completion; with ``tools``, the model may answer with tool calls.

        Raises:
            ProviderContractError: the server's tool calls are not of the API's shape.
        """
        extra: dict[str, Any] = {}
        if tools:  # never ``tools: null``: some servers refuse it
            extra["tools"] = [_tool(spec) for spec in tools]
            if tool_choice is not None:
                extra["tool_choice"] = _tool_choice(tool_choice)
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
                messages=cast(Any, [_message(m) for m in messages]),
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
        calls = _tool_calls(choice.message.tool_calls, self._where)
        reason = choice.finish_reason
        if calls and reason in (None, "stop"):  # some servers say "stop" after tool calls
            reason = "tool_calls"
        usage = response.usage
        if usage:
            tokens_in, tokens_out = usage.prompt_tokens, usage.completion_tokens
        else:
            tokens_in = estimate_tokens(
                "".join(m.content + "".join(c.arguments for c in m.tool_calls) for m in messages)
            )
            tokens_out = estimate_tokens(text + "".join(c.arguments for c in calls))
        return Completion(
            text=text,
            model=response.model or model or self.model,
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            latency_s=time.perf_counter() - started,
            finish_reason=reason,
            tool_calls=calls,
        )


def _message(m: Message) -> dict[str, Any]:
    """``m`` in the API's shape: an assistant's tool calls and a tool's result included."""
    out: dict[str, Any] = {"role": m.role, "content": m.content}
    if m.tool_calls:
        out["tool_calls"] = [
            {
                "id": c.id,
                "type": "function",
                "function": {"name": c.name, "arguments": c.arguments},
            }
            for c in m.tool_calls
        ]
    if m.role == "tool":
        if m.tool_call_id is not None:
            out["tool_call_id"] = m.tool_call_id
        if m.name is not None:
            out["name"] = m.name  # not OpenAI's, but accepted, and read by some servers
    return out


def _tool(spec: ToolSpec) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": spec.name,
            "description": spec.description,
            "parameters": dict(spec.parameters),
        },
    }


def _tool_choice(choice: str) -> str | dict[str, Any]:
    if choice in ("auto", "required", "none"):
        return choice
    return {"type": "function", "function": {"name": choice}}


def _call_id() -> str:
    """An id for a tool call whose server gave it none (the tool's result must name one)."""
    return f"call_{uuid.uuid4().hex[:24]}"


def _tool_calls(raw: object, where: str) -> tuple[ToolCall, ...]:
    """The tool calls of an answer's message. The SDK does not validate what the server
    sent, so every field is checked here.

    Raises:
        ProviderContractError: the calls are not a list of functions with a name.
    """
    if not raw:
        return ()
    if not isinstance(raw, list):
        raise _broken(where, f"tool_calls is {describe_kind(raw)}, not a list")
    calls: list[ToolCall] = []
    for i, item in enumerate(raw):
        function = _field(item, "function")
        name = _field(function, "name")
        arguments = _field(function, "arguments")
        if not isinstance(name, str) or not name:
            raise _broken(where, f"tool_calls[{i}] has no function name")
        if isinstance(arguments, dict):  # some servers send the object, not its JSON text
            arguments = json.dumps(arguments)
        elif arguments is None:  # a function without parameters, on some servers
            arguments = "{}"
        elif not isinstance(arguments, str):
            raise _broken(
                where, f"tool_calls[{i}].function.arguments is {describe_kind(arguments)}"
            )
        call_id = _field(item, "id")
        if not isinstance(call_id, str) or not call_id:
            call_id = _call_id()
        calls.append(ToolCall(call_id, name, arguments))
    return tuple(calls)


def _field(value: object, name: str) -> object:
    """A field of what the SDK made of the server's JSON: a model, or a plain dict where
    the JSON did not fit the model."""
    if isinstance(value, dict):
        return value.get(name)
    return getattr(value, name, None)


def _broken(where: str, what: str) -> ProviderContractError:
    return ProviderContractError(f"{where} answered with tool calls the API does not allow: {what}")
