"""The CLI fails closed where the review of issue 10 found it open: a store of a newer
automatos, names that look like rich markup, endless files and bugs are each one line (or
printed as they are), never a traceback or a hang."""

from __future__ import annotations

import io
import json
import os
import resource
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from automatos.domain.event import (
    StageStarted,
    SubtaskFinished,
    SubtaskRetried,
    SubtaskSkipped,
    SubtaskStarted,
    WorkflowFinished,
)
from automatos.progress import ProgressDisplay
from tests.support.fake_servers import FakeLLMServer, Reply, openai_chat
from tests.test_cli_perimeter import FAILED, automatos, one_error

MARKUP_RECIPE = """\
request: compare two databases
subtasks:
  - id: "[/bold]"
    description: do it
  - id: "[red]b"
    description: next
    depends_on: ["[/bold]"]
"""


def respond(path: str, body: dict[str, Any]) -> Reply:
    system = body["messages"][0]["content"]
    if "assign the best agent" in system:
        return openai_chat(json.dumps({"assignments": []}))
    return openai_chat("the answer", model=body["model"])


@pytest.fixture
def model(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A configured model (a fake server); the store in the test's own directory."""
    with FakeLLMServer(respond) as server:
        yield {
            "AUTOMATOS_LLM__PROVIDER": "openai",
            "AUTOMATOS_LLM__BASE_URL": server.base_url,
            "AUTOMATOS_LLM__MODEL": "fake-model",
            "AUTOMATOS_QUALITY__ENABLED": "false",
            "AUTOMATOS_STORE__DATA_DIR": str(tmp_path / "store"),
        }


# -- a store of a newer automatos -------------------------------------------------------------


def test_a_store_of_a_newer_automatos_is_one_line(model: dict[str, str], tmp_path: Path) -> None:
    assert automatos("runs", "list", env=model).returncode == 0  # made, at this version
    database = tmp_path / "store" / "automatos.db"
    with sqlite3.connect(database) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999_future'")
    conn.close()
    for args in (["runs", "list"], ["agents", "list"], ["run", "compare two databases"]):
        message = one_error(automatos(*args, env=model))
        assert message == (
            f"StoreError: the store at sqlite+aiosqlite:///{database} has a newer schema "
            "(migration '9999_future') than this version of automatos knows: upgrade "
            "automatos, or point store.url or store.data_dir at another store"
        ), args


# -- names that look like rich markup ---------------------------------------------------------


def test_graph_prints_ids_that_look_like_markup(tmp_path: Path) -> None:
    recipe = tmp_path / "markup.yaml"
    recipe.write_text(MARKUP_RECIPE)
    done = automatos("graph", str(recipe))
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("[/bold]") == 4  # its layer, the critical path, two rows
    assert done.stdout.count("[red]b") == 4


def test_run_prints_names_that_look_like_markup(model: dict[str, str], tmp_path: Path) -> None:
    recipe = tmp_path / "markup.yaml"
    recipe.write_text(MARKUP_RECIPE)
    env = {**model, "AUTOMATOS_LLM__MODEL": "[/bold]", "AUTOMATOS_STORE__ENABLED": "false"}
    done = automatos("run", "--recipe", str(recipe), env=env)
    assert done.returncode == 0, done.stderr
    assert "[/bold] unpriced" in done.stderr
    assert done.stdout.strip() == "the answer"


def test_the_progress_display_shows_markup_as_text() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=160)
    with ProgressDisplay(console) as display:
        display.on_event(StageStarted(1, "w", 0.0, stage="[/stage]"))
        display.on_event(SubtaskStarted(2, "w", 0.0, "[/bold]", agent="[/agent]", attempt=1))
        display.on_event(SubtaskRetried(3, "w", 0.0, "[/bold]", 1, "[/retry] failed", 0.1))
        display.on_event(SubtaskStarted(4, "w", 0.0, "[/bold]", agent="[/agent]", attempt=2))
        display.on_event(SubtaskFinished(5, "w", 0.0, "[/bold]", "failed", 1.0, "[/error]"))
        display.on_event(SubtaskSkipped(6, "w", 0.0, "[red]next", reason="[/reason]"))
        display.on_event(WorkflowFinished(7, "w", 0.0, status="failed", elapsed_s=1.0))
    shown = out.getvalue()
    for text in ("[/bold]", "[/agent]", "[/error]", "[red]next", "[/reason]"):
        assert text in shown


# -- files without an end ---------------------------------------------------------------------


def _capped_memory() -> None:
    # reading without a bound (as before) fails the test, not the machine
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))


def test_an_endless_file_is_refused() -> None:
    for args, limit in (
        (["graph", "/dev/zero"], 10_000_000),
        (["run", "--file", "/dev/zero"], 400_000),
    ):
        done = subprocess.run(
            [sys.executable, "-m", "automatos.cli", *args],
            capture_output=True,
            text=True,
            timeout=60,
            preexec_fn=_capped_memory,
        )
        message = one_error(done)
        assert message.startswith(
            f"InvalidRequestError: /dev/zero is more than {limit} bytes; the limit is {limit}"
        ), message


# -- bugs ---------------------------------------------------------------------------------------

PATCHED = """
import importlib, sys
import automatos.engine
import automatos.errors

async def broken_run(self, *args, **kwargs):
    raise RuntimeError("boom\\nand a second line")

def broken_print(plan):
    raise {raised}

automatos.engine.Engine.run = broken_run
# (the module: ``automatos.cli.graph`` is the command function the package imports)
importlib.import_module("automatos.cli.graph")._print_plan = broken_print
sys.argv = ["automatos", *sys.argv[1:]]
from automatos.cli import main
main()
"""


def _patched(
    *args: str, raised: str = "KeyError('x')", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    code = textwrap.dedent(PATCHED).replace("{raised}", raised)
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


HINT = "(please report it; run with AUTOMATOS_DEBUG=1 for the traceback)"
OFFLINE_MODEL = {
    "AUTOMATOS_LLM__PROVIDER": "openai",
    "AUTOMATOS_LLM__BASE_URL": "http://127.0.0.1:9/v1",
    "AUTOMATOS_STORE__ENABLED": "false",
}


def test_a_bug_in_a_run_is_one_line() -> None:
    done = _patched("run", "compare two databases", env=OFFLINE_MODEL)
    assert one_error(done, FAILED) == f"internal error: RuntimeError: boom {HINT}"


def test_a_bug_shows_its_traceback_with_automatos_debug() -> None:
    done = _patched("run", "compare two databases", env={**OFFLINE_MODEL, "AUTOMATOS_DEBUG": "1"})
    assert done.returncode == FAILED
    lines = done.stderr.splitlines()
    assert lines[0] == "Traceback (most recent call last):"
    assert "RuntimeError: boom" in lines
    assert lines[-1] == f"error: internal error: RuntimeError: boom {HINT}"
    assert "warning" not in done.stderr  # AUTOMATOS_DEBUG is not a misspelt setting


def test_a_bug_in_any_command_is_one_line(tmp_path: Path) -> None:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(MARKUP_RECIPE)
    assert one_error(_patched("graph", str(recipe))) == f"internal error: KeyError: 'x' {HINT}"
    # an engine error that a command did not expect is printed as every command prints one
    escaped = _patched("graph", str(recipe), raised="automatos.errors.PlanError('a cycle')")
    assert one_error(escaped) == "PlanError: a cycle"
