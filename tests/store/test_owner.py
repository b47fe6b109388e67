"""A run's record takes writes only from the process that owns it: once another process
resumed the run, the renewals, rows, checkpoint and end of the one that ran it before are
refused (:class:`RunTakenOverError`) and write nothing, in the same transaction as the check;
the writer of that process stops and says so. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import inspect, select

from automatos import RunTakenOverError, StoreError, SubtaskResult, SubtaskStatus
from automatos.domain.event import StageStarted
from automatos.domain.result import LLMCall
from automatos.store import BatchWriter, WriteBatch
from automatos.store.database import create_engine, database_url
from automatos.store.sql import SqlStore
from automatos.store.tables import workflow_executions
from tests.store.conftest import StoreTarget, alembic, differences

OLD, NEW = "a" * 32, "b" * 32


def _batch(workflow_id: str, owner: str | None, sid: str, seq: int) -> WriteBatch:
    return WriteBatch(
        workflow_id,
        results=[SubtaskResult(sid, SubtaskStatus.SUCCEEDED, "generalist", f"out:{sid}")],
        events=[StageStarted(seq, workflow_id, float(seq), "execute", "execute")],
        calls=[LLMCall("execute", "m", sid, 1, 1)],
        owner=owner,
    )


async def _row(store: SqlStore, workflow_id: str) -> dict[str, Any]:
    async with store.engine.connect() as conn:
        found = await conn.execute(
            select(workflow_executions).where(workflow_executions.c.id == workflow_id)
        )
        return dict(found.mappings().one())


async def _taken_over(store_target: StoreTarget) -> tuple[SqlStore, SqlStore]:
    """A run started by one store (owner ``OLD``) with a result written, its lease expired,
    and resumed by another (owner ``NEW``): the first as a process that was only stalled."""
    first = await store_target.open(lease_s=0.1)
    second = await store_target.open(lease_s=0.1)
    await first.start_execution("wf", "r", {}, owner=OLD)
    await first.write(_batch("wf", OLD, "a", 1))
    await first.save_checkpoint("wf", {"version": 1}, owner=OLD)
    await asyncio.sleep(0.3)  # its lease expires
    taken = await second.resume_execution("wf", owner=NEW)
    assert taken.owner == NEW and [r.subtask_id for r in taken.results] == ["a"]
    return first, second


async def test_the_process_that_ran_a_resumed_run_can_write_nothing_more(
    store_target: StoreTarget,
) -> None:
    first, second = await _taken_over(store_target)
    try:
        kept = await _row(second, "wf")
        attempts: list[Callable[[], Awaitable[None]]] = [
            lambda: first.heartbeat("wf", owner=OLD),
            lambda: first.write(_batch("wf", OLD, "b", 2)),
            lambda: first.save_checkpoint("wf", {"version": 2}, owner=OLD),
            lambda: first.finish_execution(
                "wf",
                status="succeeded",
                stages=[],
                plan=None,
                totals=None,
                final_answer="old",
                error=None,
                extra={"late": True},
                owner=OLD,
            ),
        ]
        for attempt in attempts:
            with pytest.raises(RunTakenOverError, match="run wf was taken over") as caught:
                await attempt()
            assert isinstance(caught.value, StoreError) and not caught.value.retryable
        assert await _row(second, "wf") == kept  # not one column changed, not the lease
        run = await second.get_run("wf")
        assert run is not None and run.status == "running"
        assert [r["subtask_id"] for r in run.results] == ["a"]
        assert run.events == 1 and len(run.calls) == 1
        # the resumer's own writes go in, and renew the lease
        await second.write(_batch("wf", NEW, "b", 2))
        await second.save_checkpoint("wf", {"version": 2}, owner=NEW)
        await second.heartbeat("wf", owner=NEW)
        row = await _row(second, "wf")
        assert row["checkpoint"] == {"version": 2} and row["heartbeat_at"] > kept["heartbeat_at"]
        await second.finish_execution(
            "wf",
            status="succeeded",
            stages=[],
            plan=None,
            totals=None,
            final_answer="new",
            error=None,
            owner=NEW,
        )
        run = await second.get_run("wf")
        assert run is not None and (run.status, run.final_answer) == ("succeeded", "new")
        assert sorted(r["subtask_id"] for r in run.results) == ["a", "b"] and run.events == 2
    finally:
        await first.aclose()
        await second.aclose()


async def test_a_refused_write_costs_only_its_own_run(store_target: StoreTarget) -> None:
    """Written in one transaction with other runs' rows, the refused batch is left out and
    the others are written."""
    first, second = await _taken_over(store_target)
    try:
        await first.start_execution("wf-other", "r", {}, owner=OLD[:-1] + "c")
        outcomes = await asyncio.gather(
            first.write(_batch("wf", OLD, "b", 2)),
            first.write(_batch("wf-other", OLD[:-1] + "c", "x", 1)),
            first.write(_batch("wf-plain", None, "y", 1)),  # no owner, no run: refused row
            return_exceptions=True,
        )
        assert isinstance(outcomes[0], RunTakenOverError) and outcomes[1] is None
        assert isinstance(outcomes[2], StoreError)  # its own error, as it would have alone
        other = await first.get_run("wf-other")
        assert other is not None and [r["subtask_id"] for r in other.results] == ["x"]
        run = await first.get_run("wf")
        assert run is not None and [r["subtask_id"] for r in run.results] == ["a"]
    finally:
        await first.aclose()
        await second.aclose()


async def test_a_stalled_owner_that_nobody_replaced_keeps_its_run(
    store_target: StoreTarget,
) -> None:
    """Marked interrupted while it was stalled, a run whose owner writes again is running
    again: no other process took it."""
    store = await store_target.open(lease_s=0.1)
    try:
        await store.start_execution("wf", "r", {}, owner=OLD)
        await asyncio.sleep(0.3)
        run = await store.get_run("wf")  # marks it interrupted
        assert run is not None and run.status == "interrupted"
        await store.write(_batch("wf", OLD, "a", 1))
        run = await store.get_run("wf")
        assert run is not None and (run.status, run.error, run.finished_at) == (
            "running",
            None,
            None,
        )
        assert run.heartbeat_at is not None
        assert (datetime.now(UTC) - run.heartbeat_at).total_seconds() < 0.2  # renewed
    finally:
        await store.aclose()


async def test_writes_that_name_no_owner_are_not_checked(store: SqlStore) -> None:
    await store.start_execution("wf", "r", {}, owner=OLD)
    await store.write(_batch("wf", None, "a", 1))
    await store.heartbeat("wf")
    await store.save_checkpoint("wf", {"version": 1})
    run = await store.get_run("wf")
    assert run is not None and [r["subtask_id"] for r in run.results] == ["a"]


async def test_each_resume_gives_the_run_a_new_owner(store_target: StoreTarget) -> None:
    store = await store_target.open(lease_s=0.05)
    try:
        await store.start_execution("wf", "r", {}, owner=OLD)
        owners = [OLD]
        for _ in range(2):
            await asyncio.sleep(0.2)
            owners.append((await store.resume_execution("wf")).owner or "")
            assert (await _row(store, "wf"))["owner"] == owners[-1]
        assert len(set(owners)) == 3 and all(len(o) == 32 for o in owners)
        run = await store.get_run("wf")
        assert run is not None and "owner" not in run.model_dump()  # not shown
    finally:
        await store.aclose()


async def test_the_writer_of_a_run_taken_over_stops_and_says_so(
    store_target: StoreTarget,
) -> None:
    first, second = await _taken_over(store_target)
    heard: list[RunTakenOverError] = []
    told = asyncio.Event()
    writer = BatchWriter(first, "wf", 100, 0.01, lease_s=30.0, owner=OLD)

    def hear(exc: RunTakenOverError) -> None:
        heard.append(exc)
        told.set()

    writer.on_taken_over = hear
    try:
        writer.add_result(SubtaskResult("b", SubtaskStatus.SUCCEEDED, "generalist", "late"))
        async with asyncio.timeout(10):
            await told.wait()  # at its first flush: no renewal is due
        assert heard == [writer.taken_over]
        writer.add_result(SubtaskResult("c", SubtaskStatus.SUCCEEDED))  # not kept
        writer.add_event(StageStarted(2, "wf", 2.0, "execute", "execute"))
        await writer.aclose()
        assert len(heard) == 1 and writer.warnings == []
        run = await second.get_run("wf")
        assert run is not None and [r["subtask_id"] for r in run.results] == ["a"]
        assert run.events == 1
    finally:
        await first.aclose()
        await second.aclose()


async def test_the_writer_of_a_run_taken_over_hears_it_from_its_lease(
    store_target: StoreTarget,
) -> None:
    """With nothing to write, its renewal finds the run is another process's."""
    first, second = await _taken_over(store_target)
    told = asyncio.Event()
    writer = BatchWriter(first, "wf", 100, 0.01, lease_s=0.1, owner=OLD)
    writer.on_taken_over = lambda _: told.set()
    try:
        async with asyncio.timeout(10):
            await told.wait()
        assert isinstance(writer.taken_over, RunTakenOverError)
        await writer.aclose()
        assert writer.warnings == []
    finally:
        await first.aclose()
        await second.aclose()


async def test_the_0008_migration_adds_the_column_of_the_metadata(
    store_target: StoreTarget,
) -> None:
    def columns(connection: Any) -> set[str]:
        return {c["name"] for c in inspect(connection).get_columns("workflow_executions")}

    engine = create_engine(database_url(store_target.settings), **store_target.options)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(alembic, "upgrade", "0007")
            assert "owner" not in await conn.run_sync(columns)
            await conn.run_sync(alembic, "upgrade", "0008")
            assert "owner" in await conn.run_sync(columns)
            assert await conn.run_sync(differences, {"workflow_executions"}) == []
            await conn.run_sync(alembic, "downgrade", "0007")
            assert "owner" not in await conn.run_sync(columns)
            assert "checkpoint" in await conn.run_sync(columns)
    finally:
        await engine.dispose()
    first, second = await _taken_over(store_target)  # upgrades again
    await first.aclose()
    await second.aclose()
