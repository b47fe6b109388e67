"""The README's examples of agents working together run as it shows them (examples/team.py
and the ``automatos prompts`` commands, on a store of their own)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
AUTOMATOS = Path(sys.executable).parent / "automatos"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith("AUTOMATOS_")}
    return keep | {"AUTOMATOS_STORE__DATA_DIR": str(tmp_path), "COLUMNS": "200"}


def run(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def team(env: dict[str, str], *args: str) -> str:
    return run(env, sys.executable, "examples/team.py", *args)


def test_the_negotiated_plan(env: dict[str, str]) -> None:
    out = team(env, "negotiate")
    assert "round 1: split by researcher, analyst: applied" in out
    assert "rejected: it would break the plan: dependency cycle" in out
    assert "rejected: the planner rejected it" in out
    assert "  cutover (analyst) after: usage, schema" in out
    workflow = out.split("workflow ", 1)[1].split(":", 1)[0]
    shown = run(env, str(AUTOMATOS), "runs", "show", workflow[:8])
    assert "negotiation: 2 round(s), 3 proposal(s), 1 applied" in shown


def test_the_coordinated_workflow(env: dict[str, str]) -> None:
    out = team(env, "coordinate")
    assert '[F1 fact, from research by analyst] "the launch date moved to 14 March"' in out
    assert "[F3 fact, from plan by planner; contradicts F2]" in out
    assert "its answer: Join us on 14 March" in out


def test_an_ab_test_from_start_to_activation(env: dict[str, str]) -> None:
    automatos = str(AUTOMATOS)
    assert "no A/B test of the executor prompt is running" in team(env, "ab", "--runs", "3")
    run(env, automatos, "prompts", "add", "executor", "examples/executor-v2.txt")
    run(env, automatos, "prompts", "ab", "start", "executor", "--candidate", "2")
    out = team(env, "ab")
    assert "test 1: activated: the candidate is better" in out
    assert "executor     v2" in run(env, automatos, "prompts", "list")
    status = run(env, automatos, "prompts", "ab", "status", "executor", "--all")
    assert "activated" in status and "p = " in status
