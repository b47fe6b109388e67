"""Each level runs exactly its stages; the level, its reasons and the stages are everywhere."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from automatos import (
    AgentSpec,
    ConfigurationError,
    Engine,
    Event,
    Level,
    LevelChosen,
    StageStarted,
    SubtaskSpec,
    WorkflowRequest,
    WorkflowStarted,
)
from automatos.llm.profile import ModelProfile
from automatos.phases.selector import NOT_BUILT
from automatos.settings import Settings, StoreSettings
from automatos.store.sql import SqlStore
from automatos.testing import Rule, ScriptedLLM
from tests.conftest import fast_settings, planner

SMALL = ModelProfile(plans_freely=False, chooses_agents=False, judges=False, classifies=False)


def classified() -> Settings:
    """Fast settings that let the engine find the level."""
    settings = fast_settings()
    settings.plan.level = None
    return settings


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlStore]:
    s = await SqlStore.open(StoreSettings(data_dir=tmp_path))
    yield s
    await s.aclose()


async def test_an_atom_is_one_model_call_and_its_answer_is_the_agents(store: SqlStore) -> None:
    llm = ScriptedLLM(default="168")
    events: list[Event] = []
    result = await Engine(classified(), llm=llm, store=store).run(
        "What is 12 * 14?", on_event=events.append
    )
    assert result.final_answer == "168"
    assert len(llm.calls) == 1 and [c.stage for c in result.llm_calls] == ["execute"]
    assert llm.calls[0].messages[-1].content == "What is 12 * 14?"  # no plan, no scaffolding
    assert llm.calls[0].json_schema is None
    assert result.stages == ("one_step", "context", "execute", "memory", "respond")
    assert result.quality is None
    # nothing to look up: the one step asks for no context (and the prompt stays bare)
    assert not result.context["task"].retrieved
    assert "requires_context: false" in result.context["task"].reason
    level = result.level
    assert level is not None and level.level is Level.ATOM and level.source == "features"
    assert level.reasons and level.stages == result.stages
    for stage in ("decompose", "select_agents", "aggregate", "assess", "learn"):
        assert stage in level.skipped
    tokens = result.totals.tokens_in + result.totals.tokens_out
    assert tokens < 3000
    # the events: the level right after the start, then stages naming their phase
    assert isinstance(events[0], WorkflowStarted) and isinstance(events[1], LevelChosen)
    assert events[1].level == "atom" and events[1].stages == list(result.stages)
    started = [(e.stage, e.phase) for e in events if isinstance(e, StageStarted)]
    assert started == [
        ("one_step", "execute"),
        ("context", "prepare"),
        ("execute", "execute"),
        ("memory", "learn"),
        ("respond", "learn"),
    ]
    # the store keeps the level and the phase of every stage
    run = await store.get_run(result.workflow_id)
    assert run is not None
    assert run.extra["level"]["level"] == "atom"
    assert run.extra["level"]["stages"] == list(result.stages)
    assert [s["phase"] for s in run.stages] == ["execute", "prepare", "execute", "learn", "learn"]


ALL_STAGES = (
    "prompt_variant",
    "decompose",
    "select_agents",
    "negotiate",
    "context",
    "coordinate",
    "execute",
    "aggregate",
    "assess",
    "learn",
    "memory",
    "respond",
)
"""Organ's and Organism's stages, with a store and a model that plans."""


@pytest.mark.parametrize(
    ("level", "stages"),
    [
        (Level.ATOM, ("one_step", "context", "execute", "memory", "respond")),
        (Level.MOLECULE, ("one_step", "context", "execute", "aggregate", "memory", "respond")),
        (
            Level.CELL,
            (
                "prompt_variant",
                "one_step",
                "context",
                "execute",
                "aggregate",
                "assess",
                "learn",
                "memory",
                "respond",
            ),
        ),
        (Level.ORGAN, ALL_STAGES),
        (Level.ORGANISM, ALL_STAGES),
    ],
)
async def test_each_level_runs_exactly_its_stages(
    store: SqlStore, level: Level, stages: tuple[str, ...]
) -> None:
    llm = ScriptedLLM(rules=[planner({"id": "only", "description": "do it"})], default="done")
    request = WorkflowRequest(text="What is 12 * 14?", level=level)
    result = await Engine(classified(), llm=llm, store=store).run(request)
    assert result.stages == stages
    assert result.level is not None and result.level.source == "caller"
    assert set(result.level.skipped).isdisjoint(stages)
    if level is Level.ORGANISM:
        assert "cross_workflow_learning" in result.level.skipped
    for stage, (lowest, what) in NOT_BUILT.items():  # absent, saying so where the level has it
        wanted = level.rank >= lowest.rank
        assert (result.level.skipped[stage] == f"not built yet: {what}") is wanted


async def test_quality_off_and_no_store_are_the_reasons_given() -> None:
    settings = classified()
    settings.quality.enabled = False
    request = WorkflowRequest(text="anything", level=Level.CELL)
    result = await Engine(settings, llm=ScriptedLLM(default="done")).run(request)
    assert result.stages == ("one_step", "execute", "respond")
    assert result.level is not None
    assert result.level.skipped["assess"] == "quality.enabled is off"
    assert result.level.skipped["learn"] == "no store to learn into"


async def test_a_recipe_skips_planning_at_every_level() -> None:
    request = WorkflowRequest(
        text="two things",
        subtasks=(
            SubtaskSpec(id="a", description="first"),
            SubtaskSpec(id="b", description="second"),
        ),
    )
    result = await Engine(classified(), llm=ScriptedLLM(default="done")).run(request)
    assert result.stages[:2] == ("recipe", "select_agents")
    assert result.level is not None
    assert result.level.skipped["decompose"] == "a recipe brings its own subtasks"
    assert "a recipe of 2 subtasks" in result.level.reasons


async def test_the_setting_sets_the_level_and_the_request_wins_over_it() -> None:
    settings = classified()
    settings.plan.level = Level.MOLECULE
    engine = Engine(settings, llm=ScriptedLLM(default="done"))
    by_setting = await engine.run("research everything about graphs")
    assert by_setting.level is not None and by_setting.level.level is Level.MOLECULE
    assert by_setting.level.source == "settings"
    by_request = await engine.run(WorkflowRequest(text="x y", level=Level.ATOM))
    assert by_request.level is not None and by_request.level.level is Level.ATOM


async def test_a_capable_model_may_classify_when_asked() -> None:
    settings = classified()
    settings.plan.level_classifier = "model"
    answer = json.dumps({"level": "cell", "reason": "needs care"})
    llm = ScriptedLLM(rules=[Rule("features suggest", answer)], default="done")
    result = await Engine(settings, llm=llm).run("What is 12 * 14?")
    assert result.level is not None
    assert (result.level.level, result.level.source) == (Level.CELL, "model")
    assert "the model: needs care" in result.level.reasons
    assert next(c.stage for c in result.llm_calls) == "classify"


async def test_a_small_model_is_not_asked_to_classify() -> None:
    settings = classified()
    settings.plan.level_classifier = "model"
    llm = ScriptedLLM(default="168", profile=SMALL)
    result = await Engine(settings, llm=llm).run("What is 12 * 14?")
    assert result.level is not None and result.level.source == "features"
    assert any("too small to classify" in r for r in result.level.reasons)
    assert len(llm.calls) == 1


async def test_a_failed_classification_falls_back_to_the_features() -> None:
    settings = classified()
    settings.plan.level_classifier = "model"
    llm = ScriptedLLM(rules=[Rule("features suggest", "not json at all")], default="168")
    result = await Engine(settings, llm=llm).run("What is 12 * 14?")
    assert result.level is not None and result.level.level is Level.ATOM
    assert any("classification failed" in r for r in result.level.reasons)


async def test_the_profile_comes_from_the_provider_and_the_settings_override_it() -> None:
    small = Engine(fast_settings(), llm=ScriptedLLM(default="x", profile=SMALL))
    assert not small.runtime.profile.plans_freely
    settings = fast_settings()
    settings.llm.profile.plans_freely = True
    settings.llm.profile.context_window = 1234
    overridden = Engine(settings, llm=ScriptedLLM(default="x", profile=SMALL)).runtime.profile
    assert overridden.plans_freely and not overridden.judges
    assert overridden.context_window == 1234
    assert Engine(fast_settings(), llm=ScriptedLLM(default="x")).runtime.profile.judges


async def test_the_classifier_keeps_to_the_deadline_and_the_budget() -> None:
    settings = classified()
    settings.plan.level_classifier = "model"
    settings.execution.workflow_timeout_s = 2.0
    slow = ScriptedLLM(
        rules=[Rule("features suggest", json.dumps({"level": "cell"}))],
        default="168",
        latency=lambda m: 5.0 if "features suggest" in m[-1].content else 0.0,
    )
    started = time.perf_counter()
    result = await Engine(settings, llm=slow).run("What is 12 * 14?")
    assert time.perf_counter() - started < 1.5  # a quarter of the time for sorting, at most
    assert result.final_answer == "168"
    assert result.level is not None and result.level.source == "features"
    assert any("deadline passed while the model classified" in r for r in result.level.reasons)
    settings = classified()
    settings.plan.level_classifier = "model"
    llm = ScriptedLLM(default="168")
    tight = WorkflowRequest(text="What is 6 * 7?", budget_tokens=60)
    result = await Engine(settings, llm=llm).run(tight)
    assert result.final_answer == "168"  # the budget went on the answer, not on sorting it
    assert [c.stage for c in result.llm_calls] == ["execute"]
    assert result.level is not None
    assert any("budget leaves no room" in r for r in result.level.reasons)


async def test_the_classifier_takes_a_capitalised_level() -> None:
    settings = classified()
    settings.plan.level_classifier = "model"
    answer = json.dumps({"level": " MOLECULE ", "reason": "some writing"})
    llm = ScriptedLLM(rules=[Rule("features suggest", answer)], default="done")
    result = await Engine(settings, llm=llm).run("What is 12 * 14?")
    assert result.level is not None and result.level.level is Level.MOLECULE
    assert [c.stage for c in result.llm_calls].count("classify") == 1


async def test_a_recipe_below_organ_asks_no_model_for_agents() -> None:
    agents = (
        AgentSpec(name="one", description="a", capabilities=("math",)),
        AgentSpec(name="two", description="b", capabilities=("writing",)),
    )
    request = WorkflowRequest(
        text="What is 12 * 14?",
        subtasks=(SubtaskSpec(id="only", description="What is 12 * 14?"),),
        agents=agents,
    )
    llm = ScriptedLLM(default="168")
    result = await Engine(classified(), llm=llm).run(request)
    assert result.level is not None and result.level.level is Level.ATOM
    assert [c.stage for c in result.llm_calls] == ["execute"]


def test_a_provider_profile_of_the_wrong_kind_is_refused() -> None:
    with pytest.raises(ConfigurationError, match=r"ScriptedLLM\.profile is"):
        Engine(fast_settings(), llm=ScriptedLLM(default="x", profile="small"))  # type: ignore[arg-type]


def test_text_without_spaces_is_measured_by_its_length() -> None:
    from automatos.phases.plan.level import by_features

    assert by_features("研究" * 400).level is not Level.ATOM
    assert by_features("x" * 100_000).level is Level.CELL


async def test_a_molecule_reports_its_dimension_scores() -> None:
    request = WorkflowRequest(text="Write a haiku about autumn.", level=Level.MOLECULE)
    llm = ScriptedLLM(default="Leaves drift on cold wind; the maple lets go of red; autumn dusk.")
    result = await Engine(classified(), llm=llm).run(request)
    assert "assess" not in result.stages
    assert result.quality is not None and result.quality.method == "aggregate"
    assert set(result.quality.subtasks) == {"task"}
