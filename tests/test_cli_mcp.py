"""``automatos mcp``: a workspace's MCP servers added (a command or a URL), listed, removed."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from automatos.cli import app
from tests.test_cli_imports import HEAVY, imported

runner = CliRunner()


def ok(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def refused(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 1, result.output
    assert result.output.startswith("error: "), result.output
    return result.output


def test_a_command_server_is_added_listed_and_removed(tmp_path: Path) -> None:
    said = ok(
        "mcp", "add", "files", "--env", "FILES_TOKEN=s3cr3t=x", "--cwd", str(tmp_path),
        "--", "npx", "-y", "@modelcontextprotocol/server-filesystem", "/data dir",
    )  # fmt: skip
    assert "added MCP server files (stdio: npx -y @modelcontextprotocol/server-filesystem " in said
    assert "'/data dir'" in said and "workspace default" in said and "mcp:files" in said

    listed = ok("mcp", "list")
    header, row = listed.splitlines()
    assert header.split() == ["name", "kind", "added", "command", "or", "URL"]
    assert row.split()[:2] == ["files", "stdio"]
    assert row.endswith("npx -y @modelcontextprotocol/server-filesystem '/data dir'")
    assert "s3cr3t" not in listed

    (line,) = ok("mcp", "list", "--json").splitlines()
    shown = json.loads(line)
    assert shown["name"] == "files" and shown["workspace"] == "default"
    assert shown["command"] == ["npx", "-y", "@modelcontextprotocol/server-filesystem", "/data dir"]
    assert shown["env"] == {"FILES_TOKEN": "***"}  # the name is shown, never the value
    assert shown["cwd"] == str(tmp_path.resolve())
    assert "created_at" in shown

    assert ok("mcp", "remove", "files") == "removed MCP server files from workspace default\n"
    assert ok("mcp", "list").startswith("no MCP servers in workspace default")
    assert ok("mcp", "list", "--json") == ""


def test_a_url_server_s_headers_and_credentials_are_never_printed() -> None:
    said = ok(
        "mcp", "add", "search", "--url", "https://me:pw@mcp.example.test/mcp?key=k3y",
        "--header", "Authorization=Bearer t0k3n", "--header", "X-Team=blue",
    )  # fmt: skip
    assert "(streamable HTTP: https://mcp.example.test/mcp)" in said
    listed = ok("mcp", "list")
    assert "search" in listed and "http" in listed and "https://mcp.example.test/mcp" in listed
    shown = json.loads(ok("mcp", "list", "--json"))
    assert shown["headers"] == {"Authorization": "***", "X-Team": "***"}
    assert shown["url"] == "https://mcp.example.test/mcp"
    for secret in ("t0k3n", "blue", "pw", "k3y"):
        assert secret not in said + listed + json.dumps(shown)


def test_a_name_already_there_is_refused() -> None:
    ok("mcp", "add", "files", "--", "server-a")
    said = refused("mcp", "add", "files", "--url", "http://127.0.0.1:9/mcp")
    assert "already has an MCP server 'files'" in said
    assert "server-a" in ok("mcp", "list")


def test_removing_an_unknown_server_names_those_there() -> None:
    ok("mcp", "add", "files", "--", "server-a")
    said = refused("mcp", "remove", "filez")
    assert "no MCP server 'filez'; its servers: files" in said


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        ([], "give the server's command after '--'"),
        (["--url", "http://h/mcp", "--", "cmd"], "or its --url, not both"),
        (["--header", "A=b", "--", "cmd"], "--header is for a server reached by --url"),
        (["--url", "http://h/mcp", "--env", "A=b"], "--env and --cwd are for a server started"),
        (["--url", "http://h/mcp", "--header", "Authorization"], "--header takes KEY=VALUE"),
        (["--env", "=x", "--", "cmd"], "--env takes KEY=VALUE"),
        (["--url", "ftp://h/mcp"], "invalid MCP server: url: "),
        (["--", ""], "invalid MCP server: command: "),
    ],
)
def test_a_wrong_server_is_refused(args: list[str], problem: str) -> None:
    said = refused("mcp", "add", "files", *args)
    assert problem in said
    assert ok("mcp", "list").startswith("no MCP servers")


@pytest.mark.parametrize("name", ["a__b", "has space", "x" * 33, "mcp:files"])
def test_a_wrong_name_is_refused(name: str) -> None:
    said = refused("mcp", "add", name, "--", "cmd")
    assert "invalid MCP server: name: " in said


def test_each_workspace_has_its_own_servers() -> None:
    ok("mcp", "add", "files", "--workspace", "team-b", "--", "server-b")
    assert "server-b" in ok("mcp", "list", "--workspace", "team-b")
    assert ok("mcp", "list").startswith("no MCP servers in workspace default")
    ok("mcp", "add", "files", "--", "server-default")  # the same name, another workspace
    assert "no MCP server 'files'" in refused("mcp", "remove", "files", "--workspace", "team-c")
    ok("mcp", "remove", "files", "--workspace", "team-b")
    assert "server-default" in ok("mcp", "list")
    assert "is not a workspace name" in refused("mcp", "list", "--workspace", "a b")


def test_the_store_s_workspace_setting_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOMATOS_STORE__WORKSPACE", "configured")
    assert "to workspace configured" in ok("mcp", "add", "files", "--", "server")
    monkeypatch.delenv("AUTOMATOS_STORE__WORKSPACE")
    assert "server" in ok("mcp", "list", "--workspace", "configured")


def test_a_disabled_store_is_said(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOMATOS_STORE__ENABLED", "false")
    assert "the store is disabled" in refused("mcp", "list")
    assert "the store is disabled" in refused("mcp", "add", "files", "--", "server")


def test_mcp_help_imports_no_database_model_runtime_or_sdk() -> None:
    modules = imported("mcp", "--help")
    assert modules.isdisjoint((*HEAVY, "mcp", "mcp_types", "httpx2")), modules


TEST_SERVER = Path(__file__).parent / "tools" / "mcp_server.py"


def test_tools_starts_the_server_and_lists_its_tools_as_agents_get_them() -> None:
    ok("mcp", "add", "calc", "--", sys.executable, str(TEST_SERVER), "stdio")
    said = ok("mcp", "tools", "calc")
    names = [line.split()[0] for line in said.splitlines() if line.startswith("calc__")]
    assert {"calc__add", "calc__echo"} <= set(names)
    (add,) = [line for line in said.splitlines() if line.startswith("calc__add ")]
    assert add.endswith("Add two whole numbers.")
    assert f"{len(names)} tools; an agent names one of them, or all as mcp:calc" in said

    shown = [json.loads(line) for line in ok("mcp", "tools", "calc", "--json").splitlines()]
    (add_spec,) = [spec for spec in shown if spec["name"] == "calc__add"]
    assert add_spec["description"] == "Add two whole numbers."
    assert set(add_spec["parameters"]["properties"]) == {"a", "b"}


def test_tools_of_a_server_that_is_not_there_or_cannot_start() -> None:
    said = refused("mcp", "tools", "calc")
    assert "has no MCP server 'calc'; its servers: none" in said
    ok("mcp", "add", "broken", "--", sys.executable, "-c", "import sys; sys.exit(3)")
    said = refused("mcp", "tools", "broken", "--workspace", "default")
    assert "MCPError" in said and "broken" in said


def test_a_command_runs_where_it_was_added(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # ".venv/bin/python tests/tools/mcp_server.py" must start from any directory, and on a
    # worker: the directory it was written in goes with it.
    monkeypatch.chdir(tmp_path)
    ok("mcp", "add", "here", "--", ".venv/bin/python", "server.py", "stdio")
    (line,) = ok("mcp", "list", "--json").splitlines()
    assert json.loads(line)["cwd"] == str(tmp_path.resolve())


def test_a_header_http_cannot_carry_is_refused_when_added() -> None:
    said = refused("mcp", "add", "s", "--url", "https://x.example/mcp", "--header", "A=Bearer …")
    assert "Latin-1" in said and "'A'" in said
