"""The prompt registry's contract (versions, activation, A/B tests, outcomes) on every store."""

from __future__ import annotations

import asyncio
import json
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, insert, text
from sqlalchemy.exc import IntegrityError

import automatos.store
from automatos.errors import PromptError, StoreError
from automatos.prompts.base import AbOutcome, PromptStore
from automatos.prompts.catalog import CATALOG
from automatos.store.database import create_engine, database_url
from automatos.store.prompt_records import MAX_TEMPLATE_CHARS
from automatos.store.sql import SqlStore
from automatos.store.tables import ab_tests
from tests.store.conftest import StoreTarget

DEFAULTS = {slug: spec.text for slug, spec in CATALOG.items()}
STRICT_JUDGE = CATALOG["arbiter"].text + "\nBe strict."


def outcome(test_id: int, workflow_id: str, arm: str = "control", q: float = 0.8) -> AbOutcome:
    return AbOutcome.model_validate(
        {
            "test_id": test_id,
            "workflow_id": workflow_id,
            "arm": arm,
            "quality": q,
            "success": True,
            "tokens": 100,
            "latency_s": 1.5,
        }
    )


async def test_the_store_is_a_prompt_store(store: SqlStore) -> None:
    assert isinstance(store, PromptStore)


async def test_the_first_read_seeds_each_slug_once_as_version_1(store: SqlStore) -> None:
    state = await store.prompt_state(DEFAULTS)
    assert set(state.active) == set(CATALOG)
    judge = state.active["arbiter"]
    assert (judge.version, judge.text, judge.note, judge.active) == (
        1,
        DEFAULTS["arbiter"],
        "built-in",
        True,
    )
    assert judge.created_at.tzinfo is not None
    assert state.tests == [] and state.candidates == {}
    # Read again, even with other texts: what is stored stays, nothing is added.
    again = await store.prompt_state(dict.fromkeys(DEFAULTS, "changed"))
    assert again.active == state.active
    assert [v.version for v in await store.prompt_versions("arbiter")] == [1]


async def test_only_the_slugs_asked_for_are_returned_and_seeded(store: SqlStore) -> None:
    state = await store.prompt_state({"arbiter": DEFAULTS["arbiter"]})
    assert list(state.active) == ["arbiter"]
    assert await store.prompt_versions("selector") == []
    state = await store.prompt_state(DEFAULTS)
    assert set(state.active) == set(CATALOG)


async def test_workflows_starting_at_once_seed_once(store_target: StoreTarget) -> None:
    first, second = await store_target.open(), await store_target.open()
    try:
        states = await asyncio.gather(
            *(s.prompt_state(DEFAULTS) for _ in range(6) for s in (first, second))
        )
        assert all(state.active == states[0].active for state in states)
        for slug in CATALOG:
            assert [v.version for v in await first.prompt_versions(slug)] == [1]
    finally:
        await first.aclose()
        await second.aclose()


async def test_versions_are_numbered_and_only_activation_changes_the_active_one(
    store: SqlStore,
) -> None:
    await store.prompt_state(DEFAULTS)
    added = await store.add_prompt("arbiter", STRICT_JUDGE, note="stricter")
    assert (added.slug, added.version, added.note, added.active) == (
        "arbiter",
        2,
        "stricter",
        False,
    )
    third = await store.add_prompt("arbiter", STRICT_JUDGE + " Very.")
    assert third.version == 3
    assert (await store.prompt_state(DEFAULTS)).active["arbiter"].version == 1
    await store.activate_prompt("arbiter", 3)
    state = await store.prompt_state(DEFAULTS)
    assert (state.active["arbiter"].version, state.active["arbiter"].text) == (3, third.text)
    versions = await store.prompt_versions("arbiter")
    assert [(v.version, v.active) for v in versions] == [(1, False), (2, False), (3, True)]
    assert versions[1].text == STRICT_JUDGE and versions[1].note == "stricter"
    await store.activate_prompt("arbiter", 1)
    assert (await store.prompt_state(DEFAULTS)).active["arbiter"].version == 1


async def test_adding_to_a_slug_never_read_seeds_the_built_in_text_first(store: SqlStore) -> None:
    added = await store.add_prompt("synthesiser", "Combine the steps' results into one answer.")
    assert added.version == 2
    versions = await store.prompt_versions("synthesiser")
    assert [(v.version, v.text, v.active) for v in versions] == [
        (1, CATALOG["synthesiser"].text, True),
        (2, added.text, False),
    ]


async def test_bad_templates_slugs_and_versions_are_refused(store: SqlStore) -> None:
    with pytest.raises(PromptError, match=r"'arbiter' uses the placeholder \{request\}"):
        await store.add_prompt("arbiter", "Grade {request}")
    with pytest.raises(PromptError, match="unknown prompt slug 'jduge'; the slugs are decomposer"):
        await store.add_prompt("jduge", "Grade it")
    with pytest.raises(PromptError, match="100,000"):
        await store.add_prompt("arbiter", "x" * (MAX_TEMPLATE_CHARS + 1))
    with pytest.raises(PromptError, match="note"):
        await store.add_prompt("arbiter", "Grade it", note="n" * 5000)
    for call in (
        store.prompt_versions("nope"),
        store.activate_prompt("nope", 1),
        store.start_ab("nope", 2, 0.2, 30, 4),
        store.ab_tests("nope"),
    ):
        with pytest.raises(PromptError, match="unknown prompt slug 'nope'"):
            await call
    with pytest.raises(PromptError, match="'arbiter' has no version 2; its versions are 1 to 1"):
        await store.activate_prompt("arbiter", 2)
    with pytest.raises(PromptError, match="no version 0"):
        await store.activate_prompt("arbiter", 0)
    assert await store.prompt_versions("arbiter") == []  # a refused change leaves nothing


async def test_adds_at_once_take_distinct_versions(store_target: StoreTarget) -> None:
    first, second = await store_target.open(), await store_target.open()
    try:
        texts = [f"{STRICT_JUDGE} ({i})" for i in range(10)]
        added = await asyncio.gather(
            *(s.add_prompt("arbiter", t) for s, t in zip([first, second] * 5, texts, strict=True))
        )
        assert sorted(v.version for v in added) == list(range(2, 12))
        stored = {v.version: v.text for v in await first.prompt_versions("arbiter")}
        assert stored[1] == CATALOG["arbiter"].text
        assert {v.version: v.text for v in added} == {k: t for k, t in stored.items() if k > 1}
    finally:
        await first.aclose()
        await second.aclose()


CHILD = textwrap.dedent(
    """
    import asyncio, json, sys
    from automatos.prompts.catalog import CATALOG
    from automatos.settings import StoreSettings
    from automatos.store.sql import SqlStore

    async def main():
        target = json.loads(sys.argv[1])
        settings = StoreSettings.model_validate(target["settings"])
        store = await SqlStore.open(settings, **target["options"])
        print("ready", flush=True)
        sys.stdin.readline()
        await store.prompt_state({s: spec.text for s, spec in CATALOG.items()})
        for i in range(int(sys.argv[2])):
            await store.add_prompt("arbiter", f"{CATALOG['arbiter'].text} {sys.argv[3]}-{i}")
        await store.aclose()

    asyncio.run(main())
    """
)


async def test_two_processes_seeding_and_adding_at_once(store_target: StoreTarget) -> None:
    adds = 10
    store = await store_target.open()  # migrated before the children open it; not seeded
    try:
        children = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                CHILD,
                json.dumps(store_target.as_json()),
                str(adds),
                name,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            for name in ("a", "b")
        ]
        for child in children:  # both connected before either seeds
            assert child.stdout is not None
            assert await asyncio.wait_for(child.stdout.readline(), 30) == b"ready\n"
        ends = await asyncio.wait_for(
            asyncio.gather(*(child.communicate(b"go\n") for child in children)), 120
        )
        for child, (_, err) in zip(children, ends, strict=True):
            assert child.returncode == 0, err.decode()
        versions = await store.prompt_versions("arbiter")
        assert [v.version for v in versions] == list(range(1, 2 * adds + 2))
        assert versions[0].text == CATALOG["arbiter"].text
        suffixes = sorted(v.text.rsplit(" ", 1)[1] for v in versions[1:])
        assert suffixes == sorted(f"{n}-{i}" for n in "ab" for i in range(adds))
        assert [v.version for v in await store.prompt_versions("selector")] == [1]
    finally:
        await store.aclose()


async def test_a_test_compares_a_candidate_with_the_active_version(store: SqlStore) -> None:
    await store.add_prompt("arbiter", STRICT_JUDGE)
    await store.add_prompt("arbiter", STRICT_JUDGE + " Very.")
    await store.activate_prompt("arbiter", 2)
    test = await store.start_ab("arbiter", 3, 0.25, 30, 4)
    assert (test.slug, test.control_version, test.candidate_version) == ("arbiter", 2, 3)
    assert (test.share, test.min_per_arm, test.looks, test.status) == (0.25, 30, 4, "running")
    assert test.ended_at is None and test.started_at.tzinfo is not None
    state = await store.prompt_state(DEFAULTS)
    assert state.tests == [test]
    assert state.candidates[test.id].version == 3
    assert state.candidates[test.id].text == STRICT_JUDGE + " Very."
    assert state.active["arbiter"].version == 2
    assert await store.ab_tests() == [test] == await store.ab_tests("arbiter")
    assert await store.ab_tests("selector") == []


async def test_what_a_test_refuses(store: SqlStore) -> None:
    await store.add_prompt("arbiter", STRICT_JUDGE)
    with pytest.raises(PromptError, match="version 1 of 'arbiter' is its active version"):
        await store.start_ab("arbiter", 1, 0.2, 30, 4)
    with pytest.raises(PromptError, match="'arbiter' has no version 5"):
        await store.start_ab("arbiter", 5, 0.2, 30, 4)
    for share in (0.0, 1.0, -0.5, float("nan")):
        with pytest.raises(PromptError, match="cannot start an A/B test of 'arbiter': share"):
            await store.start_ab("arbiter", 2, share, 30, 4)
    with pytest.raises(PromptError, match="min_per_arm"):
        await store.start_ab("arbiter", 2, 0.2, 1, 4)
    with pytest.raises(PromptError, match="looks"):
        await store.start_ab("arbiter", 2, 0.2, 30, 0)
    test = await store.start_ab("arbiter", 2, 0.2, 30, 4)
    await store.add_prompt("arbiter", STRICT_JUDGE + " Very.")
    with pytest.raises(PromptError, match=rf"already has a running A/B test \({test.id}"):
        await store.start_ab("arbiter", 3, 0.2, 30, 4)
    # its control is the active version: that cannot change under it
    with pytest.raises(PromptError, match=f"ab stop {test.id}"):
        await store.activate_prompt("arbiter", 3)
    await store.activate_prompt("arbiter", 1)  # already active: nothing changes
    # another slug may have its own test at the same time
    await store.add_prompt("selector", CATALOG["selector"].text + " Be brief.")
    other = await store.start_ab("selector", 2, 0.2, 30, 4)
    assert [t.id for t in await store.ab_tests()] == [other.id, test.id]
    assert len((await store.prompt_state(DEFAULTS)).tests) == 2


async def test_tests_started_at_once_on_one_slug_leave_one_running(
    store_target: StoreTarget,
) -> None:
    first, second = await store_target.open(), await store_target.open()
    try:
        await first.add_prompt("arbiter", STRICT_JUDGE)
        tries = await asyncio.gather(
            *(s.start_ab("arbiter", 2, 0.2, 30, 4) for s in [first, second] * 4),
            return_exceptions=True,
        )
        started = [t for t in tries if not isinstance(t, BaseException)]
        refused = [t for t in tries if isinstance(t, BaseException)]
        assert len(started) == 1
        assert all(isinstance(e, PromptError) for e in refused), refused
        assert [t.status for t in await first.ab_tests()] == ["running"]
    finally:
        await first.aclose()
        await second.aclose()


async def test_the_database_itself_keeps_one_running_test_per_slug(store: SqlStore) -> None:
    await store.add_prompt("arbiter", STRICT_JUDGE)
    test = await store.start_ab("arbiter", 2, 0.2, 30, 4)
    row = test.model_dump(exclude={"id"}) | {"workspace_id": store.workspace}
    with pytest.raises(IntegrityError):
        async with store.engine.begin() as conn:
            await conn.execute(insert(ab_tests).values(row))
    async with store.engine.begin() as conn:  # an ended one does not count
        await conn.execute(insert(ab_tests).values(row | {"status": "stopped"}))


async def test_ending_a_test(store: SqlStore) -> None:
    await store.add_prompt("arbiter", STRICT_JUDGE)
    stopped = await store.start_ab("arbiter", 2, 0.2, 30, 4)
    ended = await store.end_ab(stopped.id, "stopped", "by hand: wrong candidate")
    assert (ended.status, ended.decision) == ("stopped", "by hand: wrong candidate")
    assert ended.ended_at is not None and ended.id == stopped.id
    assert (await store.prompt_state(DEFAULTS)).active["arbiter"].version == 1
    with pytest.raises(PromptError, match=rf"A/B test {stopped.id} of 'arbiter' has already ended"):
        await store.end_ab(stopped.id, "rejected", "worse")
    # a slug whose test ended can have another
    won = await store.start_ab("arbiter", 2, 0.2, 30, 4)
    with pytest.raises(PromptError, match="exactly when its candidate is activated"):
        await store.end_ab(won.id, "activated", "better")
    with pytest.raises(PromptError, match="exactly when its candidate is activated"):
        await store.end_ab(won.id, "rejected", "worse", activate=True)
    with pytest.raises(PromptError, match="'running' does not end an A/B test"):
        await store.end_ab(won.id, "running", "")
    activated = await store.end_ab(won.id, "activated", "Q +0.05, p 0.01", activate=True)
    assert activated.status == "activated"
    state = await store.prompt_state(DEFAULTS)
    assert state.active["arbiter"].version == 2 and state.tests == []
    assert [t.status for t in await store.ab_tests("arbiter")] == ["activated", "stopped"]
    with pytest.raises(PromptError, match="no A/B test 999"):
        await store.end_ab(999, "stopped", "")


async def test_outcomes_are_kept_once_per_workflow(store: SqlStore) -> None:
    await store.add_prompt("arbiter", STRICT_JUDGE)
    test = await store.start_ab("arbiter", 2, 0.2, 30, 4)
    assert await store.ab_outcomes(test.id) == []
    await store.record_outcomes([outcome(test.id, "wf-1"), outcome(test.id, "wf-2", "candidate")])
    # a retried or resumed workflow reports again: the first report stands
    await store.record_outcomes(
        [outcome(test.id, "wf-1", "control", 0.1), outcome(test.id, "wf-3", "candidate", 0.9)]
    )
    await store.record_outcomes([])
    kept = await store.ab_outcomes(test.id)
    assert [(o.workflow_id, o.arm, o.quality) for o in kept] == [
        ("wf-1", "control", 0.8),
        ("wf-2", "candidate", 0.8),
        ("wf-3", "candidate", 0.9),
    ]
    assert kept[0] == outcome(test.id, "wf-1")
    none_q = outcome(test.id, "wf-4").model_copy(update={"quality": None, "success": False})
    await store.record_outcomes([none_q])
    assert (await store.ab_outcomes(test.id))[-1] == none_q
    # a workflow that ends after its test did still counts
    await store.end_ab(test.id, "stopped", "")
    await store.record_outcomes([outcome(test.id, "wf-5")])
    assert len(await store.ab_outcomes(test.id)) == 5
    with pytest.raises(PromptError, match="no A/B test 999"):
        await store.record_outcomes([outcome(test.id, "wf-6"), outcome(999, "wf-6")])
    assert len(await store.ab_outcomes(test.id)) == 5  # nothing of the refused batch
    with pytest.raises(PromptError, match="no A/B test 999"):
        await store.ab_outcomes(999)


async def test_each_workspace_has_its_own_registry(store_target: StoreTarget) -> None:
    mine = await store_target.open()
    theirs = await store_target.open(workspace="other")
    try:
        await mine.add_prompt("arbiter", STRICT_JUDGE)
        test = await mine.start_ab("arbiter", 2, 0.2, 30, 4)
        await mine.record_outcomes([outcome(test.id, "wf-1")])
        assert await theirs.prompt_versions("arbiter") == []
        assert await theirs.ab_tests() == []
        assert (await theirs.prompt_state(DEFAULTS)).tests == []
        for call in (
            theirs.ab_outcomes(test.id),
            theirs.end_ab(test.id, "stopped", ""),
            theirs.record_outcomes([outcome(test.id, "wf-2")]),
        ):
            with pytest.raises(PromptError, match=f"no A/B test {test.id} in workspace 'other'"):
                await call
        # their own numbering starts at 2 too
        assert (await theirs.add_prompt("arbiter", STRICT_JUDGE)).version == 2
    finally:
        await mine.aclose()
        await theirs.aclose()


async def test_finishing_a_run_merges_its_extra(store: SqlStore) -> None:
    await store.start_execution("wf-x", "r", {"recipe": False, "level": {"level": "atom"}})
    ending: dict[str, Any] = {
        "status": "succeeded",
        "stages": [],
        "plan": None,
        "totals": None,
        "final_answer": "done",
        "error": None,
    }
    await store.finish_execution("wf-x", **ending)
    run = await store.get_run("wf-x")
    assert run is not None and run.extra == {"recipe": False, "level": {"level": "atom"}}
    prompts = {"arbiter": {"version": 2, "test_id": 1, "arm": "candidate"}}
    await store.finish_execution(
        "wf-x",
        **ending,
        extra={"prompts": prompts, "level": {"level": "organ"}},
    )
    run = await store.get_run("wf-x")
    assert run is not None and run.status == "succeeded" and run.final_answer == "done"
    assert run.extra == {"recipe": False, "level": {"level": "organ"}, "prompts": prompts}
    await store.finish_execution("nobody", **ending, extra={"a": 1})
    assert await store.get_run("nobody") is None


def _to_0003(connection: Connection) -> None:
    config = Config()
    config.set_main_option(
        "script_location", str(Path(automatos.store.__file__).with_name("migrations"))
    )
    config.attributes["connection"] = connection
    command.upgrade(config, "0003")


async def test_the_0004_migration_keeps_old_rows(store_target: StoreTarget) -> None:
    engine = create_engine(database_url(store_target.settings), **store_target.options)
    then = datetime(2025, 1, 1, tzinfo=UTC)
    async with engine.begin() as conn:
        await conn.run_sync(_to_0003)
        await conn.execute(
            text("INSERT INTO workspaces (id, name, created_at) VALUES ('default', 'default', :t)"),
            {"t": then},
        )
        await conn.execute(
            text(
                "INSERT INTO workflow_executions (id, workspace_id, request, status, stages, "
                "extra, started_at, finished_at) "
                "VALUES ('old', 'default', 'r', 'succeeded', '[]', '{\"recipe\": true}', :t, :t)"
            ),
            {"t": then},
        )
    await engine.dispose()
    store = await store_target.open()
    try:
        run = await store.get_run("old")
        assert run is not None and run.status == "succeeded" and run.extra == {"recipe": True}
        assert (await store.prompt_state(DEFAULTS)).active["arbiter"].version == 1
        assert (await store.add_prompt("arbiter", STRICT_JUDGE)).version == 2
    finally:
        await store.aclose()


async def test_a_missing_table_is_a_store_error(store: SqlStore) -> None:
    async with store.engine.begin() as conn:
        await conn.execute(text("DROP TABLE ab_outcomes"))
    await store.add_prompt("arbiter", STRICT_JUDGE)
    test = await store.start_ab("arbiter", 2, 0.2, 30, 4)
    with pytest.raises(StoreError, match="the store failed in record_outcomes"):
        await store.record_outcomes([outcome(test.id, "wf-1")])


@pytest.mark.parametrize("slug", ["judge", "synthesiser"])
async def test_a_prompt_stage_7_cannot_measure_is_not_ab_tested(store: SqlStore, slug: str) -> None:
    await store.add_prompt(slug, CATALOG[slug].text + " Be lenient.")
    with pytest.raises(PromptError, match=f"A/B test of '{slug}' cannot be decided by stage 7"):
        await store.start_ab(slug, 2, 0.2, 30, 4)
    await store.activate_prompt(slug, 2)  # activated, it is used
    assert (await store.prompt_state({slug: CATALOG[slug].text})).active[slug].version == 2


async def test_an_id_beyond_the_databases_integers_names_no_test(store: SqlStore) -> None:
    for test_id in (0, 2**31, 10**20):
        with pytest.raises(PromptError, match=f"no A/B test {test_id}"):
            await store.end_ab(test_id, "stopped", "by hand")
        with pytest.raises(PromptError, match=f"no A/B test {test_id}"):
            await store.ab_outcomes(test_id)
