"""What the store promises beyond round trips, on SQLite and PostgreSQL: learning adds no
candidates, a refused row is named and the rest written, errors carry no request or output
text and are retryable only when transient, a duplicate workflow id is the caller's error."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from automatos import (
    AgentSpec,
    Engine,
    InvalidRequestError,
    LLMCall,
    StoreError,
    SubtaskResult,
    SubtaskSpec,
    SubtaskStatus,
    WorkflowRequest,
)
from automatos.domain.event import SubtaskStarted
from automatos.store import OVERALL, BatchWriter, WriteBatch
from automatos.store.sql import SqlStore
from automatos.testing import ScriptedLLM
from tests.conftest import fast_settings

SECRET = "TOP-SECRET-OUTPUT-7f3a"


async def test_a_request_s_own_agents_are_not_registered_nor_learned(store: SqlStore) -> None:
    visitor = AgentSpec(name="visitor", system_prompt="You are a visitor.")
    request = WorkflowRequest(
        text="r",
        subtasks=(
            SubtaskSpec(id="mine", description="x", agent="visitor"),
            SubtaskSpec(id="theirs", description="y", agent="writer"),
        ),
        agents=(visitor,),
    )
    engine = Engine(fast_settings(), llm=ScriptedLLM(default="done"), store=store)
    assert (await engine.run(request)).status.value == "succeeded"
    names = {a.name for a in await store.agents()}
    assert "writer" in names and "visitor" not in names
    metrics = await store.agent_metrics()
    assert "visitor" not in metrics
    assert metrics["writer"][OVERALL].total_executions == 1
    # A request's own "writer" is not the registered one: what it did teaches nothing about it.
    impostor = AgentSpec(name="writer", system_prompt="You are someone else.")
    borrowed = WorkflowRequest(
        text="r",
        subtasks=(SubtaskSpec(id="s", description="x", agent="writer"),),
        agents=(impostor,),
    )
    assert (await engine.run(borrowed)).status.value == "succeeded"
    assert (await store.agent_metrics())["writer"][OVERALL].total_executions == 1
    assert "You are someone else." not in {a.system_prompt for a in await store.agents()}


async def test_a_refused_row_is_named_and_the_rows_after_it_are_written(store: SqlStore) -> None:
    await store.start_execution("wf", "r", {})
    await store.write(WriteBatch("wf", results=[SubtaskResult("a", SubtaskStatus.SUCCEEDED)]))
    writer = BatchWriter(store, "wf", batch_size=1000, interval_s=60)
    writer.add_result(SubtaskResult("b", SubtaskStatus.SUCCEEDED, output="b out"))
    writer.add_result(SubtaskResult("a", SubtaskStatus.SUCCEEDED, output=SECRET))  # twice: refused
    writer.add_result(SubtaskResult("c", SubtaskStatus.SUCCEEDED, output="c out"))
    for seq in (1, 2, 3):
        writer.add_event(SubtaskStarted(seq, "wf", float(seq), "b", "writer", 1))
    writer.add_event(SubtaskStarted(2, "wf", 9.0, "c", "writer", 1))  # seq 2 again: refused
    writer.add_call(LLMCall("execute", "m", "c", 1, 1, 0.0, 0.1))
    await writer.aclose()
    run = await store.get_run("wf")
    assert run is not None
    assert {r["subtask_id"]: r["output"] for r in run.results} == {
        "a": None,
        "b": "b out",
        "c": "c out",
    }
    assert run.events == 3 and len(run.calls) == 1
    warnings = "\n".join(writer.warnings)
    assert "subtask_results row of subtask 'a'" in warnings
    assert "events row seq 2 (subtask_started)" in warnings
    assert len(writer.warnings) == 2, writer.warnings
    assert SECRET not in warnings
    assert writer.error is None


async def test_a_refused_row_is_a_lasting_error_without_the_output(store: SqlStore) -> None:
    await store.start_execution("wf", "the request text", {})
    await store.write(WriteBatch("wf", results=[SubtaskResult("a", SubtaskStatus.SUCCEEDED)]))
    duplicate = SubtaskResult("a", SubtaskStatus.SUCCEEDED, output=SECRET)
    with pytest.raises(StoreError) as caught:
        await store.write(WriteBatch("wf", results=[duplicate]))
    assert SECRET not in str(caught.value) and SECRET not in repr(caught.value.__cause__)
    assert "IntegrityError" in str(caught.value)
    assert not caught.value.retryable


async def test_a_wrong_schema_is_not_retryable(store: SqlStore) -> None:
    await store.start_execution("wf", "r", {})
    async with store.engine.begin() as conn:
        await conn.execute(text("DROP TABLE events"))
    batch = WriteBatch("wf", events=[SubtaskStarted(1, "wf", 1.0, "a", "writer", 1)])
    with pytest.raises(StoreError) as caught:
        await store.write(batch)
    assert not caught.value.retryable


async def test_a_duplicate_workflow_id_is_the_caller_s_error(store: SqlStore) -> None:
    await store.start_execution("wf-taken", "first request", {})
    with pytest.raises(InvalidRequestError, match="'wf-taken'") as caught:
        await store.start_execution("wf-taken", "second request", {})
    assert "second request" not in str(caught.value)
    request = WorkflowRequest(
        text="r", workflow_id="wf-taken", subtasks=(SubtaskSpec(id="a", description="x"),)
    )
    engine = Engine(fast_settings(), llm=ScriptedLLM(default="done"), store=store)
    with pytest.raises(InvalidRequestError, match="wf-taken"):
        await engine.run(request)
    [run] = await store.list_runs()
    assert run.request == "first request"


async def test_whether_a_call_was_priced_is_kept(store: SqlStore) -> None:
    await store.start_execution("wf", "r", {})
    calls = [
        LLMCall("execute", "known-model", "a", 10, 5, 0.001, 0.5),
        LLMCall("execute", "mystery-model", "b", 10, 5, 0.0, 0.5, priced=False),
    ]
    await store.write(WriteBatch("wf", calls=calls))
    run = await store.get_run("wf")
    assert run is not None
    assert [(c["model"], c["priced"]) for c in run.calls] == [
        ("known-model", True),
        ("mystery-model", False),
    ]


async def test_an_output_the_database_cannot_hold_costs_only_its_own_row(store: SqlStore) -> None:
    await store.start_execution("wf", "r", {})
    writer = BatchWriter(store, "wf", batch_size=1000, interval_s=60)
    writer.add_result(SubtaskResult("a", SubtaskStatus.SUCCEEDED, output=f"{SECRET}\x00"))
    writer.add_result(SubtaskResult("b", SubtaskStatus.SUCCEEDED, output="fine"))
    await writer.aclose()
    run = await store.get_run("wf")
    assert run is not None
    stored = {r["subtask_id"] for r in run.results}
    if store.engine.dialect.name == "postgresql":  # its text cannot hold a NUL character
        assert stored == {"b"}
        [warning] = writer.warnings
        assert "subtask_results row of subtask 'a'" in warning and SECRET not in warning
    else:
        assert stored == {"a", "b"} and writer.warnings == []
