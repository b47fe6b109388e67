"""ToolRegistry: names, duplicates, an agent's allow-list (``mcp:SERVER`` included), and one
model's tool call from its raw JSON to the tool's text."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from automatos.errors import (
    ConfigurationError,
    ToolArgumentsError,
    ToolFailedError,
    ToolNotFoundError,
)
from automatos.llm.base import ToolCall, ToolSpec
from automatos.tools import FunctionTool, ToolRegistry, parse_arguments, tool
from automatos.tools.registry import MAX_ARGUMENT_CHARS


class Named:
    """A tool as an MCP server's would be: a spec and a call, nothing of FunctionTool."""

    def __init__(self, name: str, result: Any = "ok", error: Exception | None = None) -> None:
        self._spec = ToolSpec(name, f"the tool {name}", {"type": "object", "properties": {}})
        self.result = result
        self.error = error
        self.calls: list[Mapping[str, Any]] = []

    @property
    def spec(self) -> ToolSpec:
        return self._spec

    async def call(self, arguments: Mapping[str, Any]) -> str:
        self.calls.append(arguments)
        if self.error is not None:
            raise self.error
        return self.result  # type: ignore[no-any-return]


@tool
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


def registry() -> ToolRegistry:
    return ToolRegistry(
        [Named("zeta"), add, Named("search__query"), Named("search__fetch"), Named("git__log")]
    )


def test_names_and_specs_are_sorted_whatever_the_order_of_registration() -> None:
    tools = registry()
    assert tools.names() == ["add", "git__log", "search__fetch", "search__query", "zeta"]
    assert [spec.name for spec in tools.specs()] == tools.names()
    assert [spec.name for spec in tools.specs(["zeta", "add"])] == ["add", "zeta"]
    assert [t.spec.name for t in tools] == tools.names()
    assert len(tools) == 5 and "add" in tools and "nope" not in tools
    assert tools.get("add") is add


def test_a_second_tool_of_a_name_is_refused() -> None:
    tools = ToolRegistry([add])
    with pytest.raises(ConfigurationError, match="two tools are named 'add'"):
        tools.register(Named("add"))
    assert tools.get("add") is add


def test_what_is_not_a_tool_or_not_named_as_one_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="is not a tool"):
        ToolRegistry().register(object())  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="a tool name is 1 to 64 letters"):
        ToolRegistry().register(Named("server.tool"))


def test_an_unknown_name_is_not_found_and_the_message_lists_the_tools() -> None:
    with pytest.raises(ToolNotFoundError) as caught:
        registry().get("serch")
    assert caught.value.tool == "serch"
    assert "is not registered" in str(caught.value)
    assert "add, git__log, search__fetch, search__query, zeta" in str(caught.value)
    with pytest.raises(ToolNotFoundError, match="there are no tools"):
        ToolRegistry().get("x" * 500)


def test_an_allow_list_restricts_to_tools_and_to_mcp_servers() -> None:
    tools = registry()
    agent = tools.allowed(["add", "mcp:search"])
    assert agent.names() == ["add", "search__fetch", "search__query"]
    assert agent.get("search__query") is tools.get("search__query")
    with pytest.raises(ToolNotFoundError) as caught:
        agent.get("git__log")
    assert "is not one of the tools allowed here" in str(caught.value)
    assert "git__log" not in caught.value.detail  # only the allowed ones are listed
    assert tools.allowed([]).names() == []
    # a server's prefix is its whole name: "mcp:sea" is not "search"
    with pytest.raises(ToolNotFoundError, match="mcp:sea"):
        tools.allowed(["mcp:sea"])


def test_unknown_entries_of_an_allow_list_are_named_together() -> None:
    with pytest.raises(ToolNotFoundError) as caught:
        registry().allowed(["add", "shell", "mcp:browser", "shell"])
    assert caught.value.tool == "shell, mcp:browser"


def test_parse_arguments_reads_one_json_object() -> None:
    assert parse_arguments(ToolCall("1", "add", '{"a": 1, "b": [2]}')) == {"a": 1, "b": [2]}
    assert parse_arguments(ToolCall("1", "add", "  ")) == {}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('{"a": 1', "not valid JSON: Expecting ',' delimiter at line 1 column 8"),
        ("[1, 2]", "must be a JSON object of named arguments, not a list"),
        ("3", "must be a JSON object of named arguments, not 3"),
        ("null", "not None"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ('{"a": "' + "x" * MAX_ARGUMENT_CHARS + '"}', "the limit is"),
    ],
)
def test_arguments_that_are_not_an_object_are_refused(text: str, problem: str) -> None:
    with pytest.raises(ToolArgumentsError) as caught:
        parse_arguments(ToolCall("1", "add", text))
    assert problem in caught.value.detail and caught.value.tool == "add"


async def test_a_call_is_looked_up_parsed_validated_and_run() -> None:
    tools = registry()
    assert await tools.call(ToolCall("c1", "add", '{"a": 2, "b": 3}')) == "5"
    with pytest.raises(ToolArgumentsError, match="b: required but missing"):
        await tools.call(ToolCall("c2", "add", '{"a": 2}'))
    with pytest.raises(ToolNotFoundError):
        await tools.call(ToolCall("c3", "shell", "{}"))
    zeta = tools.get("zeta")
    assert await tools.call(ToolCall("c4", "zeta", "")) == "ok"
    assert isinstance(zeta, Named) and zeta.calls == [{}]


async def test_a_plugin_tool_that_breaks_the_protocol_is_a_tool_failure() -> None:
    tools = ToolRegistry([Named("raises", error=KeyError("x")), Named("number", result=42)])
    with pytest.raises(ToolFailedError, match="KeyError: 'x'"):
        await tools.call(ToolCall("1", "raises", "{}"))
    with pytest.raises(ToolFailedError, match="returned 42, not text"):
        await tools.call(ToolCall("2", "number", "{}"))


async def test_an_agents_view_calls_only_its_tools() -> None:
    agent = registry().allowed(["add"])
    assert await agent.call(ToolCall("1", "add", '{"a": 1, "b": 1}')) == "2"
    with pytest.raises(ToolNotFoundError, match="not one of the tools allowed here"):
        await agent.call(ToolCall("2", "zeta", "{}"))


def test_a_function_tool_registers_under_its_name() -> None:
    def shout(text: str) -> str:
        """Shout."""
        return text.upper()

    tools = ToolRegistry()
    made = tools.register(FunctionTool.from_function(shout, name="loud"))
    assert tools.get("loud") is made
