"""Shared fixtures: settings tuned for fast tests, scripted models, engines."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from automatos import Engine, Settings
from automatos.domain.level import Level
from automatos.llm.base import Message
from automatos.settings import ExecutionSettings, LLMSettings, PlanLimits, StoreSettings
from automatos.testing import Rule, ScriptedLLM


@pytest.fixture(autouse=True)
def _no_automatos_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tests never see the developer's own AUTOMATOS_* settings, nor write to their home."""
    for key in list(os.environ):
        if key.startswith("AUTOMATOS_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("AUTOMATOS_STORE__DATA_DIR", str(tmp_path / "automatos-data"))


def fast_settings(**execution: Any) -> Settings:
    """Settings with short backoffs, so that retries do not slow the suite."""
    return Settings(
        llm=LLMSettings(timeout_s=5, max_retries=2, backoff_base_s=0.001, backoff_max_s=0.01),
        execution=ExecutionSettings(**{"retry_backoff_s": 0.001, **execution}),
        store=StoreSettings(enabled=False),
        # These tests are about planning, selection and the rest of the whole pipeline:
        # they run at the level that has them all, whatever their short requests look like.
        plan=PlanLimits(level=Level.ORGAN),
    )


def plan_json(*subtasks: dict[str, Any]) -> str:
    """A decomposer answer."""
    return json.dumps({"subtasks": list(subtasks)})


def step_of(messages: Sequence[Message]) -> str:
    """The subtask id of an execution prompt ('' for other prompts)."""
    text = messages[-1].content
    mark = "Your step ("
    start = text.find(mark)
    if start < 0:
        return ""
    start += len(mark)
    return text[start : text.index(")", start)]


def planner(*subtasks: dict[str, Any]) -> Rule:
    """A rule answering the decomposition prompt with this plan."""
    return Rule(r"^Request:", plan_json(*subtasks))


@pytest.fixture
def settings() -> Settings:
    return fast_settings()


@pytest.fixture
def diamond_llm() -> ScriptedLLM:
    """Plans a diamond a -> (b, c) -> d and answers each step with 'out:<id>'."""
    return ScriptedLLM(
        rules=[
            planner(
                {"id": "a", "description": "gather facts"},
                {"id": "b", "description": "analyse one side", "depends_on": ["a"]},
                {"id": "c", "description": "analyse other side", "depends_on": ["a"]},
                {"id": "d", "description": "write it up", "depends_on": ["b", "c"]},
            )
        ],
        default=lambda messages: f"out:{step_of(messages)}",
    )


@pytest.fixture
def engine(settings: Settings, diamond_llm: ScriptedLLM) -> Iterator[Engine]:
    return Engine(settings, llm=diamond_llm)
