"""The CLI end to end, against a local OpenAI-compatible server."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from automatos.cli import app
from automatos.domain.event import SubtaskFinished, SubtaskStarted
from automatos.progress import ProgressDisplay
from tests.support.fake_servers import FakeLLMServer, Reply, openai_chat

PLAN = {
    "subtasks": [
        {"id": "facts", "description": "list the facts"},
        {"id": "summary", "description": "summarise", "depends_on": ["facts"]},
    ]
}


def respond(path: str, body: dict[str, Any]) -> Reply:
    system = body["messages"][0]["content"]
    if "planner of a workflow engine" in system:
        return openai_chat(json.dumps(PLAN))
    if "assign the best agent" in system:
        return openai_chat(json.dumps({"assignments": []}))  # unsure: the score decides
    prompt = body["messages"][-1]["content"]
    if "Your step (" not in prompt:  # a request run as its own one step
        return openai_chat("168")
    step = prompt.split("Your step (")[1].split(")")[0]
    return openai_chat(f"answer of {step}")


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLLMServer]:
    with FakeLLMServer(respond) as s:
        monkeypatch.setenv("AUTOMATOS_LLM__PROVIDER", "openai")
        monkeypatch.setenv("AUTOMATOS_LLM__BASE_URL", s.base_url)
        monkeypatch.setenv("AUTOMATOS_LLM__MODEL", "fake-model")
        yield s


runner = CliRunner()


def test_run_without_any_model_names_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "llama_cpp" else real(name, *a),
    )
    result = runner.invoke(app, ["run", "do something"])
    assert result.exit_code == 3  # not 2, which is a usage error
    assert "No LLM is configured" in result.output
    assert "AUTOMATOS_LLM__BASE_URL" in result.output


def test_run_prints_the_final_answer(server: FakeLLMServer) -> None:
    result = runner.invoke(app, ["run", "--level", "organ", "tell me about graphs"])
    assert result.exit_code == 0, result.output
    assert "answer of summary" in result.output
    assert "succeeded: 2 succeeded" in result.output


def test_run_json(server: FakeLLMServer) -> None:
    result = runner.invoke(app, ["run", "--level", "organ", "tell me about graphs", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["status"] == "succeeded"
    assert data["final_answer"] == "answer of summary"
    assert data["plan"]["subtasks"][1]["graph"]["predecessors"] == ["facts"]
    assert data["totals"]["tokens_in"] == 44  # four calls (plan, select, two steps) of 11


def test_run_a_recipe(server: FakeLLMServer, tmp_path: Path) -> None:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        "request: compare\nsubtasks:\n  - id: one\n    description: a\n"
        "  - id: two\n    description: b\n    depends_on: [one]\n"
    )
    result = runner.invoke(app, ["run", "--recipe", str(recipe), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["stages"] == [
        "prompt_variant",
        "recipe",
        "select_agents",
        "context",
        "coordinate",
        "execute",
        "aggregate",
        "assess",
        "learn",
        "memory",
        "respond",
    ]
    assert all(
        "planner of a workflow engine" not in b["messages"][0]["content"]
        for _, b in server.requests
    )


def test_bad_input_gets_a_clear_error(tmp_path: Path) -> None:
    nothing = runner.invoke(app, ["run"])
    assert nothing.exit_code == 2
    assert "give the request one way" in nothing.output
    blank = runner.invoke(app, ["run", "  "])
    assert blank.exit_code == 1
    assert "no letters or digits" in blank.output
    missing = runner.invoke(app, ["run", "--recipe", str(tmp_path / "none.yaml")])
    assert missing.exit_code == 1
    assert "cannot read" in missing.output


def test_graph_prints_the_analysis(tmp_path: Path) -> None:
    plan = tmp_path / "plan.json"
    plan.write_text(
        json.dumps(
            {
                "subtasks": [
                    {"id": "a", "description": "x", "complexity": 1},
                    {"id": "b", "description": "y", "depends_on": ["a"], "complexity": 4},
                    {"id": "c", "description": "z", "depends_on": ["a"], "complexity": 1},
                ]
            }
        )
    )
    text = runner.invoke(app, ["graph", str(plan)])
    assert text.exit_code == 0, text.output
    assert "layer 1: b, c" in text.output
    assert "a -> b" in text.output
    data = json.loads(runner.invoke(app, ["graph", str(plan), "--json"]).stdout)
    assert data["critical_path"] == ["a", "b"]
    assert data["subtasks"][2]["graph"]["slack"] == 3


def test_graph_names_a_cycle(tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        "request: r\nsubtasks:\n  - {id: a, description: x, depends_on: [b]}\n"
        "  - {id: b, description: y, depends_on: [a]}\n"
    )
    result = runner.invoke(app, ["graph", str(plan)])
    assert result.exit_code == 1
    assert "CycleError" in result.output
    assert "a -> b -> a" in result.output


def test_version() -> None:
    assert runner.invoke(app, ["version"]).output.strip() == "0.1.0"


def test_progress_display_shows_one_line_per_subtask() -> None:
    console = Console(record=True, force_terminal=True, width=100)
    display = ProgressDisplay(console)
    display.on_event(SubtaskStarted(1, "w", 0.0, subtask_id="facts", agent="generalist", attempt=1))
    display.on_event(
        SubtaskFinished(2, "w", 0.0, subtask_id="facts", status="succeeded", elapsed_s=1.5)
    )
    display.on_event(SubtaskStarted(3, "w", 0.0, subtask_id="summary", agent="writer", attempt=2))
    console.print(display._render())
    text = console.export_text()
    assert "facts" in text
    assert "succeeded" in text
    assert "1.5s" in text
    assert "summary" in text
    assert "running (try 2)" in text
    assert "writer" in text


def test_eval_scores_a_labelled_file(tmp_path: Path) -> None:
    lines = tmp_path / "set.jsonl"
    good = (
        "Use a virtual environment: python -m venv .venv creates one, and activating it "
        "keeps each project's packages apart from the system's and from each other."
    )
    lines.write_text(
        json.dumps(
            {"task": "Explain why to use a Python virtual environment.", "output": good, "label": 1}
        )
        + "\n"
        + json.dumps(
            {
                "task": "Explain why to use a Python virtual environment.",
                "output": "I'm sorry, I can't help with that.",
                "label": 0,
            }
        )
        + "\n"
    )
    result = runner.invoke(app, ["eval", str(lines), "--json"])
    assert result.exit_code == 0, result.output
    out = result.stdout.strip().splitlines()
    first, second = float(out[0]), float(out[1])
    assert first > 0.6 > second
    summary = json.loads(out[-1])
    assert set(summary) == {"auc", "good_mean", "bad_mean", "min", "max"}
    assert summary["auc"] == 1.0
    text = runner.invoke(app, ["eval", str(lines)])
    assert "AUC 1.000" in text.output


def test_eval_names_a_bad_line(tmp_path: Path) -> None:
    lines = tmp_path / "bad.jsonl"
    lines.write_text('{"task": "t", "output": "o"}\n{"output": "no task"}\n')
    result = runner.invoke(app, ["eval", str(lines)])
    assert result.exit_code == 1
    assert "bad.jsonl:2" in result.output and "task" in result.output
    lines.write_text('{"task": "t", "output": "o"}\n\nnot json\n')
    result = runner.invoke(app, ["eval", str(lines)])
    assert result.exit_code == 1
    assert "bad.jsonl:3 is not valid JSON" in result.output.replace("\n", "")


def test_eval_with_the_judge(server: FakeLLMServer, tmp_path: Path) -> None:
    verdict = {
        d: {"score": 0.8, "reason": "fine"} for d in ("completeness", "accuracy", "coherence")
    }
    server.responder = lambda path, body: openai_chat(json.dumps(verdict))
    lines = tmp_path / "set.jsonl"
    lines.write_text(json.dumps({"task": "Say hi.", "output": "Hi there."}) + "\n")
    result = runner.invoke(app, ["eval", str(lines), "--judge"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "0.800"


def test_graph_of_a_bare_plan_list_and_a_broken_plan(tmp_path: Path) -> None:
    plan = tmp_path / "list.json"
    plan.write_text(
        '[{"id": "a", "description": "x"}, {"id": "b", "description": "y", "depends_on": ["a"]}]'
    )
    assert "layer 1: b" in runner.invoke(app, ["graph", str(plan)]).output
    broken = tmp_path / "broken.json"
    broken.write_text('{"subtasks": [{"id": "a"}]}')
    result = runner.invoke(app, ["graph", str(broken)])
    assert result.exit_code == 1
    assert "PlanParseError" in result.output and "subtasks.0.description" in result.output


def test_a_simple_request_is_an_atom_and_runs_show_says_so(server: FakeLLMServer) -> None:
    done = runner.invoke(app, ["run", "What is 12 * 14?", "--json"])
    assert done.exit_code == 0, done.output
    data = json.loads(done.stdout)
    assert data["level"]["level"] == "atom"
    assert data["stages"] == ["one_step", "context", "execute", "memory", "respond"]
    assert len(server.requests) == 1  # one model call, no planner
    shown = runner.invoke(app, ["runs", "show", data["workflow_id"]])
    assert shown.exit_code == 0, shown.output
    assert "level: atom (features:" in shown.output
    assert "stage one_step (execute)" in shown.output
    assert "not run: decompose: Atom" in shown.output


def test_the_summary_shows_the_level_and_the_plan_by_layers(server: FakeLLMServer) -> None:
    done = runner.invoke(app, ["run", "--level", "organ", "tell me about graphs"])
    assert done.exit_code == 0, done.output
    assert "level organ (caller: set by the caller)" in done.output
    assert "plan: 2 steps in 2 layers" in done.output
    assert "1. facts" in done.output and "2. summary" in done.output


def test_an_unknown_level_is_a_usage_error() -> None:
    done = runner.invoke(app, ["run", "--level", "huge", "hello"])
    assert done.exit_code == 2
    assert "'huge' is not a level" in done.output
    assert "atom, molecule, cell, organ, organism" in done.output
