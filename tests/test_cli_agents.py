import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from automatos.cli import app

runner = CliRunner()


def test_the_starter_team_is_listed() -> None:
    result = runner.invoke(app, ["agents", "list"])
    assert result.exit_code == 0, result.output
    names = [line.split()[0] for line in result.output.splitlines()]
    assert len(names) == 8
    assert {"generalist", "researcher", "analyst", "writer", "coder"} <= set(names)
    assert "no runs yet" in result.output


def test_add_show_and_import(tmp_path: Path) -> None:
    added = runner.invoke(
        app,
        [
            "agents",
            "add",
            "reviewer",
            "--description",
            "reviews code",
            "--capability",
            "review",
            "--temperature",
            "0.1",
        ],
    )
    assert added.exit_code == 0, added.output
    shown = runner.invoke(app, ["agents", "show", "reviewer"])
    assert "description: reviews code" in shown.output and "temperature: 0.1" in shown.output
    team = tmp_path / "team.yaml"
    team.write_text("agents:\n  - name: poet\n    description: writes verse\n  - name: critic\n")
    imported = runner.invoke(app, ["agents", "import", str(team)])
    assert imported.exit_code == 0, imported.output
    assert "saved 2 agents: poet, critic" in imported.output
    listed = runner.invoke(app, ["agents", "list"]).output
    assert "poet" in listed and "reviewer" in listed and "generalist" in listed


def test_bad_agents_are_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("- name: x\n  temperature: 7\n")
    result = runner.invoke(app, ["agents", "import", str(bad)])
    assert result.exit_code == 1 and "agent 1 ('x') is not valid: temperature" in result.output
    twice = tmp_path / "twice.yaml"
    twice.write_text("- name: x\n- name: x\n")
    assert "names agents twice: x" in runner.invoke(app, ["agents", "import", str(twice)]).output
    assert "no agent 'nobody'" in runner.invoke(app, ["agents", "show", "nobody"]).output
    invalid = runner.invoke(app, ["agents", "add", "t", "--temperature", "9"])
    assert invalid.exit_code == 1 and "temperature" in invalid.output


def ok(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def refused(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 1, result.output
    assert result.output.startswith("error: "), result.output
    return result.output


def test_an_agent_is_given_tools() -> None:
    said = ok(
        "agents", "add", "quant", "--description", "does sums",
        "--tool", "calculator", "--tool", "current_time",
    )  # fmt: skip
    assert "saved agent quant with tools calculator, current_time" in said
    assert "warning" not in said
    shown = ok("agents", "show", "quant")
    assert "tools:\n- calculator\n- current_time\n" in shown
    assert "mcp_servers: []" in shown
    (row,) = [line for line in ok("agents", "list").splitlines() if line.startswith("quant ")]
    assert row.endswith("does sums  [tools: calculator, current_time]")
    listed = [json.loads(line) for line in ok("agents", "list", "--json").splitlines()]
    assert {a["name"]: a["tools"] for a in listed}["quant"] == ["calculator", "current_time"]
    # Replaced without --tool, it has none.
    ok("agents", "add", "quant")
    assert "tools: []" in ok("agents", "show", "quant")


def test_an_agents_tools_are_listed_and_shown() -> None:
    ok("agents", "add", "calc", "--description", "Does sums", "--tool", "calculator")
    shown = ok("agents", "show", "calc")
    assert "tools:\n- calculator\n" in shown
    (row,) = [line for line in ok("agents", "list").splitlines() if line.startswith("calc ")]
    assert row.endswith("[tools: calculator]")
    (row,) = [line for line in ok("agents", "list").splitlines() if line.startswith("writer ")]
    assert "tools" not in row


@pytest.mark.parametrize(
    ("tools", "problem"),
    [
        (["calculator", "calculator"], "tools: Value error, tools named twice: calculator"),
        (["has space"], "'has space' cannot name a tool"),
        (["mcp:"], "'mcp:' does not name an MCP server"),
        (["mcp:a__b"], "'mcp:a__b' does not name an MCP server"),
        (["x" * 65], "cannot name a tool"),
    ],
)
def test_wrong_tool_names_are_refused(tools: list[str], problem: str) -> None:
    said = refused("agents", "add", "quant", *(f"--tool={t}" for t in tools))
    assert "invalid agent: " in said and problem in said
    assert "quant" not in ok("agents", "list")


def test_tools_no_run_could_give_are_warned_of_but_saved() -> None:
    said = ok(
        "agents", "add", "quant",
        "--tool", "calculater", "--tool", "mcp:files", "--tool", "search__web",
    )  # fmt: skip
    assert "saved agent quant" in said
    assert "warning: 'calculater' is not a built-in tool (did you mean calculator?" in said
    assert "has no MCP server 'files' (yet)" in said
    assert "has no MCP server 'search' (yet)" in said
    ok("mcp", "add", "files", "--", "server")
    ok("mcp", "add", "search", "--url", "http://127.0.0.1:9/mcp")
    again = ok("agents", "add", "quant", "--tool", "mcp:files", "--tool", "search__web")
    assert "warning" not in again


def test_an_agent_file_with_tools_and_servers_of_its_own(tmp_path: Path) -> None:
    team = tmp_path / "team.yaml"
    team.write_text(
        "agents:\n"
        "  - name: librarian\n"
        "    tools: [mcp:shelf, current_time]\n"
        "    mcp_servers:\n"
        "      - name: shelf\n"
        "        command: [shelf-server, --root, /books]\n"
        "        env: {SHELF_KEY: k3y-v4lue}\n"
        "  - name: clerk\n"
        "    tools: [mcp:shelf]\n"
    )
    said = ok("agents", "import", str(team))
    assert "saved 2 agents: librarian, clerk" in said
    # The librarian has its own 'shelf'; the clerk names one the workspace lacks.
    assert said.count("has no MCP server 'shelf'") == 1
    shown = ok("agents", "show", "librarian")
    assert "- mcp:shelf\n- current_time\n" in shown
    assert "name: shelf" in shown and "- shelf-server" in shown
    assert "SHELF_KEY: '***'" in shown and "k3y-v4lue" not in shown
    listed = ok("agents", "list", "--json")
    assert "k3y-v4lue" not in listed and '"SHELF_KEY": "***"' in listed


def test_an_agent_file_with_a_wrong_server_names_it(tmp_path: Path) -> None:
    team = tmp_path / "team.yaml"
    team.write_text(
        "- name: librarian\n"
        "  mcp_servers:\n"
        "    - name: shelf\n"
        "      command: [shelf-server]\n"
        "      url: http://127.0.0.1:9/mcp\n"
    )
    said = refused("agents", "import", str(team))
    assert "agent 1 ('librarian') is not valid: mcp_servers.0: " in said
    assert "needs exactly one of 'command' (stdio) and 'url'" in said
