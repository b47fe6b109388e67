from pathlib import Path

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
