"""A stored run keeps its agents' MCP secrets (a resumed run starts their servers again) but
never shows them: ``automatos runs show --json`` and ``GET /v1/workflows/{id}``."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from typer.testing import CliRunner

from automatos import AgentSpec, Engine, SubtaskSpec, WorkflowRequest
from automatos.cli import app
from automatos.domain.tools import MCPServerConfig, hide_server_secrets
from automatos.settings import StoreSettings
from automatos.testing import ScriptedLLM
from tests.conftest import fast_settings

SECRET = "sk-proj-CCCCCCCCCCCCCCCCCCCCCCCC"


def test_runs_show_hides_an_agents_mcp_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = fast_settings()
    settings.store = StoreSettings(data_dir=tmp_path / "data")
    server = MCPServerConfig(
        name="docs", url=f"https://u:{SECRET}@mcp.example.com/mcp", headers={"X-Key": SECRET}
    )
    agent = AgentSpec(name="reader", description="reads", mcp_servers=(server,))
    request = WorkflowRequest(
        text="Say hello.",
        subtasks=(SubtaskSpec(id="hi", description="say hello", agent="reader"),),
        agents=(agent,),
    )

    async def run() -> str:
        async with Engine(settings, llm=ScriptedLLM(default="Hello.")) as engine:
            return (await engine.run(request)).workflow_id

    workflow_id = asyncio.run(run())
    monkeypatch.setenv("AUTOMATOS_STORE__DATA_DIR", str(tmp_path / "data"))
    shown = CliRunner().invoke(app, ["runs", "show", workflow_id, "--json"])
    assert shown.exit_code == 0, shown.output
    assert SECRET not in shown.output
    assert '"X-Key": "***"' in shown.output


def test_every_mcp_server_config_in_a_value_is_hidden() -> None:
    value = {
        "extra": {"request": {"agents": [{"mcp_servers": [{"env": {"K": "v1"}, "name": "a"}]}]}},
        "checkpoint": {"agents": [{"mcp_servers": [{"url": "https://a:b@h/x?k=1"}]}]},
        "other": [1, "mcp_servers"],
    }
    hidden = hide_server_secrets(value)
    assert hidden["extra"]["request"]["agents"][0]["mcp_servers"][0]["env"] == {"K": "***"}
    assert hidden["checkpoint"]["agents"][0]["mcp_servers"][0]["url"] == "https://h/x"
    assert hidden["other"] == [1, "mcp_servers"]
    assert value["extra"]["request"]["agents"][0]["mcp_servers"][0]["env"] == {"K": "v1"}


DSN = "postgresql://app:S3cretPass@db.internal/prod"
COMMAND = (
    "npx",
    "-y",
    "@modelcontextprotocol/server-postgres",
    DSN,
    f"--token={SECRET}",
    "--api-key",
    "plain-looking-value",
    "--verbose",
    "/srv/data",
)


def test_secrets_in_a_servers_command_are_hidden_wherever_it_is_shown(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = MCPServerConfig(name="pg", command=COMMAND)
    expected = [
        "npx",
        "-y",
        "@modelcontextprotocol/server-postgres",
        "postgresql://db.internal/prod",
        "--token=[REDACTED]",
        "--api-key",
        "***",
        "--verbose",
        "/srv/data",
    ]
    assert config.shown()["command"] == expected
    stored = {"agents": [{"mcp_servers": [config.model_dump(mode="json")]}]}
    assert hide_server_secrets(stored)["agents"][0]["mcp_servers"][0]["command"] == expected
    assert config.command == COMMAND  # kept as given: the server is started with it
    # the CLI: added, listed
    monkeypatch.setenv("AUTOMATOS_STORE__DATA_DIR", str(tmp_path / "data"))
    runner = CliRunner()
    added = runner.invoke(app, ["mcp", "add", "pg", "--", *COMMAND])
    listed = runner.invoke(app, ["mcp", "list", "--json"])
    for result in (added, listed, runner.invoke(app, ["mcp", "list"])):
        assert result.exit_code == 0, result.output
        for secret in ("S3cretPass", SECRET, "plain-looking-value"):
            assert secret not in result.output
    assert "postgresql://db.internal/prod" in added.output
