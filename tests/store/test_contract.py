"""One contract for every store backend."""

from __future__ import annotations

import asyncio

import pytest

from automatos import AgentSpec, ErrorInfo, LLMCall, SubtaskResult, SubtaskStatus
from automatos.domain.agent import AgentMetrics
from automatos.domain.event import SubtaskFinished, SubtaskStarted
from automatos.registry import registered_agents
from automatos.store import OVERALL, WriteBatch
from automatos.store.sql import SqlStore


async def test_an_execution_round_trips(store: SqlStore) -> None:
    await store.start_execution("wf-1", "compare things", {"recipe": False})
    batch = WriteBatch("wf-1")
    batch.results += [
        SubtaskResult("a", SubtaskStatus.SUCCEEDED, "generalist", "out a", 10, 5, 0.001, 0.5, 1),
        SubtaskResult(
            "b", SubtaskStatus.FAILED, "generalist", None, 0, 0, 0.0, 1.0, 3, ErrorInfo("E", "m")
        ),
    ]
    batch.events += [
        SubtaskStarted(1, "wf-1", 1.0, "a", "generalist", 1),
        SubtaskFinished(2, "wf-1", 2.0, "a", "succeeded", 0.5, None),
    ]
    batch.calls.append(LLMCall("execute", "m", "a", 10, 5, 0.001, 0.5))
    assert len(batch) == 5
    await store.write(batch)
    await store.finish_execution(
        "wf-1",
        status="partial",
        stages=[{"stage": "execute", "elapsed_s": 1.5}],
        plan={"subtasks": []},
        totals={"tokens_in": 10},
        final_answer="out a",
        error=None,
    )
    runs = await store.list_runs()
    assert [(r.id, r.status) for r in runs] == [("wf-1", "partial")]
    assert runs[0].totals == {"tokens_in": 10}
    detail = await store.get_run("wf-")
    assert detail is not None
    assert detail.final_answer == "out a"
    assert detail.events == 2
    assert detail.extra == {"recipe": False}
    by_id = {r["subtask_id"]: r for r in detail.results}
    assert by_id["a"]["output"] == "out a"
    assert by_id["b"]["error"] == {"type": "E", "message": "m"}
    assert detail.calls[0]["stage"] == "execute"
    assert detail.stages == [{"stage": "execute", "elapsed_s": 1.5}]
    assert await store.get_run("nope") is None


async def test_a_running_execution_shows_what_finished(store: SqlStore) -> None:
    await store.start_execution("wf-2", "r", {})
    await store.write(WriteBatch("wf-2", results=[SubtaskResult("a", SubtaskStatus.SUCCEEDED)]))
    detail = await store.get_run("wf-2")
    assert detail is not None
    assert detail.status == "running"
    assert detail.finished_at is None
    assert [r["subtask_id"] for r in detail.results] == ["a"]


async def test_a_result_is_written_once(store: SqlStore) -> None:
    await store.start_execution("wf-3", "r", {})
    await store.write(WriteBatch("wf-3", results=[SubtaskResult("a", SubtaskStatus.SUCCEEDED)]))
    with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
        await store.write(WriteBatch("wf-3", results=[SubtaskResult("a", SubtaskStatus.FAILED)]))


async def test_agents_and_metrics(store: SqlStore) -> None:
    await store.save_agent(
        AgentSpec(name="writer", description="writes", capabilities=("writing",))
    )
    await store.save_agent(AgentSpec(name="writer", description="writes well"))
    await store.save_agent(AgentSpec(name="analyst"))
    assert [a.name for a in await store.agents()] == ["analyst", "writer"]
    assert (await store.agents())[1].description == "writes well"
    await store.save_metrics(
        {"writer": {OVERALL: AgentMetrics(0.9, 0.8, 1.5, 0.01, 12), "writing": AgentMetrics()}}
    )
    await store.save_metrics({"writer": {OVERALL: AgentMetrics(0.95, 0.85, 1.4, 0.01, 13)}})
    # learning about a name the registry does not hold neither registers it nor keeps it
    await store.save_metrics({"newcomer": {OVERALL: AgentMetrics(total_executions=1)}})
    metrics = await store.agent_metrics()
    assert metrics["writer"][OVERALL] == AgentMetrics(0.95, 0.85, 1.4, 0.01, 13)
    assert metrics["writer"]["writing"].total_executions == 0
    assert "newcomer" not in {a.name for a in await store.agents()}
    assert "newcomer" not in metrics


async def test_runs_are_listed_newest_first(store: SqlStore) -> None:
    for i in range(3):
        await store.start_execution(f"wf-{i}", f"request {i}", {})
    assert [r.id for r in await store.list_runs(limit=2)] == ["wf-2", "wf-1"]


async def test_workflows_starting_at_once_register_and_learn_without_conflict(
    store: SqlStore,
) -> None:
    # Several first runs seed the starter team at once, and learn about the same new agent.
    teams = await asyncio.gather(*(registered_agents(store) for _ in range(8)))
    assert all([a.name for a in team] == [a.name for a in teams[0]] for team in teams)
    learned = {"newcomer": {OVERALL: AgentMetrics(0.9, 0.8, 1.0, 0.0, 1)}}
    await asyncio.gather(*(store.save_agent(AgentSpec(name="newcomer")) for _ in range(8)))
    await asyncio.gather(*(store.save_metrics(learned) for _ in range(8)))
    names = [a.name for a in await store.agents()]
    assert names.count("newcomer") == 1 and len(names) == len(teams[0]) + 1
    assert (await store.agent_metrics())["newcomer"][OVERALL].success_rate == 0.9


async def test_metrics_updates_from_runs_finishing_at_once_all_count(store: SqlStore) -> None:
    def one_more(known: dict[str, dict[str, AgentMetrics]]) -> dict[str, dict[str, AgentMetrics]]:
        seen = known.get("busy", {}).get(OVERALL, AgentMetrics()).total_executions
        return {"busy": {OVERALL: AgentMetrics(total_executions=seen + 1)}}

    await store.save_agent(AgentSpec(name="busy"))
    await asyncio.gather(*(store.update_metrics(one_more) for _ in range(10)))
    assert (await store.agent_metrics())["busy"][OVERALL].total_executions == 10


async def test_a_whole_id_is_found_even_when_longer_ids_start_with_it(store: SqlStore) -> None:
    for wid in ("legacy-0001", "legacy-00010", "legacy-00011"):
        await store.start_execution(wid, "r", {})
    found = await store.get_run("legacy-0001")
    assert found is not None and found.id == "legacy-0001"
    assert await store.get_run("legacy-0001") is not None
    assert await store.get_run("legacy-000") is None  # a prefix of three: ambiguous
    found = await store.get_run("legacy-00011")
    assert found is not None and found.id == "legacy-00011"
