"""MCP servers as tools, against real servers: tests/tools/mcp_server.py run as a stdio child
process and as a streamable HTTP server on a free loopback port."""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("mcp", reason="the mcp SDK is not installed")

from mcp import types as mcp_types
from pydantic import ValidationError

from automatos.aio import run as run_on_engine_loop
from automatos.errors import (
    ConfigurationError,
    MCPError,
    ToolArgumentsError,
    ToolFailedError,
    ToolNotFoundError,
    ToolTimeoutError,
)
from automatos.tools.base import Tool
from automatos.tools.mcp import MCPPool, MCPServer, MCPServerConfig, MCPTool
from automatos.tools.mcp_result import ArgumentsValidator, result_text

SERVER = Path(__file__).with_name("mcp_server.py")


def stdio(name: str = "t") -> MCPServerConfig:
    return MCPServerConfig(name=name, command=[sys.executable, str(SERVER), "stdio"])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def gone(pid: int) -> bool:
    """Whether the process has exited and been reaped (a zombie still counts as there)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("X",)


def no_owner_tasks() -> bool:
    return not [
        task
        for task in asyncio.all_tasks()
        if task.get_name().startswith("mcp-server-") and not task.done()
    ]


@pytest.fixture
def http_url() -> Iterator[str]:
    """The test server over streamable HTTP, in its own process."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(SERVER), "http", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, "the HTTP test server exited at start"
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the HTTP test server did not listen"
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.kill()
        process.wait()


async def tool_of(server: MCPServer, name: str) -> MCPTool:
    return next(tool for tool in await server.tools() if tool.spec.name == name)


# --- configuration ----------------------------------------------------------------------


def test_config_takes_a_command_or_a_url() -> None:
    assert stdio().transport == "stdio"
    config = MCPServerConfig(name="web", url="https://user:pw@example.com/mcp?key=secret")
    assert config.transport == "http"
    assert config.describe() == "https://example.com/mcp"  # no credentials in messages
    assert MCPServerConfig(name="a-b_1", command=["x"]).command == ("x",)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": "bad name", "command": ["x"]}, "letters, digits"),
        ({"name": "a" * 33, "command": ["x"]}, "1 to 32"),
        ({"name": "a__b", "command": ["x"]}, "must not contain '__'"),
        ({"name": "s"}, "exactly one of 'command'"),
        ({"name": "s", "command": ["x"], "url": "http://h/mcp"}, "exactly one of 'command'"),
        ({"name": "s", "command": []}, "command is empty"),
        ({"name": "s", "url": "ftp://h/mcp"}, "http:// or https://"),
        ({"name": "s", "url": "http://h/mcp", "env": {"A": "1"}}, "apply to 'command' only"),
        ({"name": "s", "command": ["x"], "headers": {"A": "1"}}, "apply to 'url' only"),
        ({"name": "s", "command": ["x"], "shell": True}, "Extra inputs"),
    ],
)
def test_config_says_what_is_wrong(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        MCPServerConfig.model_validate(fields)


# --- listing and calling ------------------------------------------------------------------


async def test_lists_the_servers_tools_with_their_schemas() -> None:
    async with MCPServer(stdio()) as server:
        tools = {tool.spec.name: tool for tool in await server.tools()}
        assert {"t__add", "t__echo", "t__slow", "t__fail", "t__die", "t__pid"} <= set(tools)
        add = tools["t__add"]
        assert isinstance(add, Tool)
        assert add.spec.description == "Add two whole numbers."
        assert add.spec.parameters["type"] == "object"
        assert add.spec.parameters["properties"]["a"]["type"] == "integer"
        assert sorted(add.spec.parameters["required"]) == ["a", "b"]
        # A dot is not allowed in a model's tool name: made '_', still called by its own name.
        assert await tools["t__dotted_name"].call({}) == "dotted"
        assert tools["t__dotted_name"].remote_name == "dotted.name"
        # The 70-character name cannot fit in 64 with the server's: left out.
        assert not [name for name in tools if "xxxx" in name]
        # Listed once: a second listing returns the same tools without asking the server.
        assert [tool.spec.name for tool in await server.tools()] == list(tools)


async def test_calls_a_tool_over_stdio() -> None:
    async with MCPServer(stdio()) as server:
        assert await (await tool_of(server, "t__add")).call({"a": 2, "b": 40}) == "42"
        assert await (await tool_of(server, "t__echo")).call({"text": "héllo"}) == "héllo"


async def test_calls_a_tool_over_streamable_http(http_url: str) -> None:
    config = MCPServerConfig(name="web", url=http_url, headers={"X-Test": "sent along"})
    async with MCPServer(config) as server:
        names = [tool.spec.name for tool in await server.tools()]
        assert "web__add" in names
        assert await (await tool_of(server, "web__add")).call({"a": 1, "b": 2}) == "3"
        header = await tool_of(server, "web__header")
        assert await header.call({"name": "x-test"}) == "sent along"
        with pytest.raises(ToolFailedError, match="boom"):
            await (await tool_of(server, "web__fail")).call({"message": "boom"})
    assert no_owner_tasks()


async def test_the_child_gets_its_own_env_not_the_engines(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-engine-secret")
    config = MCPServerConfig(
        name="t",
        command=[sys.executable, str(SERVER), "stdio"],
        env={"TOOL_TOKEN": "for-the-tool"},
        cwd=str(tmp_path),
    )
    async with MCPServer(config) as server:
        env = await tool_of(server, "t__env")
        assert await env.call({"name": "TOOL_TOKEN"}) == "for-the-tool"
        assert await env.call({"name": "OPENAI_API_KEY"}) == ""
        assert await env.call({"name": "PATH"}) == os.environ["PATH"]


async def test_a_missing_working_directory_is_named() -> None:
    config = MCPServerConfig(name="t", command=[sys.executable, "-V"], cwd="/nonexistent/dir")
    async with MCPServer(config) as server:
        with pytest.raises(MCPError, match="'/nonexistent/dir' does not exist"):
            await server.tools()


async def test_bad_arguments_are_refused_before_the_server_is_asked() -> None:
    server = MCPServer(stdio())
    add = await tool_of(server, "t__add")
    echo = await tool_of(server, "t__echo")
    await server.aclose()  # a call that reached the server now would fail with MCPError
    with pytest.raises(ToolArgumentsError, match="field 'b' is required"):
        await add.call({"a": 1})
    with pytest.raises(ToolArgumentsError, match=r"field 'a': must be of type integer$") as got:
        await add.call({"a": "Patient John Doe, SSN 078-05-1120", "b": 2})
    assert "078-05" not in str(got.value)  # the value is the model's; records never hold it
    with pytest.raises(ToolArgumentsError, match="'t__echo'"):
        await echo.call({"text": 5})
    with pytest.raises(MCPError, match="is closed"):
        await add.call({"a": 1, "b": 2})


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        (
            {"mode": "secret-mode-x"},
            "field 'mode': must be one of the values the schema lists (enum)",
        ),
        ({"mode": "a", "n": 1234567}, "field 'n': breaks the schema's rule 'maximum' (10)"),
        ({"mode": "a", "extra": "hunter2"}, "arguments: has fields the schema does not allow"),
        ({"mode": "a", "n": "hunter2"}, "field 'n': must be of type integer or null"),
    ],
)
def test_argument_problems_name_the_rule_never_the_value(
    arguments: dict[str, object], problem: str
) -> None:
    schema = {
        "type": "object",
        "properties": {
            "mode": {"enum": ["a", "b"]},
            "n": {"type": ["integer", "null"], "maximum": 10},
        },
        "required": ["mode"],
        "additionalProperties": False,
    }
    with pytest.raises(ToolArgumentsError) as caught:
        ArgumentsValidator("s__t", schema).validate(arguments)
    assert caught.value.detail == problem
    for value in ("secret-mode-x", "1234567", "hunter2"):
        assert value not in str(caught.value)


async def test_a_tool_error_is_a_tool_failure_with_the_servers_text() -> None:
    async with MCPServer(stdio()) as server:
        with pytest.raises(ToolFailedError, match="no such thing") as caught:
            await (await tool_of(server, "t__fail")).call({"message": "no such thing"})
        assert caught.value.tool == "t__fail"
        # The server is fine afterwards.
        assert await (await tool_of(server, "t__add")).call({"a": 1, "b": 1}) == "2"


async def test_a_slow_call_times_out_and_the_server_goes_on() -> None:
    async with MCPServer(stdio(), call_timeout_s=0.5) as server:
        slow = await tool_of(server, "t__slow")
        started = time.monotonic()
        with pytest.raises(ToolTimeoutError, match=r"did not answer within 0\.5 s") as caught:
            await slow.call({"seconds": 10})
        assert time.monotonic() - started < 3
        assert caught.value.retryable
        assert await (await tool_of(server, "t__add")).call({"a": 1, "b": 1}) == "2"
        assert server.restarts == 0


async def test_long_results_are_cut_with_a_note() -> None:
    async with MCPServer(stdio(), max_result_chars=1000) as server:
        text = await (await tool_of(server, "t__repeat")).call({"text": "ab", "times": 2000})
    assert text.startswith("ab" * 500)
    assert text.endswith("[truncated: 3000 of 4000 characters not shown]")


# --- deaths and restarts ------------------------------------------------------------------


async def test_a_server_that_dies_mid_call_is_restarted_once_then_given_up(
    tmp_path: Path,
) -> None:
    async with MCPServer(stdio()) as server:
        pid_tool = await tool_of(server, "t__pid")
        first = int(await pid_tool.call({}))
        # Dies the first time: the server is started again and the call sent once more.
        marker = tmp_path / "died"
        assert await (await tool_of(server, "t__die_once")).call({"marker": str(marker)}) == (
            "survived"
        )
        assert marker.read_text() == str(first)
        assert server.restarts == 1
        second = int(await pid_tool.call({}))
        assert second != first
        assert gone(first)
        # Dies again: no second restart; the message says how it died.
        with pytest.raises(MCPError, match="died again") as caught:
            await (await tool_of(server, "t__die")).call({})
        message = str(caught.value)
        assert "'t'" in message
        assert "exited with code 3" in message
        assert "dying on purpose" in message
        assert not caught.value.retryable
        assert server.restarts == 1
        assert gone(second)
        # Later calls fail at once, without starting anything.
        started = time.monotonic()
        with pytest.raises(MCPError, match="died again"):
            await pid_tool.call({})
        assert time.monotonic() - started < 0.1
        assert server.pid == second


async def test_calls_in_flight_when_the_server_dies_are_all_retried_on_one_restart(
    tmp_path: Path,
) -> None:
    async with MCPServer(stdio()) as server:
        slow = await tool_of(server, "t__slow")
        die_once = await tool_of(server, "t__die_once")
        first = server.pid

        async def kill_soon() -> str:
            await asyncio.sleep(0.3)  # the slow calls are on the server by now
            return await die_once.call({"marker": str(tmp_path / "died")})

        answers = await asyncio.gather(*(slow.call({"seconds": 1}) for _ in range(5)), kill_soon())
        assert answers == ["slept 1.0"] * 5 + ["survived"]
        assert server.restarts == 1
        assert server.pid != first


async def test_a_server_that_writes_a_line_without_end_is_stopped_as_broken(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from automatos.tools import mcp_stdio

    monkeypatch.setattr(mcp_stdio, "MAX_LINE_CHARS", 200_000)
    async with MCPServer(stdio()) as server:
        flood = await tool_of(server, "t__flood")
        started = time.monotonic()
        with pytest.raises(MCPError, match="without a newline") as caught:
            await flood.call({"chars": 2_000_000})
        assert time.monotonic() - started < 10
        assert "200,000 characters on stdout" in str(caught.value)
        assert server.restarts == 1  # stopped, started again, and broke the same way


async def test_a_server_that_dies_between_calls_is_restarted_on_the_next_call(
    tmp_path: Path,
) -> None:
    async with MCPServer(stdio()) as server:
        pid_tool = await tool_of(server, "t__pid")
        first = int(await pid_tool.call({}))
        os.kill(first, signal.SIGKILL)
        for _ in range(100):  # until the transport has seen the end
            if gone(first):
                break
            await asyncio.sleep(0.05)
        assert int(await pid_tool.call({})) != first
        assert server.restarts == 1


async def test_a_broken_http_connection_ends_in_an_mcp_error(http_url: str) -> None:
    async with MCPServer(MCPServerConfig(name="web", url=http_url)) as server:
        die = await tool_of(server, "web__die")
        started = time.monotonic()
        # The server process is gone: the one restart finds nothing listening.
        with pytest.raises(MCPError, match="'web'") as caught:
            await die.call({})
        assert "could not be reached" in str(caught.value)
        assert time.monotonic() - started < 10
        with pytest.raises(MCPError):
            await (await tool_of(server, "web__add")).call({"a": 1, "b": 1})
    assert no_owner_tasks()


# --- start failures -----------------------------------------------------------------------


async def test_a_missing_program_fails_to_start_quickly() -> None:
    config = MCPServerConfig(name="nope", command=["/nonexistent/mcp-server", "--stdio"])
    async with MCPServer(config) as server:
        started = time.monotonic()
        with pytest.raises(MCPError, match="'/nonexistent/mcp-server' was not found") as caught:
            await server.tools()
        assert time.monotonic() - started < 2
        assert caught.value.tool == "mcp:nope"
        with pytest.raises(MCPError, match="was not found"):  # remembered, not tried again
            await server.tools()
    assert no_owner_tasks()


async def test_a_server_that_exits_at_start_says_how() -> None:
    code = "import sys; sys.stderr.write('no config file'); sys.exit(2)"
    async with MCPServer(MCPServerConfig(name="bad", command=[sys.executable, "-c", code])) as s:
        with pytest.raises(MCPError, match="exited with code 2") as caught:
            await s.tools()
        assert "no config file" in str(caught.value)
        assert "could not start" in str(caught.value)


async def test_what_a_dying_server_printed_is_redacted_in_its_error() -> None:
    code = (
        "import os, sys; sys.stderr.write('connecting with api_key=AbCdEf1234567890 and '"
        " + os.environ['LEAK'] + ' sk-proj-AAAAAAAAAAAAAAAAAAAAAAAA'); sys.exit(3)"
    )
    config = MCPServerConfig(
        name="leaky", command=[sys.executable, "-c", code], env={"LEAK": "MyDbPassw0rd!"}
    )
    async with MCPServer(config) as server:
        with pytest.raises(MCPError, match="exited with code 3") as caught:
            await server.tools()
    said = str(caught.value)
    assert "connecting with" in said  # what it said is kept, its secrets are not
    for secret in ("AbCdEf1234567890", "MyDbPassw0rd!", "sk-proj-AAAA"):
        assert secret not in said, said


async def test_a_server_that_never_answers_the_handshake_times_out() -> None:
    code = "import time; time.sleep(60)"
    config = MCPServerConfig(name="mute", command=[sys.executable, "-c", code])
    async with MCPServer(config, start_timeout_s=1) as server:
        started = time.monotonic()
        with pytest.raises(MCPError, match="did not finish the MCP handshake within 1 s"):
            await server.tools()
        assert time.monotonic() - started < 8
        pid = server.pid
        assert pid is not None
        assert gone(pid)
    assert no_owner_tasks()


async def test_a_url_with_nothing_listening_fails_quickly() -> None:
    url = f"http://127.0.0.1:{free_port()}/mcp"
    async with MCPServer(MCPServerConfig(name="away", url=url)) as server:
        started = time.monotonic()
        with pytest.raises(MCPError, match=r"could not be reached at http://127\.0\.0\.1"):
            await server.tools()
        assert time.monotonic() - started < 5
    assert no_owner_tasks()


# --- closing and sharing ------------------------------------------------------------------


async def test_aclose_stops_the_process_and_its_task() -> None:
    server = MCPServer(stdio())
    pid = int(await (await tool_of(server, "t__pid")).call({}))
    assert server.pid == pid
    assert not gone(pid)
    await server.aclose()
    assert gone(pid)
    assert no_owner_tasks()


async def test_aclose_during_the_start_stops_the_process() -> None:
    code = "import time; time.sleep(60)"
    server = MCPServer(MCPServerConfig(name="mute", command=[sys.executable, "-c", code]))
    starting = asyncio.create_task(server.tools())
    for _ in range(500):  # until the process is there
        if server.pid is not None:
            break
        await asyncio.sleep(0.01)
    pid = server.pid
    assert pid is not None
    await server.aclose()
    with pytest.raises(MCPError):
        await starting
    assert gone(pid)
    assert no_owner_tasks()


async def test_the_pool_shares_one_server_across_concurrent_calls() -> None:
    async with MCPPool([stdio("a"), stdio("b")]) as pool:
        # Many subtasks ask for the tools at once: each server starts once.
        listings = await asyncio.gather(*(pool.tools_for(["mcp:a"]) for _ in range(5)))
        assert all(
            {t.spec.name for t in tools} == {t.spec.name for t in listings[0]} for tools in listings
        )
        pid_tool = next(t for t in listings[0] if t.spec.name == "a__pid")
        add = next(t for t in listings[-1] if t.spec.name == "a__add")
        answers = await asyncio.gather(
            *(pid_tool.call({}) for _ in range(10)),
            *(add.call({"a": i, "b": i}) for i in range(10)),
        )
        assert len(set(answers[:10])) == 1
        assert answers[10:] == [str(2 * i) for i in range(10)]
        assert pool.server("a").restarts == 0
        assert pool.server("b").pid is None  # never asked for: never started
        both = await pool.tools_for(["mcp:b", "a__echo", "calculator", "a__echo"])
        assert [t.spec.name for t in both][-1] == "a__echo"
        assert "calculator" not in [t.spec.name for t in both]
        pids = [int(answers[0]), pool.server("b").pid]
    assert all(pid is not None and gone(pid) for pid in pids)
    assert no_owner_tasks()


async def test_the_pool_names_what_it_does_not_have() -> None:
    async with MCPPool([stdio("a")]) as pool:
        assert pool.names == ["a"]
        with pytest.raises(ToolNotFoundError, match="no MCP server named 'zzz'"):
            await pool.tools_for(["mcp:zzz"])
        with pytest.raises(ToolNotFoundError, match="'a__nope'"):
            await pool.tools_for(["a__nope"])
    with pytest.raises(ConfigurationError, match="two MCP servers are named 'a'"):
        MCPPool([stdio("a"), stdio("a")])


def test_works_on_the_engines_event_loop() -> None:
    """uvloop when installed: the SDK's anyio subprocess and task groups run there too."""

    async def main() -> str:
        async with MCPServer(stdio()) as server:
            return await (await tool_of(server, "t__add")).call({"a": 20, "b": 22})

    assert run_on_engine_loop(main()) == "42"


# --- results as text ----------------------------------------------------------------------


def test_results_describe_what_is_not_text() -> None:
    png = base64.b64encode(b"\x89PNG" + bytes(1230)).decode()
    blob = base64.b64encode(b"xyz").decode()
    result = mcp_types.CallToolResult(
        content=[
            mcp_types.TextContent(type="text", text="a chart:"),
            mcp_types.ImageContent(type="image", data=png, mimeType="image/png"),
            mcp_types.EmbeddedResource(
                type="resource",
                resource=mcp_types.TextResourceContents(uri="file:///a.txt", text="inside"),
            ),
            mcp_types.EmbeddedResource(
                type="resource",
                resource=mcp_types.BlobResourceContents(uri="file:///b.bin", blob=blob),
            ),
            mcp_types.ResourceLink(type="resource_link", uri="file:///c.md", name="c"),
        ]
    )
    assert result_text("t__x", result) == (
        "a chart:\n[image/png, 1234 bytes]\n[resource file:///a.txt]\ninside\n"
        "[resource file:///b.bin, binary, 3 bytes]\n[resource link 'c': file:///c.md]"
    )


def test_structured_content_is_json_when_there_is_no_text() -> None:
    result = mcp_types.CallToolResult(content=[], structuredContent={"rows": [1, 2]})
    assert result_text("t__x", result) == '{"rows": [1, 2]}'
    text = mcp_types.TextContent(type="text", text='{"rows": [1, 2]}')
    both = mcp_types.CallToolResult(content=[text], structuredContent={"rows": [1, 2]})
    assert result_text("t__x", both) == '{"rows": [1, 2]}'


def test_an_error_result_raises_with_its_text() -> None:
    denied = mcp_types.TextContent(type="text", text="denied")
    with pytest.raises(ToolFailedError, match="denied"):
        result_text("t__x", mcp_types.CallToolResult(content=[denied], isError=True))
    with pytest.raises(ToolFailedError, match="without a message"):
        result_text("t__x", mcp_types.CallToolResult(content=[], isError=True))
