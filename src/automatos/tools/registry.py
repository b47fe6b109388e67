"""The tools an engine knows, by name, and the part of them one agent may use.

An agent names its tools in its allow-list: a tool's name, or ``mcp:SERVER`` for every tool
of that MCP server (registered as ``SERVER__TOOL``). :meth:`ToolRegistry.allowed` gives the
registry restricted to that list, and the tool loop asks only that: a model that calls a tool
outside it gets :class:`~automatos.errors.ToolNotFoundError`, as if the tool did not exist.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from automatos.domain.tools import MCP_PREFIX, MCP_SEPARATOR, check_tool_name
from automatos.errors import (
    ConfigurationError,
    ToolArgumentsError,
    ToolError,
    ToolFailedError,
    ToolNotFoundError,
    describe_exception,
    describe_kind,
)
from automatos.llm.base import ToolCall, ToolSpec
from automatos.tools.base import Tool

__all__ = ["MAX_ARGUMENT_CHARS", "MCP_PREFIX", "MCP_SEPARATOR", "ToolRegistry", "parse_arguments"]

MAX_ARGUMENT_CHARS = 1_000_000
"""The longest arguments text a model may send for one call."""

_SHOWN_NAMES = 20
"""Tool names listed in an error, at most: enough for a model to find the one it meant."""
_SHOWN_NAME_CHARS = 80


def parse_arguments(call: ToolCall) -> dict[str, Any]:
    """The arguments of ``call``: its JSON text as an object (blank text is no arguments,
    as some models write it for a tool without parameters).

    Raises:
        ToolArgumentsError: the text is not JSON, or not a JSON object, or longer than
            :data:`MAX_ARGUMENT_CHARS`.
    """
    text = call.arguments
    if not text.strip():
        return {}
    if len(text) > MAX_ARGUMENT_CHARS:
        raise ToolArgumentsError(
            call.name,
            f"the arguments are {len(text)} characters long; the limit is {MAX_ARGUMENT_CHARS}",
        )
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ToolArgumentsError(
            call.name,
            f"the arguments are not valid JSON: {exc.msg} at line {exc.lineno} column "
            f"{exc.colno}; write them as one JSON object",
        ) from None
    except RecursionError:
        raise ToolArgumentsError(call.name, "the arguments are nested too deeply") from None
    if not isinstance(value, dict):
        raise ToolArgumentsError(
            call.name,
            f"the arguments must be a JSON object of named arguments, not {describe_kind(value)}",
        )
    return value


class ToolRegistry:
    """Tools by name.

    Iterating it, :meth:`names` and :meth:`specs` go by name, so that what a model is shown
    does not depend on the order tools were registered in (MCP servers start in any order).
    """

    def __init__(self, tools: Iterable[Tool] = (), *, restricted: bool = False) -> None:
        """Register ``tools``.

        Args:
            tools: the tools, each registered as :meth:`register` does.
            restricted: whether this is an agent's view (:meth:`allowed`): an unknown name
                is then one the agent may not use.
        """
        self._tools: dict[str, Tool] = {}
        self._restricted = restricted
        for item in tools:
            self.register(item)

    def register(self, tool: Tool) -> Tool:
        """Add ``tool`` under its spec's name; returns it.

        Raises:
            ConfigurationError: it is not a :class:`~automatos.tools.base.Tool`, its name is
                not a tool name, or another tool has it.
        """
        if not isinstance(tool, Tool):
            raise ConfigurationError(
                f"{type(tool).__name__} is not a tool: a tool has a spec and an async call"
            )
        spec = tool.spec
        if not isinstance(spec, ToolSpec):
            raise ConfigurationError(
                f"{type(tool).__name__}.spec is {describe_kind(spec)}, not a ToolSpec"
            )
        name = check_tool_name(spec.name)
        if name in self._tools:
            raise ConfigurationError(f"two tools are named {name!r}; tool names must be unique")
        self._tools[name] = tool
        return tool

    def get(self, name: str) -> Tool:
        """The tool named ``name``.

        Raises:
            ToolNotFoundError: no tool of that name is registered (or allowed, in an agent's
                view); the message lists the tools there are.
        """
        found = self._tools.get(name)
        if found is None:
            raise ToolNotFoundError(_shown(name), self._unknown())
        return found

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __len__(self) -> int:
        return len(self._tools)

    def __iter__(self) -> Iterator[Tool]:
        return iter([self._tools[name] for name in self.names()])

    def names(self) -> list[str]:
        """The tools' names, sorted."""
        return sorted(self._tools)

    def specs(self, names: Sequence[str] | None = None) -> list[ToolSpec]:
        """The specs of the tools named (every tool by default), sorted by name.

        Raises:
            ToolNotFoundError: a name is not registered.
        """
        chosen = self.names() if names is None else sorted(set(names))
        return [self.get(name).spec for name in chosen]

    def allowed(self, entries: Sequence[str]) -> ToolRegistry:
        """The registry restricted to an agent's allow-list: each entry a tool's name, or
        ``mcp:SERVER`` for every tool registered as ``SERVER__...``.

        Raises:
            ToolNotFoundError: entries that name no registered tool, or an MCP server none of
                whose tools is registered (all of them named in one error).
        """
        chosen: dict[str, Tool] = {}
        missing: list[str] = []
        for entry in entries:
            if entry.startswith(MCP_PREFIX):
                prefix = entry[len(MCP_PREFIX) :] + MCP_SEPARATOR
                matched = [name for name in self._tools if name.startswith(prefix)]
            else:
                matched = [entry] if entry in self._tools else []
            if not matched:
                missing.append(entry)
            for name in matched:
                chosen[name] = self._tools[name]
        if missing:
            names = ", ".join(_shown(entry) for entry in dict.fromkeys(missing))
            raise ToolNotFoundError(names, self._unknown())
        return ToolRegistry(chosen.values(), restricted=True)

    async def call(self, call: ToolCall) -> str:
        """Run one tool call of a model: find the tool, parse the arguments, call it.

        Raises:
            ToolNotFoundError: the tool is not here.
            ToolArgumentsError: the arguments are not a JSON object, or do not validate.
            ToolError: what the tool raised (a tool that raises anything else, or returns
                something other than text, is reported as :class:`ToolFailedError`).
        """
        tool = self.get(call.name)
        arguments = parse_arguments(call)
        try:
            result = await tool.call(arguments)
        except ToolError:
            raise
        except Exception as exc:  # a plugin's tool that broke the protocol
            raise ToolFailedError(call.name, describe_exception(exc)) from exc
        if not isinstance(result, str):
            raise ToolFailedError(call.name, f"returned {describe_kind(result)}, not text")
        return result

    def _unknown(self) -> str:
        """Why a name is not found, and the names there are."""
        what = "is not one of the tools allowed here" if self._restricted else "is not registered"
        names = self.names()
        if not names:
            return f"{what}; there are no tools"
        shown = ", ".join(names[:_SHOWN_NAMES])
        if len(names) > _SHOWN_NAMES:
            shown += f" and {len(names) - _SHOWN_NAMES} more"
        return f"{what}; the tools are: {shown}"

    def __repr__(self) -> str:
        return f"ToolRegistry({self.names()!r})"


def _shown(name: object) -> str:
    """A name a model wrote, short enough for a message."""
    text = name if isinstance(name, str) else repr(name)
    return text if len(text) <= _SHOWN_NAME_CHARS else text[:_SHOWN_NAME_CHARS] + "…"
