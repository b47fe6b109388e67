"""What a new user met on a fresh clone: a closed pipe, a judge that failed unseen, OpenAI
without a key, errors on two lines, an ambiguous run prefix, commands that opened a disabled
store. Each is a real process (or typer's runner), one line, the right code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from automatos.cli import app
from tests.support.fake_servers import FakeLLMServer, openai_chat
from tests.test_cli_perimeter import FAILED, NO_MODEL, RECIPE, ROOT, automatos, one_error

LEGACY = ROOT / "tests" / "data" / "legacy" / "seed_runs.json"
BROKEN_PIPE = 141


def buffered() -> dict[str, str]:
    """The test's environment with standard output block-buffered, as a user's is when it is
    a pipe (without PYTHONUNBUFFERED, which hides what is left in the buffer at exit)."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}


runner = CliRunner()


# -- a closed standard output ---------------------------------------------------------------


def into_closed_pipe(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the command with its standard output a pipe whose reader has already gone (as
    ``| head -1`` once head has its line): every write to it fails with EPIPE."""
    read, write = os.pipe()
    os.close(read)
    try:
        return subprocess.run(
            [sys.executable, "-m", "automatos.cli", *args],
            stdout=write,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            cwd=ROOT,
            timeout=120,
            env={**buffered(), "COLUMNS": "200"},
        )
    finally:
        os.close(write)


@pytest.mark.parametrize(
    "args",
    [
        ("agents", "list"),
        ("runs", "list"),
        ("version",),
        ("--help",),  # printed by typer through rich, which exits on its own
        ("runs", "list", "--help"),
        ("graph", str(RECIPE)),  # a rich table
        ("graph", str(RECIPE), "--json"),
    ],
)
def test_a_closed_stdout_ends_the_command_silently(args: tuple[str, ...]) -> None:
    done = into_closed_pipe(*args)
    assert done.stderr == ""  # no "internal error", no "Exception ignored ... BrokenPipeError"
    assert done.returncode == BROKEN_PIPE


UNFLUSHED = """\
import sys

import typer

from automatos.cli.output import GuardedGroup

app = typer.Typer(cls=GuardedGroup)


@app.command()
def half() -> None:
    sys.stdout.write("left in the buffer, flushed when the interpreter exits\\n")
    raise BrokenPipeError(32, "Broken pipe")


@app.command()
def other() -> None:
    pass


app()
"""


def test_what_is_left_in_the_buffer_is_not_flushed_into_the_closed_pipe(tmp_path: Path) -> None:
    script = tmp_path / "half.py"
    script.write_text(UNFLUSHED)
    read, write = os.pipe()
    os.close(read)
    try:
        done = subprocess.run(
            [sys.executable, str(script), "half"],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            timeout=60,
            env=buffered(),
        )
    finally:
        os.close(write)
    assert done.stderr == ""  # not "Exception ignored ... BrokenPipeError" at shutdown
    assert done.returncode == BROKEN_PIPE


def test_a_reader_that_stops_after_one_line(tmp_path: Path) -> None:
    records = [{"id": f"run-{i:04d}", "input_data": {"request": "x" * 60}} for i in range(3000)]
    (tmp_path / "many.json").write_text(json.dumps(records))
    assert automatos("runs", "import-legacy", str(tmp_path / "many.json")).returncode == 0
    command = [sys.executable, "-m", "automatos.cli", "runs", "list", "--limit", "3000"]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, text=True, env=buffered()
    ) as listing:
        assert listing.stdout is not None and listing.stderr is not None
        assert listing.stdout.readline().startswith("run-")
        listing.stdout.close()  # what head does once it has its line
        errors = listing.stderr.read()
        code = listing.wait(timeout=120)
    assert errors == ""
    assert code == BROKEN_PIPE


# -- the judge --------------------------------------------------------------------------------


VERDICT = {
    "completeness": {"score": 0.9, "reason": "all there"},
    "accuracy": {"score": 0.8, "reason": "right"},
    "coherence": {"score": 0.9, "reason": "reads well"},
}


def judge(reply: str) -> Iterator[dict[str, str]]:
    with FakeLLMServer(lambda path, body: openai_chat(reply)) as server:
        yield {
            "AUTOMATOS_LLM__PROVIDER": "openai",
            "AUTOMATOS_LLM__BASE_URL": server.base_url,
            "AUTOMATOS_LLM__MODEL": "fake-model",
        }


@pytest.fixture
def broken_judge() -> Iterator[dict[str, str]]:
    """A judge that never answers with JSON."""
    yield from judge("I would rather not say")


@pytest.fixture
def sound_judge() -> Iterator[dict[str, str]]:
    yield from judge(json.dumps(VERDICT))


@pytest.fixture
def answers(tmp_path: Path) -> Path:
    path = tmp_path / "ans.jsonl"
    lines = [
        {"task": "name a colour", "output": "Blue is a colour.", "label": 1},
        {"task": "name a fruit", "output": "Dunno.", "label": 0},
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def test_a_judge_that_fails_on_every_line_is_reported(
    broken_judge: dict[str, str], answers: Path
) -> None:
    done = automatos("eval", str(answers), "--judge", env=broken_judge)
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 2  # the heuristic scores, still given
    warnings = [line for line in done.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 1, done.stderr
    assert warnings[0].startswith(
        "warning: the judge failed on 2 of 2 lines; heuristic scores used "
        "(last: StructuredOutputError: "
    )


def test_a_judge_that_answers_gives_no_warning(sound_judge: dict[str, str], answers: Path) -> None:
    done = automatos("eval", str(answers), "--judge", env=sound_judge)
    assert done.returncode == 0, done.stderr
    assert "warning" not in done.stderr
    first, second = done.stdout.splitlines()
    assert first == second  # the judge's verdict for both, though heuristics tell them apart


# -- OpenAI without a key ---------------------------------------------------------------------


def test_openai_without_a_key_is_no_model_at_once() -> None:
    env = {
        "AUTOMATOS_LLM__PROVIDER": "openai",
        # Should the old behaviour come back, it fails fast rather than hanging the suite.
        "AUTOMATOS_LLM__TIMEOUT_S": "2",
        "AUTOMATOS_LLM__MAX_RETRIES": "0",
    }
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    done = subprocess.run(
        [sys.executable, "-m", "automatos.cli", "run", "hi there", "--quiet"],
        env={**clean, **env},
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    message = one_error(done, NO_MODEL)
    assert message.startswith("ConfigurationError: ")
    assert "AUTOMATOS_LLM__API_KEY" in message


# -- one-line errors --------------------------------------------------------------------------


def test_a_line_of_an_eval_file_without_output(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"task": "a", "output": "b"}\n\n{"task": "c"}\n')
    message = one_error(automatos("eval", str(path)))
    assert message == f"InvalidRequestError: {path}:3: output: Field required"


@pytest.mark.parametrize(
    ("team", "problem"),
    [
        (
            "  - name: critic\n  - description: reviews\n    capabilities: [review]\n",
            "agent 2 is not valid: name: Field required",
        ),
        (
            "  - name: critic\n    temperature: 5\n    max_tokens: 0\n",
            "agent 1 ('critic') is not valid: temperature: Input should be less than or equal "
            "to 2; max_tokens: Input should be greater than 0",
        ),
    ],
)
def test_an_agent_of_the_wrong_shape(tmp_path: Path, team: str, problem: str) -> None:
    path = tmp_path / "team.yaml"
    path.write_text(f"agents:\n{team}")
    message = one_error(automatos("agents", "import", str(path)))
    assert message == f"InvalidRequestError: {path}: {problem}"


def test_a_legacy_record_without_input_data(tmp_path: Path) -> None:
    path = tmp_path / "seed.json"
    path.write_text(json.dumps([{"id": "x", "input_data": {}}, {"id": "y", "status": 3}]))
    message = one_error(automatos("runs", "import-legacy", str(path)))
    assert message == (
        f"InvalidRequestError: {path}: record 2 is not a legacy execution: "
        "status: Input should be a valid string; input_data: Field required"
    )


def test_a_bare_plan_of_the_wrong_shape(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    path.write_text(json.dumps({"subtasks": [{"id": "a"}, {"description": "b"}]}))
    message = one_error(automatos("graph", str(path)))
    assert message == (
        f"PlanParseError: {path}: the plan is not valid: subtasks.0.description: Field "
        "required; subtasks.1.id: Field required"
    )


# -- a run by a prefix of its id --------------------------------------------------------------


def import_runs(tmp_path: Path, ids: list[str]) -> None:
    path = tmp_path / "seed.json"
    path.write_text(json.dumps([{"id": i, "input_data": {"request": f"r {i}"}} for i in ids]))
    result = runner.invoke(app, ["runs", "import-legacy", str(path)])
    assert result.exit_code == 0, result.output


def test_an_ambiguous_prefix_names_the_runs(tmp_path: Path) -> None:
    import_runs(tmp_path, ["cab-1", "cab-2", "dog-1"])
    result = runner.invoke(app, ["runs", "show", "cab"])
    assert result.exit_code == FAILED
    (line,) = result.stderr.splitlines()
    start, end = "error: 'cab' is the start of 2 run ids: ", "; give more of the id"
    assert line.startswith(start) and line.endswith(end)
    assert sorted(line.removeprefix(start).removesuffix(end).split(", ")) == ["cab-1", "cab-2"]
    shown = runner.invoke(app, ["runs", "show", "dog"])
    assert shown.exit_code == 0, shown.output
    assert "dog-1" in shown.stdout


def test_an_ambiguous_prefix_names_five_runs_at_most(tmp_path: Path) -> None:
    import_runs(tmp_path, [f"run-{i}" for i in range(8)])
    result = runner.invoke(app, ["runs", "show", "run-"])
    assert result.exit_code == FAILED
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: 'run-' is the start of 8 run ids: ")
    assert line.endswith(" and 3 more; give more of the id")
    assert line.count("run-") == 1 + 5


def test_no_run_of_a_prefix(tmp_path: Path) -> None:
    import_runs(tmp_path, ["cab-1"])
    result = runner.invoke(app, ["runs", "show", "zebra"])
    assert result.exit_code == FAILED
    assert result.stderr.splitlines() == [
        "error: no stored run has an id starting with 'zebra' (automatos runs list)"
    ]


# -- a disabled store -------------------------------------------------------------------------


STORE_COMMANDS = [
    ("runs", "list"),
    ("runs", "show", "abc"),
    ("runs", "import-legacy", str(LEGACY)),
    ("agents", "list"),
    ("agents", "show", "writer"),
    ("agents", "add", "critic", "--description", "reviews"),
    ("agents", "import", str(ROOT / "src" / "automatos" / "data" / "agents.yaml")),
]


@pytest.mark.parametrize("args", STORE_COMMANDS)
def test_a_disabled_store_is_not_opened(
    args: tuple[str, ...], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("AUTOMATOS_STORE__DATA_DIR")  # the default: ~/.automatos
    monkeypatch.setenv("AUTOMATOS_STORE__ENABLED", "false")
    result = runner.invoke(app, list(args))
    assert result.exit_code == FAILED
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: the store is disabled")
    assert "AUTOMATOS_STORE__ENABLED" in line and "store.enabled" in line
    assert result.stdout == ""
    assert list(home.iterdir()) == []  # no ~/.automatos, no automatos.db
