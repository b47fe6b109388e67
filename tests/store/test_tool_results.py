"""The tool calls of a subtask's result in the store (``subtask_results.tool_calls``): written
with the result (by COPY on PostgreSQL), shown with the run, given back to a resumed run, on
SQLite and PostgreSQL; and the 0010 migration that adds the column."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, inspect, select, update

from automatos import SubtaskResult, SubtaskStatus, ToolUse
from automatos.domain.result import ErrorInfo
from automatos.store import WriteBatch
from automatos.store.database import create_engine, database_url
from automatos.store.run_writes import tool_uses_of
from automatos.store.sql import SqlStore
from automatos.store.tables import subtask_results, workflow_executions, workspaces
from tests.store.conftest import StoreTarget, alembic, differences

CALCULATED = ToolUse("calculator", "call_1", "0123456789abcdef", 0.0021, "ok")
REFUSED = ToolUse(
    "read_file",
    "call_2",
    "fedcba9876543210",
    0.5,
    "failed",
    'tool "read_file": ünïcode path outside the root; "quotes" and \\ kept',
)
STOPPED = ToolUse("search", "call_9", "00000000ffffffff", 0.0, "over_limit", "not run: 8 calls")


async def _run_with_tools(store: SqlStore) -> None:
    await store.start_execution("wf", "what is 6 * 7?", {})
    await store.write(
        WriteBatch(
            "wf",
            results=[
                SubtaskResult(
                    "calc",
                    SubtaskStatus.SUCCEEDED,
                    "math",
                    "42",
                    30,
                    4,
                    0.0,
                    0.2,
                    1,
                    tool_calls=(CALCULATED, REFUSED),
                ),
                SubtaskResult(
                    "loop",
                    SubtaskStatus.FAILED,
                    "math",
                    None,
                    90,
                    12,
                    0.0,
                    1.0,
                    1,
                    ErrorInfo("ToolLoopError", "8 tool calls and no answer"),
                    (STOPPED,),
                ),
                SubtaskResult("plain", SubtaskStatus.SUCCEEDED, "writer", "no tools", 5, 2),
            ],
        )
    )


async def test_a_results_tool_calls_are_stored_and_shown(store: SqlStore) -> None:
    await _run_with_tools(store)
    run = await store.get_run("wf")
    assert run is not None
    by_id = {r["subtask_id"]: r for r in run.results}
    assert by_id["calc"]["tool_calls"] == [
        {
            "tool": "calculator",
            "call_id": "call_1",
            "arguments_digest": "0123456789abcdef",
            "latency_s": 0.0021,
            "outcome": "ok",
            "error": None,
        },
        {
            "tool": "read_file",
            "call_id": "call_2",
            "arguments_digest": "fedcba9876543210",
            "latency_s": 0.5,
            "outcome": "failed",
            "error": REFUSED.error,
        },
    ]
    assert [u["outcome"] for u in by_id["loop"]["tool_calls"]] == ["over_limit"]
    assert by_id["plain"]["tool_calls"] is None  # NULL: it called none
    # As the API and `runs show --json` serialise it.
    assert '"arguments_digest":"0123456789abcdef"' in run.model_dump_json()


async def _stopped(store: SqlStore) -> None:
    """The run's process stopped after its checkpoint: it may be resumed."""
    await store.save_checkpoint("wf", {"version": 1})
    await store.finish_execution(
        "wf",
        status="interrupted",
        stages=[],
        plan=None,
        totals=None,
        final_answer=None,
        error="interrupted",
    )


async def test_a_resumed_run_gets_its_results_tool_calls_back(store: SqlStore) -> None:
    await _run_with_tools(store)
    await _stopped(store)
    taken = await store.resume_execution("wf")
    by_id = {r.subtask_id: r for r in taken.results}
    assert by_id["calc"].tool_calls == (CALCULATED, REFUSED)
    assert by_id["loop"].tool_calls == (STOPPED,)
    assert by_id["loop"].error == ErrorInfo("ToolLoopError", "8 tool calls and no answer")
    assert by_id["plain"].tool_calls == ()


async def test_a_row_written_by_a_newer_version_still_reads(store: SqlStore) -> None:
    """A field this version does not know is left out rather than failing the resume."""
    await _run_with_tools(store)
    newer = [{**_as_row(CALCULATED), "cached": True}]
    async with store.engine.begin() as conn:
        await conn.execute(
            update(subtask_results)
            .where(subtask_results.c.subtask_id == "calc")
            .values(tool_calls=newer)
        )
    await _stopped(store)
    taken = await store.resume_execution("wf")
    assert {r.subtask_id: r for r in taken.results}["calc"].tool_calls == (CALCULATED,)


def test_tool_uses_of_a_column() -> None:
    assert tool_uses_of(None) == () and tool_uses_of([]) == ()
    assert tool_uses_of([_as_row(REFUSED), "not a call"]) == (REFUSED,)


def _as_row(use: ToolUse) -> dict[str, Any]:
    return {
        "tool": use.tool,
        "call_id": use.call_id,
        "arguments_digest": use.arguments_digest,
        "latency_s": use.latency_s,
        "outcome": use.outcome,
        "error": use.error,
    }


async def test_the_0010_migration_adds_the_column_of_the_metadata(
    store_target: StoreTarget,
) -> None:
    def columns(connection: Any) -> set[str]:
        return {c["name"] for c in inspect(connection).get_columns("subtask_results")}

    engine = create_engine(database_url(store_target.settings), **store_target.options)
    now = datetime.now(UTC)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(alembic, "upgrade", "0009")
            assert "tool_calls" not in await conn.run_sync(columns)
            # A database in use at 0009: a run with a result.
            await conn.execute(insert(workspaces).values(id="default", name="d", created_at=now))
            await conn.execute(
                insert(workflow_executions).values(
                    id="old",
                    workspace_id="default",
                    request="r",
                    status="succeeded",
                    stages=[],
                    extra={},
                    started_at=now,
                )
            )
            await conn.execute(
                insert(subtask_results).values(
                    workflow_id="old",
                    subtask_id="a",
                    status="succeeded",
                    output="kept",
                    tokens_in=1,
                    tokens_out=1,
                    cost_usd=0.0,
                    latency_s=0.1,
                    attempts=1,
                )
            )
            await conn.run_sync(alembic, "upgrade", "0010")
            assert "tool_calls" in await conn.run_sync(columns)
            assert await conn.run_sync(differences, {"subtask_results"}) == []
            kept = (
                await conn.execute(select(subtask_results.c.output, subtask_results.c.tool_calls))
            ).all()
            assert [tuple(row) for row in kept] == [("kept", None)]
            await conn.run_sync(alembic, "downgrade", "0009")
            assert "tool_calls" not in await conn.run_sync(columns)
            assert (await conn.execute(select(subtask_results.c.output))).scalars().all() == [
                "kept"
            ]
    finally:
        await engine.dispose()
    store = await store_target.open()  # upgrades again
    try:
        old = await store.get_run("old")
        assert old is not None and old.results[0]["tool_calls"] is None
        await _run_with_tools(store)
        run = await store.get_run("wf")
        assert run is not None and len(run.results) == 3
    finally:
        await store.aclose()
