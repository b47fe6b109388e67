"""Recording workflows' outcomes in their A/B tests, on the SQL store, and ending the tests
the rule decides."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import cast

import pytest

from automatos import Engine, SubtaskSpec, WorkflowRequest
from automatos.domain.collaboration import PromptUse
from automatos.errors import PromptError
from automatos.prompts.base import AbOutcome, AbTest, PromptStore
from automatos.prompts.catalog import CATALOG
from automatos.prompts.record import record_run
from automatos.prompts.resolve import PromptSet
from automatos.settings import StoreSettings
from automatos.store.sql import SqlStore
from automatos.testing import ScriptedLLM
from tests.conftest import fast_settings

DEFAULTS = {slug: spec.text for slug, spec in CATALOG.items()}
SPREAD = [0.5, 0.6, 0.7, 0.8, 0.9]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlStore]:
    s = await SqlStore.open(StoreSettings(data_dir=tmp_path))
    yield s
    await s.aclose()


async def _start(
    store: SqlStore, slug: str = "arbiter", min_per_arm: int = 5, looks: int = 2
) -> AbTest:
    await store.prompt_state(DEFAULTS)
    candidate = await store.add_prompt(slug, CATALOG[slug].text + " Be brief.")
    return await store.start_ab(slug, candidate.version, 0.5, min_per_arm, looks)


async def _uses(store: SqlStore, workflow_id: str, *slugs: str) -> dict[str, PromptUse]:
    """What a workflow that renders ``slugs`` uses, as stage 3b would choose it."""
    prompts = PromptSet.from_state(await store.prompt_state(DEFAULTS), workflow_id)
    for slug in slugs:
        prompts.choice(slug)
    return prompts.uses()


async def _workflows(
    store: SqlStore,
    n: int,
    quality: Callable[[str, int], float | None],
    success: Callable[[str], bool] = lambda arm: True,
    slug: str = "arbiter",
) -> list[tuple[int, str]]:
    """Run ``n`` workflows' records through ``record_run``: (index, line) of each line.

    ``quality(arm, i)`` is the i-th Q of that arm."""
    counts = {"control": 0, "candidate": 0}
    lines = []
    for i in range(n):
        uses = await _uses(store, f"wf-{i}", slug)
        arm = uses[slug].arm or "control"  # no arm once the test has ended
        q = quality(arm, counts[arm])
        counts[arm] += 1
        for line in await record_run(
            store, f"wf-{i}", uses, quality=q, success=success(arm), tokens=200, latency_s=2.0
        ):
            lines.append((i, line))
    return lines


def test_the_sql_store_is_a_prompt_store(store: SqlStore) -> None:
    assert isinstance(store, PromptStore)


async def test_a_run_in_no_test_records_nothing(store: SqlStore) -> None:
    test = await _start(store, slug="selector")
    uses = await _uses(store, "wf-1", "arbiter", "decomposer")
    assert all(use.test_id is None for use in uses.values())
    lines = await record_run(
        store, "wf-1", uses, quality=0.8, success=True, tokens=10, latency_s=1.0
    )
    assert lines == []
    assert await store.ab_outcomes(test.id) == []


async def test_one_outcome_per_test_and_workflow(store: SqlStore) -> None:
    judge = await _start(store, slug="selector")
    synthesiser = await _start(store, slug="arbiter")
    uses = await _uses(store, "wf-1", "selector", "arbiter", "decomposer")
    for _ in range(2):  # a retried recording keeps the first
        await record_run(store, "wf-1", uses, quality=0.75, success=True, tokens=42, latency_s=3.5)
    for test in (judge, synthesiser):
        (outcome,) = await store.ab_outcomes(test.id)
        arm = uses[test.slug].arm
        assert outcome == AbOutcome(
            test_id=test.id, workflow_id="wf-1", arm=arm, quality=0.75, success=True,
            tokens=42, latency_s=3.5,
        )  # fmt: skip


def _first_look(store_runs: list[str], per_arm: int) -> int:
    """The index of the run at which both arms have ``per_arm`` runs."""
    counts = {"control": 0, "candidate": 0}
    for i, arm in enumerate(store_runs):
        counts[arm] += 1
        if min(counts.values()) == per_arm:
            return i
    raise AssertionError("the look is never reached")


async def _arms(store: SqlStore, n: int) -> list[str]:
    return [(await _uses(store, f"wf-{i}", "arbiter"))["arbiter"].arm or "" for i in
            range(n)]  # fmt: skip


async def test_a_better_candidate_is_activated_when_the_first_look_shows_it(
    store: SqlStore,
) -> None:
    test = await _start(store, min_per_arm=5, looks=2)
    arms = await _arms(store, 60)

    def quality(arm: str, i: int) -> float:
        return 0.95 if arm == "candidate" else SPREAD[i % len(SPREAD)]

    lines = await _workflows(store, 60, quality)
    (index, line), *rest = lines
    assert rest == []  # concluded once; later runs are outside the test
    assert index == _first_look(arms, 5)
    assert line.startswith(f"A/B test {test.id} of prompt 'arbiter' (version 2 against 1) "
                           "activated: the candidate is better at look 1 of 2")  # fmt: skip
    (ended,) = await store.ab_tests("arbiter")
    assert ended.status == "activated"
    assert line.endswith(ended.decision)
    assert (await store.prompt_state(DEFAULTS)).active["arbiter"].version == 2


async def test_a_candidate_that_breaks_runs_is_rejected(store: SqlStore) -> None:
    await _start(store, min_per_arm=5, looks=2)
    lines = await _workflows(
        store,
        60,
        lambda arm, i: None if arm == "candidate" else SPREAD[i % len(SPREAD)],
        success=lambda arm: arm == "control",
    )
    assert len(lines) == 1
    assert "rejected: the candidate is worse" in lines[0][1]
    (ended,) = await store.ab_tests("arbiter")
    assert ended.status == "rejected"
    assert (await store.prompt_state(DEFAULTS)).active["arbiter"].version == 1


async def test_no_difference_ends_inconclusive_at_the_last_look(store: SqlStore) -> None:
    await _start(store, min_per_arm=5, looks=2)
    arms = await _arms(store, 80)
    lines = await _workflows(store, 80, lambda arm, i: SPREAD[i % len(SPREAD)])
    ((index, line),) = lines
    assert index == _first_look(arms, 10)
    assert "inconclusive: no difference shown by the last look" in line
    (ended,) = await store.ab_tests("arbiter")
    assert ended.status == "inconclusive"
    assert (await store.prompt_state(DEFAULTS)).active["arbiter"].version == 1


async def test_a_run_that_ends_after_its_test_is_recorded_without_a_verdict(
    store: SqlStore,
) -> None:
    test = await _start(store)
    uses = await _uses(store, "wf-late", "arbiter")  # chosen while the test ran
    await store.end_ab(test.id, "stopped", "stopped by hand")
    lines = await record_run(
        store, "wf-late", uses, quality=0.1, success=True, tokens=1, latency_s=1.0
    )
    assert lines == []
    assert [o.workflow_id for o in await store.ab_outcomes(test.id)] == ["wf-late"]


class _EndedMeanwhile:
    """The store, where another process ends the test just before this one can."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store
        self.ended: list[int] = []

    def __getattr__(self, name: str) -> object:
        return getattr(self.store, name)

    async def end_ab(self, test_id: int, *args: object, **kwargs: object) -> AbTest:
        await self.store.end_ab(test_id, "stopped", "stopped by another process")
        self.ended.append(test_id)
        return await self.store.end_ab(test_id, *args, **kwargs)  # type: ignore[arg-type]


async def test_a_test_another_process_ended_first_is_left_as_it_ended(store: SqlStore) -> None:
    test = await _start(store, min_per_arm=2, looks=1)
    racing = _EndedMeanwhile(store)
    racing_store = cast(PromptStore, racing)
    lines: list[str] = []
    for i in range(40):
        uses = await _uses(store, f"wf-{i}", "arbiter")
        if uses["arbiter"].arm is None:
            break
        q = 0.9 if uses["arbiter"].arm == "candidate" else 0.3 + 0.01 * i
        lines += await record_run(
            racing_store, f"wf-{i}", uses, quality=q, success=True, tokens=1, latency_s=1.0
        )
    assert racing.ended == [test.id]  # the rule decided, and found the test ended
    assert lines == []
    (ended,) = await store.ab_tests("arbiter")
    assert (ended.status, ended.decision) == ("stopped", "stopped by another process")
    with pytest.raises(PromptError, match="already ended"):
        await store.end_ab(test.id, "rejected", "again")


class HalfBroken:
    """A custom scorer that fails on one step: that step is scored by the heuristics."""

    async def score(self, request: str, subtask: object, output: str) -> float:
        if getattr(subtask, "id", "") == "a":
            raise RuntimeError("no score for you")
        return 0.9


async def test_a_run_scored_partly_by_the_heuristics_is_no_q_for_the_test(store: SqlStore) -> None:
    await store.add_prompt("executor", CATALOG["executor"].text + "\nBe brief.")
    test = await store.start_ab("executor", 2, 0.5, 30, 4)
    request = WorkflowRequest(
        text="two steps",
        subtasks=(
            SubtaskSpec(id="a", description="first"),
            SubtaskSpec(id="b", description="second", depends_on=("a",)),
        ),
    )
    result = await Engine(
        fast_settings(), llm=ScriptedLLM(default="done"), store=store, scorer=HalfBroken()
    ).run(request)
    assert result.quality is not None and result.quality.fallbacks == 1
    [outcome] = await store.ab_outcomes(test.id)
    assert outcome.workflow_id == result.workflow_id
    assert outcome.quality is None and outcome.success
