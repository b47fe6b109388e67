"""What crosses between a model and an MCP tool: the tool's name and schema as the model sees
them, the arguments checked against that schema, the result turned into text."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # no type information; an mcp dependency
from mcp import types as mcp_types
from referencing import Registry

from automatos.errors import ToolArgumentsError, ToolFailedError
from automatos.tools.function import MAX_RESULT_CHARS

__all__ = [
    "MAX_RESULT_CHARS",
    "ArgumentsValidator",
    "normalise_schema",
    "result_text",
    "tool_name",
]

_log = logging.getLogger(__name__)

MAX_TOOL_NAME = 64
_NOT_NAME = re.compile(r"[^A-Za-z0-9_-]")
_EMPTY_REGISTRY: Registry[Any] = Registry()
"""Where a schema's ``$ref`` may point: nowhere outside the schema (no network look-ups)."""


def tool_name(server: str, remote: str) -> str | None:
    """The name the model sees for the server's tool ``remote``: ``{server}__{remote}``, with
    each character outside ``[A-Za-z0-9_-]`` made ``_`` (MCP allows ``.`` and ``/``, model
    APIs do not); ``None`` when the result is longer than 64 characters."""
    name = f"{server}__{_NOT_NAME.sub('_', remote)}"
    return name if remote and len(name) <= MAX_TOOL_NAME else None


def normalise_schema(schema: Mapping[str, Any] | None) -> dict[str, Any]:
    """An object schema with ``properties``, as model APIs expect: a server may send none, or
    ``{"type": "object"}`` alone."""
    result = dict(schema or {})
    result.setdefault("type", "object")
    if result["type"] == "object":
        result.setdefault("properties", {})
    return result


class ArgumentsValidator:
    """Checks a call's arguments against a tool's JSON schema before anything is sent.

    Raises ``ValueError`` at construction when the schema itself is not a valid JSON schema
    (the tool is then left out: its calls could not be checked).
    """

    def __init__(self, tool: str, schema: Mapping[str, Any]) -> None:
        self._tool = tool
        cls = jsonschema.validators.validator_for(schema)
        try:
            cls.check_schema(schema)
        except jsonschema.SchemaError as exc:
            raise ValueError(f"its input schema is not valid JSON schema: {exc.message}") from exc
        self._validator = cls(schema, registry=_EMPTY_REGISTRY)

    def validate(self, arguments: Mapping[str, Any]) -> None:
        """Raise :class:`ToolArgumentsError` naming the first wrong field."""
        error = jsonschema.exceptions.best_match(self._validator.iter_errors(dict(arguments)))
        if error is not None:
            raise ToolArgumentsError(self._tool, _describe(error))


def _describe(error: Any) -> str:
    path = ".".join(str(part) for part in error.absolute_path)
    if error.validator == "required" and isinstance(error.instance, Mapping):
        missing = [name for name in error.validator_value if name not in error.instance]
        if missing:
            field = f"{path}.{missing[0]}" if path else str(missing[0])
            return f"field {field!r} is required"
    message = _rule_broken(error)
    return f"field {path!r}: {message}" if path else f"arguments: {message}"


def _rule_broken(error: Any) -> str:
    """Which rule of the schema the value breaks, from the schema alone: jsonschema's own
    message quotes the value, and what is recorded of a call never holds its arguments."""
    rule, wanted = str(error.validator), error.validator_value
    if rule == "type":
        kinds = wanted if isinstance(wanted, list) else [wanted]
        return f"must be of type {' or '.join(str(kind) for kind in kinds)}"
    if rule in ("enum", "const"):
        return f"must be one of the values the schema lists ({rule})"
    if rule == "additionalProperties":
        return "has fields the schema does not allow"
    shown = json.dumps(wanted, default=str)
    shown = shown if len(shown) <= 80 else f"{shown[:77]}..."
    return f"breaks the schema's rule {rule!r} ({shown})"


def result_text(tool: str, result: mcp_types.CallToolResult, limit: int = MAX_RESULT_CHARS) -> str:
    """The result as text for the model, at most ``limit`` characters and a note.

    Text blocks are joined; other blocks are described (``[image/png, 1234 bytes]``); the
    structured content is JSON, added when no block is text (servers usually send its JSON as
    text as well). A result marked as an error raises :class:`ToolFailedError` with the
    server's text.
    """
    parts = [_block(block) for block in result.content]
    if result.structuredContent is not None and not any(
        isinstance(block, mcp_types.TextContent) for block in result.content
    ):
        parts.append(str(json.dumps(result.structuredContent, ensure_ascii=False, default=str)))
    text = _cap("\n".join(parts), limit)
    if result.isError:
        raise ToolFailedError(tool, text or "the server reported an error without a message")
    return text


def _block(block: mcp_types.ContentBlock) -> str:
    if isinstance(block, mcp_types.TextContent):
        return block.text
    if isinstance(block, mcp_types.ImageContent | mcp_types.AudioContent):
        return f"[{block.mimeType}, {_decoded_size(block.data)} bytes]"
    if isinstance(block, mcp_types.ResourceLink):
        return f"[resource link {block.name!r}: {block.uri}]"
    if isinstance(block, mcp_types.EmbeddedResource):
        resource = block.resource
        if isinstance(resource, mcp_types.TextResourceContents):
            return f"[resource {resource.uri}]\n{resource.text}"
        kind = resource.mimeType or "binary"
        return f"[resource {resource.uri}, {kind}, {_decoded_size(resource.blob)} bytes]"
    return f"[{getattr(block, 'type', 'unknown')} content]"  # pragma: no cover - a newer block


def _decoded_size(data: str) -> int:
    """The size of base64 ``data`` once decoded, without decoding it."""
    data = data.strip()
    return max(0, len(data) * 3 // 4 - data[-2:].count("="))


def _cap(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}\n[truncated: {len(text) - limit} of {len(text)} characters not shown]"
