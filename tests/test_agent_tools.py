"""An agent's tools and MCP servers: what its spec accepts, and its YAML (a team file, the
starter team)."""

from __future__ import annotations

import time

import pytest
from pydantic import ValidationError

from automatos.domain.agent import AgentSpec
from automatos.domain.tools import MCPServerConfig
from automatos.errors import InvalidRequestError
from automatos.registry import parse_agents, starter_agents


def test_an_agent_has_no_tools_unless_it_names_them() -> None:
    spec = AgentSpec(name="plain")
    assert spec.tools == () and spec.mcp_servers == ()


@pytest.mark.parametrize(
    "tools",
    [
        ("calculator",),
        ("current_time", "mcp:files", "files__read_text", "a-b_C9"),
        ("x" * 64, "mcp:" + "s" * 32),
    ],
)
def test_tool_names_and_whole_servers_are_accepted(tools: tuple[str, ...]) -> None:
    assert AgentSpec(name="a", tools=tools).tools == tools


@pytest.mark.parametrize(
    ("tools", "problem"),
    [
        (("",), "'' cannot name a tool"),
        (("read file",), "'read file' cannot name a tool"),
        (("x" * 65,), "cannot name a tool"),
        (("files.read",), "'files.read' cannot name a tool"),
        (("calculator\n",), "cannot name a tool"),
        (("mcp:",), "'mcp:' does not name an MCP server"),
        (("mcp:a__b",), "'mcp:a__b' does not name an MCP server"),
        (("mcp:" + "s" * 33,), "does not name an MCP server"),
        (("mcp:files\n",), "does not name an MCP server"),
        (("mcp:*",), "'mcp:*' does not name an MCP server"),
        (("calculator", "mcp:f", "calculator", "mcp:f"), "tools named twice: calculator, mcp:f"),
    ],
)
def test_wrong_tool_entries_are_refused(tools: tuple[str, ...], problem: str) -> None:
    with pytest.raises(ValidationError, match="tools") as info:
        AgentSpec(name="a", tools=tools)
    assert problem in str(info.value)


def test_an_agent_with_thousands_of_tools_is_refused_at_once() -> None:
    # a request may bring them: each check is one pass, and the lists have a length
    many = tuple(f"t{i}" for i in range(100_000))
    started = time.perf_counter()
    with pytest.raises(ValidationError, match="at most 256"):
        AgentSpec(name="a", tools=many)
    with pytest.raises(ValidationError, match="at most 100"):
        AgentSpec(name="a", capabilities=many)
    assert time.perf_counter() - started < 1.0  # quadratic, 100,000 entries took minutes
    most = many[:256]
    assert AgentSpec(name="a", tools=most).tools == most


def test_an_agent_s_servers_have_names_of_their_own() -> None:
    one = MCPServerConfig(name="files", command=("server-a",))
    other = MCPServerConfig(name="files", url="http://127.0.0.1:9/mcp")
    with pytest.raises(ValidationError, match="servers named twice: files"):
        AgentSpec(name="a", mcp_servers=(one, other))
    assert AgentSpec(name="a", mcp_servers=(one,)).mcp_servers == (one,)


def test_a_spec_with_tools_and_servers_survives_json() -> None:
    spec = AgentSpec(
        name="a",
        tools=("mcp:files", "calculator"),
        mcp_servers=(
            MCPServerConfig(name="files", command=("srv", "--root", "/d"), env={"K": "v"}),
            MCPServerConfig(name="web", url="https://h.test/mcp", headers={"A": "b"}),
        ),
    )
    assert AgentSpec.model_validate_json(spec.model_dump_json()) == spec
    assert AgentSpec.model_validate(spec.model_dump(mode="json")) == spec


def test_a_team_file_gives_agents_tools_and_servers() -> None:
    (librarian, clerk) = parse_agents(
        """
agents:
  - name: librarian
    tools: [mcp:shelf, current_time]
    mcp_servers:
      - name: shelf
        command: [shelf-server, --root, /books]
        env: {SHELF_KEY: k}
        cwd: /srv
      - name: catalogue
        url: https://catalogue.test/mcp
        headers: {Authorization: Bearer x}
  - name: clerk
    tools: [calculator]
"""
    )
    assert librarian.tools == ("mcp:shelf", "current_time")
    shelf, catalogue = librarian.mcp_servers
    assert shelf == MCPServerConfig(
        name="shelf",
        command=("shelf-server", "--root", "/books"),
        env={"SHELF_KEY": "k"},
        cwd="/srv",
    )
    assert catalogue.transport == "http" and catalogue.headers == {"Authorization": "Bearer x"}
    assert clerk.tools == ("calculator",) and clerk.mcp_servers == ()


@pytest.mark.parametrize(
    ("agent", "problem"),
    [
        (
            "  tools: calculator\n",
            "agent 1 ('a') is not valid: tools: Input should be a valid tuple",
        ),
        ("  tools: [calculator, calculator]\n", "tools named twice: calculator"),
        ("  mcp_servers: [{name: s}]\n", "mcp_servers.0: "),
        ("  mcp_servers: [{name: s, command: [x], headers: {A: b}}]\n", "'headers' apply to"),
        ("  mcp_servers: [{name: s, command: [x], shell: true}]\n", "mcp_servers.0.shell"),
    ],
)
def test_a_wrong_tool_or_server_in_a_team_file_is_named(agent: str, problem: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        parse_agents(f"- name: a\n{agent}", source="team.yaml")
    assert str(info.value).startswith("team.yaml: agent 1 ('a') is not valid: ")
    assert problem in str(info.value)


def test_the_starter_team_has_no_tools() -> None:
    # The embedded model calls tools a step does not need (the quick start's analyst called
    # the clock twice and gave no answer): tools are for agents of the user's, on a capable
    # model.
    team = {agent.name: agent for agent in starter_agents()}
    assert all(agent.tools == () and agent.mcp_servers == () for agent in team.values())
