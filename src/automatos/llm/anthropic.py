"""Anthropic's Messages API through the ``anthropic`` SDK (the optional extra ``anthropic``)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, cast

from automatos.errors import (
    ConfigurationError,
    LLMTimeoutError,
    ProviderContractError,
    ProviderUnavailableError,
    describe_kind,
)
from automatos.llm.base import Completion, Message, ToolCall, ToolSpec
from automatos.llm.http_errors import error_for_status

__all__ = ["AnthropicProvider"]

_TOOL = "emit_output"


class AnthropicProvider:
    """Chat completion with Claude models.

    Structured output is asked for as a forced tool call whose input schema is the wanted
    schema, the way Anthropic documents it; the tool's input is returned as JSON text. With
    ``tools`` as well, that tool is one more the model may call, to give its final answer
    (forced only when ``tool_choice`` is ``"none"``).

    Tool results go back as ``tool_result`` blocks of a user message, consecutive results
    in one message, as the API requires.
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
        tools: Sequence[ToolSpec] | None = None,
        tool_choice: str | None = None,
    ) -> Completion:
        """One Messages API call.

        Raises:
            ProviderContractError: a ``tool_use`` block of the answer has no name.
        """
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
        extra.update(_tool_options(tools or (), tool_choice, json_schema))
        started = time.perf_counter()
        try:
            response = await self._client.messages.create(
                model=model or self.model,
                max_tokens=max_tokens or self.max_tokens,
                messages=cast(Any, _messages(messages)),
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
        calls: list[ToolCall] = []
        structured = json_schema is not None
        for block in response.content:
            if block.type == "tool_use":
                if structured and (not tools or block.name == _TOOL):
                    parts.append(json.dumps(block.input))
                else:
                    calls.append(_tool_call(block))
            elif block.type == "text":
                parts.append(block.text)
        return Completion(
            text="".join(parts),
            model=response.model,
            tokens_in=response.usage.input_tokens,
            tokens_out=response.usage.output_tokens,
            latency_s=time.perf_counter() - started,
            finish_reason="tool_calls" if calls else response.stop_reason,
            tool_calls=tuple(calls),
        )


def _tool_options(
    tools: Sequence[ToolSpec], choice: str | None, json_schema: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The ``tools`` and ``tool_choice`` of a call (none of either without tools or schema)."""
    specs = [
        {"name": t.name, "description": t.description, "input_schema": dict(t.parameters)}
        for t in tools
    ]
    if json_schema is not None:
        specs.append(
            {
                "name": _TOOL,
                "description": "Return the answer as structured data.",
                "input_schema": dict(json_schema),
            }
        )
        if not tools or choice == "none":  # the answer itself must be the structured data
            return {"tools": specs, "tool_choice": {"type": "tool", "name": _TOOL}}
    if not specs:
        return {}
    if choice is None:
        return {"tools": specs}
    # "none" keeps the tools: the API refuses a conversation with tool_use blocks and no tools.
    mapped = {"auto": "auto", "required": "any", "none": "none"}.get(choice)
    return {
        "tools": specs,
        "tool_choice": {"type": mapped} if mapped else {"type": "tool", "name": choice},
    }


def _messages(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """The conversation in the API's shape, system messages left out (they go apart).

    An assistant's tool calls become ``tool_use`` blocks; tool results become
    ``tool_result`` blocks of one user message, which the user text that follows them joins
    (the API wants the results first in the turn after the calls).
    """
    out: list[dict[str, Any]] = []
    results: list[dict[str, Any]] | None = None  # the content of the open tool-result turn
    for m in messages:
        if m.role == "system":
            continue
        if m.role == "tool":
            block = {
                "type": "tool_result",
                "tool_use_id": m.tool_call_id or "",
                "content": m.content,
            }
            if results is None:
                results = [block]
                out.append({"role": "user", "content": results})
            else:
                results.append(block)
            continue
        if m.role == "user" and results is not None:
            results.append({"type": "text", "text": m.content})
            results = None
            continue
        results = None
        if m.role == "assistant" and m.tool_calls:
            blocks: list[dict[str, Any]] = (
                [{"type": "text", "text": m.content}] if m.content else []
            )
            blocks += [
                {"type": "tool_use", "id": c.id, "name": c.name, "input": _input(c.arguments)}
                for c in m.tool_calls
            ]
            out.append({"role": "assistant", "content": blocks})
        else:
            out.append({"role": m.role, "content": m.content})
    return out


def _input(arguments: str) -> dict[str, Any]:
    """A call's arguments as the object the API wants. Arguments that are no JSON object
    (a model of another provider can write those; the tool's result said so) become an
    empty one."""
    try:
        value = json.loads(arguments)
    except (ValueError, RecursionError):
        return {}
    return value if isinstance(value, dict) else {}


def _tool_call(block: Any) -> ToolCall:
    """A ``tool_use`` block as a :class:`ToolCall`; the SDK does not validate what the
    server sent, so its fields are checked here."""
    name = getattr(block, "name", None)
    if not isinstance(name, str) or not name:
        raise ProviderContractError(
            f"Anthropic answered with a tool_use block whose name is {describe_kind(name)}"
        )
    try:
        arguments = json.dumps(getattr(block, "input", None) or {})
    except (TypeError, ValueError, RecursionError) as exc:
        raise ProviderContractError(
            f"Anthropic answered with a tool_use block whose input is not JSON: {exc}"
        ) from exc
    call_id = getattr(block, "id", None)
    if not isinstance(call_id, str) or not call_id:
        call_id = f"toolu_{uuid.uuid4().hex[:24]}"
    return ToolCall(call_id, name, arguments)
