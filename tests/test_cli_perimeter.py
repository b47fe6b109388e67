"""The CLI's error perimeter, as a user meets it: a real process, one line, the right code.

Each case runs ``python -m automatos.cli`` (what the ``automatos`` script runs) and checks the
exit code and that standard error holds one clear line and no traceback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.fake_servers import FakeLLMServer, Reply, openai_chat

ROOT = Path(__file__).resolve().parent.parent
RECIPE = ROOT / "examples" / "recipe.yaml"
USAGE, FAILED, NO_MODEL = 2, 1, 3


def automatos(
    *args: str, env: dict[str, str] | None = None, stdin: str | None = None, cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    """Run the command with the test's environment (no AUTOMATOS_* of the developer's)."""
    return subprocess.run(
        [sys.executable, "-m", "automatos.cli", *args],
        env={**os.environ, "COLUMNS": "200", **(env or {})},
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


def one_error(done: subprocess.CompletedProcess[str], code: int = FAILED) -> str:
    """The single ``error:`` line of a command that failed with ``code``."""
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ")
    return lines[0].removeprefix("error: ")


@pytest.fixture
def recipe_file(tmp_path: Path) -> Path:
    return tmp_path / "recipe.yaml"


# -- recipes --------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["run", "graph"])
@pytest.mark.parametrize("suffix", ["yaml", "json"])
def test_a_recipe_nested_10000_deep(tmp_path: Path, command: str, suffix: str) -> None:
    path = tmp_path / f"deep.{suffix}"
    nested = "[" * 10_000 + "]" * 10_000
    path.write_text(
        f'{{"request": "x", "subtasks": {nested}}}'
        if suffix == "json"
        else f"request: x\nsubtasks: {nested}\n"
    )
    args = ["run", "--recipe", str(path)] if command == "run" else ["graph", str(path)]
    message = one_error(automatos(*args))
    assert message.startswith("InvalidRequestError: ")
    assert f"deep.{suffix} is nested more than 32 levels deep" in message


@pytest.mark.parametrize("command", ["run", "graph"])
def test_null_subtasks(recipe_file: Path, command: str) -> None:
    recipe_file.write_text("request: compare two databases\nsubtasks: null\n")
    args = (
        ["run", "--recipe", str(recipe_file)] if command == "run" else ["graph", str(recipe_file)]
    )
    assert "'subtasks' is empty (null)" in one_error(automatos(*args))


def test_a_recipe_request_obeys_the_length_limit(recipe_file: Path) -> None:
    recipe_file.write_text(f"request: {'word ' * 30}\nsubtasks:\n  - {{id: a, description: d}}\n")
    done = automatos(
        "run", "--recipe", str(recipe_file), env={"AUTOMATOS_PLAN__MAX_REQUEST_CHARS": "100"}
    )
    assert (
        "'request' is 149 characters long; the limit is 100 (setting plan.max_request_chars)"
        in (one_error(done))
    )


def test_a_request_and_a_recipe_is_a_usage_error() -> None:
    message = one_error(automatos("run", "something else", "--recipe", str(RECIPE)), USAGE)
    assert message.startswith("give the request one way")
    assert message.endswith("got a request and --recipe")


def test_graph_and_run_print_an_error_the_same_way(recipe_file: Path) -> None:
    recipe_file.write_text(
        "request: r\nsubtasks:\n  - {id: a, description: x, depends_on: [a]}\n  - {id: a}\n"
    )
    from_run = one_error(automatos("run", "--recipe", str(recipe_file)))
    from_graph = one_error(automatos("graph", str(recipe_file)))
    assert from_run == from_graph
    assert from_run.startswith("InvalidRequestError: ")
    assert "subtasks.1.description: Field required" in from_run


# -- settings -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("weights", "problem"),
    [
        (
            '{"acuracy": 0.5}',
            "unknown quality dimension 'acuracy' (did you mean 'accuracy'?); "
            "the dimensions are completeness, accuracy, efficiency, reliability, coherence",
        ),
        ('{"accuracy": -1}', "the weight of 'accuracy' is -1.0; weights are 0 or more"),
        ('{"accuracy": 0, "coherence": 0}', "every weight is zero"),
    ],
)
def test_bad_quality_weights_stop_the_run_before_it_starts(weights: str, problem: str) -> None:
    done = automatos("run", "compare two databases", env={"AUTOMATOS_QUALITY__WEIGHTS": weights})
    message = one_error(done)
    assert message.startswith(f"AUTOMATOS_QUALITY__WEIGHTS: {problem}")


COMMANDS = [
    ["run", "compare two databases"],
    ["graph", str(RECIPE)],
    ["eval", "answers.jsonl"],
    ["runs", "list"],
    ["runs", "show", "3f2a"],
    ["runs", "import-legacy", "seed.json"],
    ["agents", "list"],
    ["agents", "show", "analyst"],
    ["agents", "add", "reviewer"],
    ["agents", "import", "team.yaml"],
]


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_a_bad_variable_is_named_by_every_command(args: list[str]) -> None:
    done = automatos(*args, env={"AUTOMATOS_EXECUTION__MAX_CONCURRENCY": "lots"})
    assert one_error(done) == (
        "AUTOMATOS_EXECUTION__MAX_CONCURRENCY: Input should be a valid integer, unable to parse "
        "string as an integer (got 'lots')"
    )


def test_unparsable_json_in_a_variable_is_named() -> None:
    done = automatos("agents", "list", env={"AUTOMATOS_LLM__PRICES": "gpt-4o=1"})
    assert one_error(done).startswith("AUTOMATOS_LLM__PRICES: not valid JSON")


def test_misspelt_variables_are_warned_about() -> None:
    done = automatos(
        "graph",
        str(RECIPE),
        env={"AUTOMATOS_EXECUTON__MAX_CONCURRENCY": "3", "AUTOMATOS_LLM__MODLE": "x"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [
        "warning: AUTOMATOS_EXECUTON__MAX_CONCURRENCY is not a setting and is ignored; "
        "did you mean AUTOMATOS_EXECUTION__MAX_CONCURRENCY?",
        "warning: AUTOMATOS_LLM__MODLE is not a setting and is ignored; "
        "did you mean AUTOMATOS_LLM__MODEL?",
    ]


# -- the model ------------------------------------------------------------------------------


def test_a_model_file_llama_cpp_cannot_load(tmp_path: Path) -> None:
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 64)
    env = {"AUTOMATOS_LLM__MODEL_PATH": str(bad), "AUTOMATOS_STORE__ENABLED": "false"}
    planned = automatos("run", "say hello", "--quiet", "--level", "organ", env=env)
    message = one_error(planned)  # the planner's call: the workflow stops there
    assert message.startswith(f"ConfigurationError: cannot load the model file {bad}: ")
    assert message.endswith("(setting llm.model_path)")
    # an Atom's one call is its subtask's: the subtask fails, saying why
    atom = automatos("run", "say hello", "--quiet", env=env)
    assert atom.returncode == FAILED, atom.stderr
    assert "Traceback" not in atom.stderr
    assert f"task failed: ConfigurationError: cannot load the model file {bad}" in atom.stderr


def test_no_model_configured_is_not_a_usage_error() -> None:
    # llama.cpp hidden, and nothing else set: the engine has no model to call.
    code = (
        "import importlib.util, sys\n"
        "real = importlib.util.find_spec\n"
        "importlib.util.find_spec = lambda n, *a: None if n == 'llama_cpp' else real(n, *a)\n"
        "sys.argv = ['automatos', 'run', 'compare two databases']\n"
        "from automatos.cli import main\n"
        "main()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=dict(os.environ)
    )
    assert done.returncode == NO_MODEL, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("error: ConfigurationError: No LLM is configured")
    unknown_option = automatos("run", "--no-such-option")
    assert unknown_option.returncode == USAGE
    assert "Traceback" not in unknown_option.stderr


# -- the request ----------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["!!!", "🙂🙂", "   ", ""])
def test_a_request_without_words(text: str) -> None:
    message = one_error(automatos("run", text))
    assert message.startswith("InvalidRequestError: the request")
    assert message.endswith("has no letters or digits: say what to do, in words")


def test_a_typed_request_obeys_the_length_limit() -> None:
    done = automatos("run", "x" * 11, env={"AUTOMATOS_PLAN__MAX_REQUEST_CHARS": "10"})
    assert one_error(done) == (
        "InvalidRequestError: the request is 11 characters long; the limit is 10 "
        "(setting plan.max_request_chars)"
    )


def test_empty_standard_input() -> None:
    assert one_error(automatos("run", "-", stdin="")).startswith(
        "InvalidRequestError: standard input is empty"
    )
    assert "standard input is empty" in one_error(automatos("run", "-", stdin=" \n\n"))


def test_standard_input_and_files_obey_the_length_limit(tmp_path: Path) -> None:
    limit = {"AUTOMATOS_PLAN__MAX_REQUEST_CHARS": "10"}
    assert one_error(automatos("run", "-", stdin="x" * 11, env=limit)) == (
        "InvalidRequestError: standard input is longer than the limit of 10 characters "
        "(setting plan.max_request_chars)"
    )
    request = tmp_path / "request.txt"
    request.write_text("x" * 11)
    assert one_error(automatos("run", "--file", str(request), env=limit)) == (
        f"InvalidRequestError: {request} is 11 characters long; the limit is 10 "
        "(setting plan.max_request_chars)"
    )
    request.write_text("\n")
    assert one_error(automatos("run", "--file", str(request))).endswith(
        "is empty: write the request in it"
    )
    large = tmp_path / "large.txt"
    large.write_text("x" * 41)
    assert one_error(automatos("run", "--file", str(large), env=limit)).endswith(
        "is 41 bytes; the limit is 40 "
        "(setting plan.max_request_chars: 10 characters, 4 bytes each at most)"
    )


def test_a_request_file_and_an_argument_is_a_usage_error(tmp_path: Path) -> None:
    request = tmp_path / "request.txt"
    request.write_text("compare")
    message = one_error(automatos("run", "x", "--file", str(request)), USAGE)
    assert message.endswith("got a request and --file")


# -- long requests, end to end ---------------------------------------------------------------

PLAN = {"subtasks": [{"id": "only", "description": "answer it"}]}


def respond(path: str, body: dict[str, Any]) -> Reply:
    system = body["messages"][0]["content"]
    if "planner of a workflow engine" in system:
        return openai_chat(json.dumps(PLAN))
    if "assign the best agent" in system:
        return openai_chat(json.dumps({"assignments": []}))
    return openai_chat("the answer")


@pytest.fixture
def model() -> Iterator[dict[str, str]]:
    with FakeLLMServer(respond) as server:
        yield {
            "AUTOMATOS_LLM__PROVIDER": "openai",
            "AUTOMATOS_LLM__BASE_URL": server.base_url,
            "AUTOMATOS_LLM__MODEL": "fake-model",
            "AUTOMATOS_STORE__ENABLED": "false",
            "AUTOMATOS_QUALITY__ENABLED": "false",
        }


LONG = "Compare these notes and say which option is cheaper.\n" + "A note line.\n" * 2000


def test_a_long_request_from_standard_input(model: dict[str, str]) -> None:
    done = automatos("run", "-", "--json", stdin=LONG, env=model)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["final_answer"] == "the answer"
    assert result["request"] == LONG


def test_a_long_request_from_a_file(model: dict[str, str], tmp_path: Path) -> None:
    request = tmp_path / "request.txt"
    request.write_text(LONG)
    done = automatos("run", "--file", str(request), "--json", env=model)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["request"] == LONG
