"""Stage 3b: the registry's versions reach the stages that use them, at every level that has
such a stage, and a stored version this engine cannot fill is not used."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import update

from automatos import Engine, Level, PhaseSelector, StageSelection, WorkflowRequest
from automatos.phases.state import Runtime
from automatos.prompts.catalog import CATALOG
from automatos.settings import StoreSettings
from automatos.store.sql import SqlStore
from automatos.store.tables import prompt_versions
from automatos.testing import ScriptedLLM
from tests.conftest import fast_settings, planner

LENIENT = CATALOG["judge"].text + "\nBe lenient."
VERDICT = json.dumps(
    {d: {"score": 0.9, "reason": "ok"} for d in ("completeness", "accuracy", "coherence")}
)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlStore]:
    opened = await SqlStore.open(StoreSettings(data_dir=tmp_path))
    yield opened
    await opened.aclose()


def judged_cell() -> tuple[ScriptedLLM, WorkflowRequest]:
    llm = ScriptedLLM(rules=[], default=lambda m: VERDICT if "Step:" in m[-1].content else "42")
    return llm, WorkflowRequest(text="Research the history of the abacus.", level=Level.CELL)


async def test_an_activated_judge_is_used_at_the_cell_level(store: SqlStore) -> None:
    await store.add_prompt("judge", LENIENT)
    await store.activate_prompt("judge", 2)
    settings = fast_settings()
    settings.quality.judge = "always"
    llm, request = judged_cell()
    result = await Engine(settings, llm=llm, store=store).run(request)
    assert result.stages[0] == "prompt_variant"
    assert result.prompts["judge"].version == 2
    judged = [c for c in llm.calls if "Step:" in c.messages[-1].content]
    assert judged and judged[0].messages[0].content.endswith("Be lenient.")


async def test_an_atom_reads_no_registry(store: SqlStore) -> None:
    llm = ScriptedLLM(default="168")
    result = await Engine(fast_settings(), llm=llm, store=store).run(
        WorkflowRequest(text="What is 12 * 14?", level=Level.ATOM)
    )
    assert "prompt_variant" not in result.stages
    assert result.level is not None
    assert "no stage of this level uses a registry prompt" in result.level.skipped["prompt_variant"]
    assert result.prompts == {}


async def test_a_stored_version_this_engine_cannot_fill_is_replaced_by_the_built_in(
    store: SqlStore,
) -> None:
    await store.add_prompt("judge", LENIENT)
    await store.activate_prompt("judge", 2)
    async with store.engine.begin() as conn:  # as another version of automatos could write it
        await conn.execute(
            update(prompt_versions)
            .where(prompt_versions.c.slug == "judge", prompt_versions.c.version == 2)
            .values(text="Grade {answer_text}")
        )
    settings = fast_settings()
    settings.quality.judge = "always"
    llm, request = judged_cell()
    result = await Engine(settings, llm=llm, store=store).run(request)
    assert result.prompts["judge"].version == 0
    assert any("version 2 of 'judge' cannot be used" in w for w in result.warnings)
    judged = [c for c in llm.calls if "Step:" in c.messages[-1].content]
    assert judged[0].messages[0].content.startswith("You grade one answer")


class LateRegistry:
    """A plugin's stage list that reads the registry only just before execution."""

    def select(self, request: WorkflowRequest, level: Level, runtime: Runtime) -> StageSelection:
        chosen = PhaseSelector().select(request, level, runtime)
        stages = list(chosen.stages)
        late = stages.pop(0)
        stages.insert(next(i for i, s in enumerate(stages) if s.name == "execute"), late)
        return StageSelection(stages, chosen.skipped)


async def test_a_prompt_used_before_a_late_registry_read_keeps_its_version(
    store: SqlStore,
) -> None:
    llm = ScriptedLLM(rules=[planner({"id": "a", "description": "do it"})], default="done")
    settings = fast_settings()
    result = await Engine(settings, llm=llm, store=store, selector=LateRegistry()).run(
        "Describe the abacus."
    )
    assert result.prompts["decomposer"].version == 0  # what it used, still recorded
    assert any("ran after decomposer" in w for w in result.warnings)
