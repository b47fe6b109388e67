"""A quick command line: ``--help``, ``graph`` and ``eval`` import nothing they do not use."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("sqlalchemy", "alembic", "llama_cpp", "openai", "anthropic", "httpx")

# Runs the command in this process, then prints which top-level packages it imported.
PROBE = """
import json, sys
from automatos.cli import main
sys.argv = ["automatos", *sys.argv[1:]]
try:
    main()
except SystemExit as exit:
    code = exit.code
print(json.dumps({"code": code, "modules": sorted({m.split(".")[0] for m in sys.modules})}))
"""


def imported(*args: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=dict(os.environ),
        timeout=60,
    )
    report = json.loads(done.stdout.splitlines()[-1])
    assert report["code"] in (0, None), done.stderr
    return set(report["modules"])


def test_help_imports_no_database_model_runtime_or_sdk() -> None:
    modules = imported("--help")
    assert modules.isdisjoint(HEAVY), modules & set(HEAVY)
    # Nor the settings machinery, which --help does not need.
    assert "pydantic_settings" not in modules


@pytest.mark.parametrize(
    "command",
    ["run", "graph", "eval", "runs", "agents", "prompts", "kb", "memory", "keys", "serve", "mcp"],
)
def test_a_command_help_imports_no_database_model_runtime_or_sdk(command: str) -> None:
    assert imported(command, "--help").isdisjoint(HEAVY)


def test_graph_imports_no_database_model_runtime_or_sdk() -> None:
    modules = imported("graph", "examples/recipe.yaml")
    assert modules.isdisjoint(HEAVY), modules & set(HEAVY)


def test_eval_imports_no_database_model_runtime_or_sdk(tmp_path: Path) -> None:
    lines = tmp_path / "set.jsonl"
    lines.write_text(json.dumps({"task": "Say hi.", "output": "Hi there.", "label": 1}) + "\n")
    modules = imported("eval", str(lines))
    assert modules.isdisjoint(HEAVY), modules & set(HEAVY)
