"""``--tool module:name`` on ``run``, ``runs resume``, ``serve`` and ``worker``: the user's
Python tools, loaded from the current directory as uvicorn finds an app."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from automatos.cli import app
from automatos.cli.plugins import python_tools
from tests.support.fake_servers import FakeLLMServer, Reply, openai_chat

runner = CliRunner()

RECIPE = """\
request: What is 120 with VAT?
agents:
  - name: pricer
    description: Prices things
    tools: [add_vat]
subtasks:
  - id: price
    description: Add VAT to 120
    agent: pricer
"""

TOOLS = '''\
CALLS = []


def add_vat(amount: float, rate: float = 0.2) -> float:
    """The amount with value added tax."""
    CALLS.append(amount)
    return round(amount * (1 + rate), 2)


def broken(
'''


def respond(path: str, body: dict[str, Any]) -> Reply:
    """Call ``add_vat`` once when offered it, then answer with what it gave."""
    messages = body["messages"]
    if messages[-1]["role"] == "tool":
        return openai_chat(f"With VAT: {messages[-1]['content']}")
    if any(t["function"]["name"] == "add_vat" for t in body.get("tools", ())):
        call = {
            "id": "call_1",
            "type": "function",
            "function": {"name": "add_vat", "arguments": json.dumps({"amount": 120})},
        }
        reply = openai_chat("")
        reply.body["choices"][0]["message"] = {
            "role": "assistant",
            "content": None,
            "tool_calls": [call],
        }
        reply.body["choices"][0]["finish_reason"] = "tool_calls"
        return reply
    return openai_chat("A fine answer.")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A directory with the user's tools module and a recipe, the model a fake server."""
    (tmp_path / "my_tools.py").write_text(TOOLS.replace("def broken(\n", ""))
    (tmp_path / "bad_tools.py").write_text(TOOLS)
    (tmp_path / "exiting_tools.py").write_text("import sys\nsys.exit(7)\n")
    (tmp_path / "vat.yaml").write_text(RECIPE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AUTOMATOS_STORE__ENABLED", "false")
    with FakeLLMServer(respond) as server:
        monkeypatch.setenv("AUTOMATOS_LLM__PROVIDER", "openai")
        monkeypatch.setenv("AUTOMATOS_LLM__BASE_URL", server.base_url)
        monkeypatch.setenv("AUTOMATOS_LLM__MODEL", "fake-model")
        yield tmp_path


def test_run_gives_the_agents_the_python_tools_it_is_given(project: Path) -> None:
    result = runner.invoke(app, ["run", "--recipe", "vat.yaml", "--tool", "my_tools:add_vat"])
    assert result.exit_code == 0, result.output
    assert "With VAT: 144.0" in result.output
    assert "tool calls of price: 1" in result.output


def test_without_the_tool_the_run_says_which_tool_it_lacks(project: Path) -> None:
    result = runner.invoke(app, ["run", "--recipe", "vat.yaml"])
    assert result.exit_code == 1
    assert "ToolNotFoundError: tool 'add_vat'" in result.output
    assert "--tool module:name" in " ".join(result.output.split())
    assert "With VAT" not in result.output


@pytest.mark.parametrize("command", [["run", "--recipe", "vat.yaml"], ["serve"], ["worker"]])
@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("my_tools", "module:name"),
        ("no_such_module:thing", "No module named"),
        ("my_tools:nothing", "nothing"),
        ("my_tools:CALLS", "is not a tool"),  # a list, not a function
        ("automatos.tools:FunctionTool", "is not a tool"),  # a class
        ("bad_tools:add_vat", "importing bad_tools failed: SyntaxError"),
        ("exiting_tools:add_vat", "importing exiting_tools failed: SystemExit"),
    ],
)
def test_a_tool_that_cannot_be_loaded_is_a_usage_error_before_anything_starts(
    project: Path, command: list[str], path: str, problem: str
) -> None:
    result = runner.invoke(app, [*command, "--tool", path])
    assert result.exit_code == 2, result.output
    assert problem in result.output and path in result.output
    assert "Traceback" not in result.output


def test_two_tools_of_one_name_are_refused(project: Path) -> None:
    with pytest.raises(typer.Exit) as refused:
        python_tools(["my_tools:add_vat", "my_tools:add_vat"])
    assert refused.value.exit_code == 2


def test_tools_are_made_from_module_paths(project: Path) -> None:
    made = python_tools(["my_tools:add_vat", "automatos.tools.builtins:calculator"])
    assert [tool.spec.name for tool in made] == ["add_vat", "calculator"]
    assert python_tools(None) == []


def test_a_resumed_run_and_the_server_take_tools_too() -> None:
    for command in (["runs", "resume"], ["serve"]):
        assert "--tool" in runner.invoke(app, [*command, "--help"]).output
