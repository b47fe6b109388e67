"""A run's checkpoint, and taking over a run whose process stopped: one conditional update,
so that of several resumers exactly one wins; what it takes over. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import inspect, select

from automatos import SubtaskResult, SubtaskStatus
from automatos.domain.event import FindingShared, StageStarted
from automatos.domain.result import ErrorInfo, LLMCall
from automatos.errors import InvalidRequestError
from automatos.store import WriteBatch
from automatos.store.database import create_engine, database_url
from automatos.store.sql import SqlStore
from automatos.store.tables import workflow_executions
from tests.store.conftest import StoreTarget, alembic, differences

CHECKPOINT = {"version": 1, "plan": {"subtasks": []}, "note": 'ünïcode and "quotes"'}


async def _interrupted(store: SqlStore, workflow_id: str = "wf") -> None:
    """A run that stopped with a server: a result of each status, events, calls."""
    await store.start_execution(workflow_id, "the request", {"recipe": False})
    await store.write(
        WriteBatch(
            workflow_id,
            results=[
                SubtaskResult(
                    "ok", SubtaskStatus.SUCCEEDED, "generalist", "out", 10, 5, 0.25, 1.5, 2
                ),
                SubtaskResult(
                    "bad",
                    SubtaskStatus.FAILED,
                    "generalist",
                    None,
                    3,
                    0,
                    0.0,
                    0.1,
                    3,
                    ErrorInfo("EmptyAnswerError", "blank"),
                ),
                SubtaskResult("stopped", SubtaskStatus.CANCELLED),
                SubtaskResult("later", SubtaskStatus.SKIPPED),
            ],
            events=[
                StageStarted(1, workflow_id, 1.0, "execute", "execute"),
                FindingShared(2, workflow_id, 2.0, 1, "fact", "it holds", "ok", "generalist", []),
                StageStarted(3, workflow_id, 3.0, "aggregate", "evaluate"),
                FindingShared(4, workflow_id, 4.0, 2, "decision", "do it", "ok", "generalist", [1]),
            ],
            calls=[
                LLMCall("decompose", "m", None, 7, 8, 0.5, 0.2),
                LLMCall("execute", "m", "ok", 10, 5, 0.25, 1.5, priced=False),
            ],
        )
    )
    await store.finish_execution(
        workflow_id,
        status="interrupted",
        stages=[{"stage": "decompose", "phase": "plan", "elapsed_s": 0.1, "error": None}],
        plan={"subtasks": []},
        totals=None,
        final_answer=None,
        error="interrupted: the engine stopped",
    )


async def test_a_checkpoint_is_given_back_to_the_resumer_with_what_ended(
    store: SqlStore,
) -> None:
    await _interrupted(store)
    await store.save_checkpoint("wf", {"version": 0})
    await store.save_checkpoint("wf", CHECKPOINT)  # replaces the first
    taken = await store.resume_execution("wf")
    assert taken.checkpoint == CHECKPOINT
    assert (taken.request, taken.extra) == ("the request", {"recipe": False})
    assert sorted(taken.results, key=lambda r: r.subtask_id) == [
        SubtaskResult(
            "bad",
            SubtaskStatus.FAILED,
            "generalist",
            None,
            3,
            0,
            0.0,
            0.1,
            3,
            ErrorInfo("EmptyAnswerError", "blank"),
        ),
        SubtaskResult("ok", SubtaskStatus.SUCCEEDED, "generalist", "out", 10, 5, 0.25, 1.5, 2),
    ]
    assert taken.calls == [
        LLMCall("decompose", "m", None, 7, 8, 0.5, 0.2),
        LLMCall("execute", "m", "ok", 10, 5, 0.25, 1.5, priced=False),
    ]
    assert taken.last_seq == 4
    assert [(f["finding"], f["text"], f["contradicts"]) for f in taken.findings] == [
        (1, "it holds", []),
        (2, "do it", [1]),
    ]
    assert taken.stages[0]["stage"] == "decompose" and taken.plan == {"subtasks": []}
    run = await store.get_run("wf")
    assert run is not None
    assert (run.status, run.finished_at, run.error) == ("running", None, None)
    assert run.heartbeat_at is not None
    assert sorted(r["subtask_id"] for r in run.results) == ["bad", "ok"]  # the rest run again
    assert run.events == 4 and len(run.calls) == 2


async def test_without_a_checkpoint_it_starts_over_so_no_result_stands(store: SqlStore) -> None:
    await _interrupted(store)
    taken = await store.resume_execution("wf")
    assert taken.checkpoint is None
    assert taken.results == [] and taken.findings == []
    assert len(taken.calls) == 2 and taken.last_seq == 4  # they cost, and events go on
    run = await store.get_run("wf")
    assert run is not None and run.results == []


async def test_a_run_is_shown_without_its_checkpoint(store: SqlStore) -> None:
    await _interrupted(store)
    await store.save_checkpoint("wf", CHECKPOINT)
    run = await store.get_run("wf")
    assert run is not None
    assert "checkpoint" not in run.model_dump()
    assert "checkpoint" not in run.extra


@pytest.mark.parametrize(
    ("status", "said"),
    [
        ("succeeded", "it succeeded; only an interrupted run can be resumed"),
        ("partial", "it ended partial"),
        ("failed", "it failed; only an interrupted run can be resumed"),
        ("cancelled", "it was cancelled; only an interrupted run can be resumed"),
    ],
)
async def test_a_run_that_ended_is_not_resumed(store: SqlStore, status: str, said: str) -> None:
    await store.start_execution("wf", "r", {})
    await store.finish_execution(
        "wf", status=status, stages=[], plan=None, totals=None, final_answer="a", error=None
    )
    with pytest.raises(InvalidRequestError, match=f"run wf cannot be resumed: {said}"):
        await store.resume_execution("wf")
    run = await store.get_run("wf")
    assert run is not None and (run.status, run.final_answer) == (status, "a")  # untouched


async def test_an_unknown_run_is_not_found(store: SqlStore) -> None:
    await store.start_execution("wf-other", "r", {})
    with pytest.raises(InvalidRequestError, match="no stored run has the id 'wf'"):
        await store.resume_execution("wf")  # a prefix is not an id


async def test_a_run_whose_lease_is_fresh_is_left_to_its_process(store: SqlStore) -> None:
    await store.start_execution("wf", "r", {})
    with pytest.raises(InvalidRequestError, match="another process is running it"):
        await store.resume_execution("wf")
    run = await store.get_run("wf")
    assert run is not None and run.status == "running"


async def test_a_running_run_whose_lease_expired_is_taken_over(
    store_target: StoreTarget,
) -> None:
    store = await store_target.open(lease_s=0.1)
    try:
        await store.start_execution("wf", "r", {})
        await asyncio.sleep(0.5)  # nothing listed or shown it since: it still says running
        async with store.engine.connect() as conn:
            status = await conn.scalar(select(workflow_executions.c.status))
        assert status == "running"
        taken = await store.resume_execution("wf")
        assert taken.workflow_id == "wf"
        with pytest.raises(InvalidRequestError, match="another process is running it"):
            await store.resume_execution("wf")  # its lease is fresh again
    finally:
        await store.aclose()


async def test_of_resumers_at_once_exactly_one_wins(store_target: StoreTarget) -> None:
    first = await store_target.open()
    await _interrupted(first)
    await first.save_checkpoint("wf", CHECKPOINT)
    others = [await store_target.open() for _ in range(3)]  # as other processes would
    try:
        outcomes: list[Any] = await asyncio.gather(
            *(s.resume_execution("wf") for s in (first, *others)), return_exceptions=True
        )
        won = [o for o in outcomes if not isinstance(o, BaseException)]
        lost = [o for o in outcomes if isinstance(o, BaseException)]
        assert len(won) == 1 and won[0].checkpoint == CHECKPOINT
        assert len(lost) == 3
        for error in lost:
            assert isinstance(error, InvalidRequestError)
            assert "another process is running it" in str(error)
    finally:
        for s in (first, *others):
            await s.aclose()


async def test_the_0007_migration_adds_the_column_of_the_metadata(
    store_target: StoreTarget,
) -> None:
    def columns(connection: Any) -> set[str]:
        return {c["name"] for c in inspect(connection).get_columns("workflow_executions")}

    engine = create_engine(database_url(store_target.settings), **store_target.options)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(alembic, "upgrade", "0006")
            assert "checkpoint" not in await conn.run_sync(columns)
            await conn.run_sync(alembic, "upgrade", "0007")
            assert "checkpoint" in await conn.run_sync(columns)
            # the metadata is the newest migration's: only 0008's owner is missing here
            missing = await conn.run_sync(differences, {"workflow_executions"})
            assert [(d[0], d[2], d[3].name) for d in missing] == [
                ("add_column", "workflow_executions", "owner")
            ]
            await conn.run_sync(alembic, "downgrade", "0006")
            assert "checkpoint" not in await conn.run_sync(columns)
            assert "heartbeat_at" in await conn.run_sync(columns)
    finally:
        await engine.dispose()
    store = await store_target.open()  # upgrades again
    try:
        await _interrupted(store)
        await store.save_checkpoint("wf", CHECKPOINT)
        assert (await store.resume_execution("wf")).checkpoint == CHECKPOINT
    finally:
        await store.aclose()
