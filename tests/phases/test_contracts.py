"""Stage lists are checked when they are built: a stage without its input is refused."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from automatos import (
    ConfigurationError,
    Engine,
    Level,
    Phase,
    StageContractError,
    StageError,
    StageSelection,
    WorkflowRequest,
)
from automatos.phases.contracts import ANSWER, ASSIGNMENTS, PLAN, REQUEST, RESULTS, check_stages
from automatos.phases.evaluate.assess import AssessStage
from automatos.phases.execute.dispatch import ExecuteStage
from automatos.phases.execute.one_step import OneStepStage
from automatos.phases.learn.respond import RespondStage
from automatos.phases.plan.recipe import RecipeStage
from automatos.phases.plan.select import SelectStage
from automatos.phases.state import Runtime, WorkflowState
from automatos.settings import StoreSettings
from automatos.store.sql import SqlStore
from automatos.testing import ScriptedLLM
from tests.conftest import fast_settings


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlStore]:
    s = await SqlStore.open(StoreSettings(data_dir=tmp_path))
    yield s
    await s.aclose()


class Shout:
    """A caller's own stage: the answer in capitals."""

    name = "shout"
    phase = Phase.LEARN
    reads = frozenset({ANSWER})
    writes = frozenset({ANSWER})

    async def run(self, state: WorkflowState) -> None:
        state.learning.final_answer = (state.learning.final_answer or "").upper()


class Fixed:
    """A selector that runs the stages it is given."""

    def __init__(self, *stages: Any) -> None:
        self.stages = stages

    def select(self, request: WorkflowRequest, level: Level, runtime: Runtime) -> StageSelection:
        return StageSelection(self.stages, {"assess": "not wanted here"})


def test_a_stage_without_its_input_is_named_with_the_input() -> None:
    with pytest.raises(StageContractError) as caught:
        check_stages([RecipeStage(), ExecuteStage(), RespondStage()])
    message = str(caught.value)
    assert "'execute'" in message and "'assignments'" in message
    assert "recipe" in message  # the stages before it


def test_an_evaluation_before_execution_is_refused() -> None:
    with pytest.raises(StageContractError, match=r"'assess' reads .*'dimensions'.*'results'"):
        check_stages([OneStepStage(), AssessStage(), ExecuteStage(), RespondStage()])


def test_a_list_that_never_executes_cannot_give_a_result() -> None:
    with pytest.raises(StageContractError, match=f"never write '{RESULTS}'"):
        check_stages([RecipeStage(), SelectStage()])


def test_a_stage_without_a_contract_is_refused() -> None:
    class Bare:
        name = "bare"

        async def run(self, state: WorkflowState) -> None:
            return None

    with pytest.raises(StageContractError, match="'bare' declares no contract"):
        check_stages([Bare(), OneStepStage(), ExecuteStage()])  # type: ignore[list-item]


def test_two_stages_of_one_name_are_refused() -> None:
    with pytest.raises(StageContractError, match="two stages are named 'respond'"):
        check_stages([OneStepStage(), ExecuteStage(), RespondStage(), RespondStage()])


def test_the_engine_list_of_every_level_passes(store_free_engine: Engine) -> None:
    from automatos.phases.selector import PhaseSelector

    runtime = store_free_engine.runtime
    for level in Level:
        for request in (WorkflowRequest(text="x"), WorkflowRequest(text="x", subtasks=())):
            check_stages(list(PhaseSelector().select(request, level, runtime).stages))


@pytest.fixture
def store_free_engine() -> Engine:
    return Engine(fast_settings(), llm=ScriptedLLM(default="ok"))


async def test_a_caller_runs_its_own_stages(store: SqlStore) -> None:
    llm = ScriptedLLM(default="quiet answer")
    selector = Fixed(OneStepStage(), ExecuteStage(), RespondStage(), Shout())
    engine = Engine(fast_settings(), llm=llm, store=store, selector=selector)
    result = await engine.run("say something")
    assert result.final_answer == "QUIET ANSWER"
    assert result.stages == ("one_step", "execute", "respond", "shout")
    assert result.level is not None
    assert result.level.stages == result.stages
    assert result.level.skipped == {"assess": "not wanted here"}
    assert len(llm.calls) == 1


async def test_a_broken_stage_list_is_refused_before_anything_is_stored(store: SqlStore) -> None:
    llm = ScriptedLLM(default="x")
    engine = Engine(
        fast_settings(), llm=llm, store=store, selector=Fixed(RecipeStage(), RespondStage())
    )
    request = WorkflowRequest(text="r", subtasks=())
    with pytest.raises(StageContractError, match="'respond' reads"):
        await engine.run(request)
    assert llm.calls == []
    assert await store.list_runs() == []


class Raising:
    def select(self, request: WorkflowRequest, level: Level, runtime: Runtime) -> StageSelection:
        raise KeyError("oops")


class Junk:
    def select(self, request: WorkflowRequest, level: Level, runtime: Runtime) -> Any:
        return "execute"


@pytest.mark.parametrize(("selector", "words"), [(Raising(), "failed: KeyError"), (Junk(), "str")])
async def test_a_misbehaving_selector_is_a_configuration_error(selector: Any, words: str) -> None:
    engine = Engine(fast_settings(), llm=ScriptedLLM(default="x"), selector=selector)
    with pytest.raises(ConfigurationError, match=words):
        await engine.run("anything")


class Nameless:
    phase = Phase.LEARN
    reads = writes = frozenset({ANSWER})

    async def run(self, state: WorkflowState) -> None:
        return None


class SyncRun(Shout):
    name = "sync"

    def run(self, state: WorkflowState) -> None:  # type: ignore[override]
        return None


class Liar:
    """Declares a plan and writes none."""

    name = "liar"
    phase = Phase.PLAN
    reads = frozenset({REQUEST})
    writes = frozenset({PLAN, ASSIGNMENTS})

    async def run(self, state: WorkflowState) -> None:
        return None


class Buggy(Shout):
    name = "buggy"

    async def run(self, state: WorkflowState) -> None:
        raise ValueError("a bug")


@pytest.mark.parametrize(
    ("stage", "words"),
    [(Nameless(), "has no name"), (SyncRun(), "needs an `async def run")],
)
def test_a_stage_must_be_named_and_async(stage: Any, words: str) -> None:
    with pytest.raises(StageContractError, match=words):
        check_stages([OneStepStage(), ExecuteStage(), stage])


async def test_a_stage_that_does_not_write_what_it_declares_is_named() -> None:
    selector = Fixed(Liar(), ExecuteStage(), RespondStage())
    engine = Engine(fast_settings(), llm=ScriptedLLM(default="x"), selector=selector)
    with pytest.raises(StageError, match="stage 'liar' did not write what it declares"):
        await engine.run("anything")


async def test_a_plugin_stage_bug_is_a_typed_error_naming_it(store: SqlStore) -> None:
    selector = Fixed(OneStepStage(), ExecuteStage(), RespondStage(), Buggy())
    engine = Engine(fast_settings(), llm=ScriptedLLM(default="x"), store=store, selector=selector)
    with pytest.raises(StageError, match="stage 'buggy' failed: ValueError: a bug"):
        await engine.run("anything")
    (run,) = await store.list_runs()
    assert run.status == "failed"


class JunkReasons:
    def select(self, request: WorkflowRequest, level: Level, runtime: Runtime) -> StageSelection:
        stages = (OneStepStage(), ExecuteStage(), RespondStage())
        return StageSelection(stages, [("a", "b", "c")])  # type: ignore[arg-type]


class AsyncSelect:
    async def select(self, request: WorkflowRequest, level: Level, runtime: Runtime) -> Any:
        return []


@pytest.mark.parametrize(
    ("selector", "words"), [(JunkReasons(), "failed: ValueError"), (AsyncSelect(), "not be async")]
)
async def test_a_selector_s_odd_answer_is_a_configuration_error(selector: Any, words: str) -> None:
    engine = Engine(fast_settings(), llm=ScriptedLLM(default="x"), selector=selector)
    with pytest.raises(ConfigurationError, match=words):
        await engine.run("anything")
