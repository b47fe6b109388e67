"""Group commit: what many workflows ask at once is done in few transactions, and each still
gets its own outcome (a refused row costs its own request only, a grouped read sees what was
committed before it was asked)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from automatos import (
    AgentSpec,
    InvalidRequestError,
    LLMCall,
    StoreError,
    SubtaskResult,
    SubtaskStatus,
)
from automatos.domain.agent import AgentMetrics
from automatos.domain.event import SubtaskStarted
from automatos.store import OVERALL, BatchWriter, WriteBatch
from automatos.store.group import Group
from automatos.store.sql import SqlStore
from automatos.store.tables import events, workflow_executions


def _rows(wid: str, seqs: range) -> WriteBatch:
    batch = WriteBatch(wid)
    batch.events += [SubtaskStarted(seq, wid, float(seq), "a", "writer", 1) for seq in seqs]
    batch.calls.append(LLMCall("execute", "m", "a", 1, 2, 0.0, 0.1))
    batch.results.append(SubtaskResult("a", SubtaskStatus.SUCCEEDED, "writer", "out"))
    return batch


async def _count(store: SqlStore, table: Any) -> int:
    async with store.engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(table)) or 0)


async def test_many_workflows_are_written_in_few_transactions(store: SqlStore) -> None:
    n = 50
    await asyncio.gather(*(store.start_execution(f"wf-{i}", "r", {}) for i in range(n)))
    await asyncio.gather(*(store.write(_rows(f"wf-{i}", range(1, 11))) for i in range(n)))
    await asyncio.gather(*(store.heartbeat(f"wf-{i}") for i in range(n)))
    await asyncio.gather(
        *(
            store.finish_execution(
                f"wf-{i}",
                status="succeeded",
                stages=[{"stage": "execute"}],
                plan=None,
                totals={"n": i},
                final_answer=f"answer {i}",
                error=None,
                extra={"prompts": {"i": i}},
            )
            for i in range(n)
        )
    )
    # one transaction for each kind asked at once (twice that on a slow machine)
    assert store._writes.groups <= 4 * 2
    assert await _count(store, events) == n * 10
    detail = await store.get_run("wf-7")
    assert detail is not None
    assert (detail.status, detail.final_answer, detail.totals) == (
        "succeeded",
        "answer 7",
        {"n": 7},
    )
    assert detail.extra == {"prompts": {"i": 7}}  # merged into what it started with ({})
    assert len(detail.results) == 1 and len(detail.calls) == 1 and detail.events == 10


async def test_a_refused_row_costs_its_own_request_only(store: SqlStore) -> None:
    await asyncio.gather(*(store.start_execution(f"wf-{i}", "r", {}) for i in range(6)))
    await store.write(_rows("wf-0", range(1, 3)))
    outcomes = await asyncio.gather(
        *(store.write(_rows(f"wf-{i}", range(1, 3))) for i in range(6)),
        return_exceptions=True,
    )
    refused, *written = outcomes
    assert isinstance(refused, StoreError) and not refused.retryable
    assert "write" in str(refused)
    assert written == [None] * 5
    assert await _count(store, events) == 6 * 2


async def test_a_duplicate_workflow_id_fails_alone(store: SqlStore) -> None:
    outcomes = await asyncio.gather(
        *(store.start_execution(wid, "r", {}) for wid in ("a", "b", "a", "c")),
        return_exceptions=True,
    )
    assert [type(o).__name__ for o in outcomes] == [
        "NoneType",
        "NoneType",
        "InvalidRequestError",
        "NoneType",
    ]
    assert isinstance(outcomes[2], InvalidRequestError)
    assert await _count(store, workflow_executions) == 3


async def test_updates_learned_at_once_each_build_on_the_one_before(store: SqlStore) -> None:
    def one_more(known: dict[str, dict[str, AgentMetrics]]) -> dict[str, dict[str, AgentMetrics]]:
        seen = known.get("busy", {}).get(OVERALL, AgentMetrics()).total_executions
        return {"busy": {OVERALL: AgentMetrics(total_executions=seen + 1)}}

    def broken(known: dict[str, dict[str, AgentMetrics]]) -> dict[str, dict[str, AgentMetrics]]:
        raise ValueError("a bug in one run's learning")

    await store.save_agent(AgentSpec(name="busy"))
    updates = [one_more] * 10 + [broken] + [one_more] * 10
    outcomes = await asyncio.gather(
        *(store.update_metrics(u) for u in updates), return_exceptions=True
    )
    assert [type(o).__name__ for o in outcomes].count("ValueError") == 1
    assert isinstance(outcomes[10], ValueError)
    assert (await store.agent_metrics())["busy"][OVERALL].total_executions == 20


async def test_a_grouped_read_sees_what_was_saved_before_it_was_asked(store: SqlStore) -> None:
    await store.save_agent(AgentSpec(name="first"))
    before = asyncio.gather(*(store.agents() for _ in range(5)))
    await asyncio.sleep(0)  # the first read has begun
    await store.save_agent(AgentSpec(name="second"))
    after = await store.agents()
    assert [a.name for a in after] == ["first", "second"]
    assert all("first" in [a.name for a in found] for found in await before)


async def test_readers_share_a_read_that_began_after_they_asked() -> None:
    reads, release = 0, asyncio.Event()

    async def read(callers: list[None]) -> list[int]:
        nonlocal reads
        reads += 1
        seen = reads
        await release.wait()
        return [seen] * len(callers)

    group: Group[None, int] = Group(lambda _: "read", read)
    first = asyncio.ensure_future(group(None))
    await asyncio.sleep(0.01)  # the first read runs
    later = asyncio.gather(*(group(None) for _ in range(5)))
    await asyncio.sleep(0.01)
    release.set()
    assert await first == 1
    assert await later == [2] * 5  # one read for them all, begun after they asked
    assert reads == group.groups == 2


async def test_a_transient_failure_fails_every_request_retryably() -> None:
    tried: list[list[int]] = []

    async def together(requests: list[int]) -> list[None]:
        tried.append(requests)
        raise OperationalError("INSERT", None, Exception("database is locked"))

    async def alone(request: int) -> None:
        raise AssertionError("not tried alone: it would fail the same way")

    group: Group[int, None] = Group(lambda _: "write", together, alone)
    outcomes = await asyncio.gather(*(group(i) for i in range(4)), return_exceptions=True)
    assert all(isinstance(o, StoreError) and o.retryable for o in outcomes)
    assert len({id(o) for o in outcomes}) == 4  # each its own error
    assert "the store failed in write: OperationalError" in str(outcomes[0])
    assert tried == [[0, 1, 2, 3]]  # asked in the same turn of the loop: one group


async def test_a_caller_that_stops_waiting_leaves_the_others_theirs() -> None:
    release = asyncio.Event()

    async def together(requests: list[int]) -> list[int]:
        await release.wait()
        return [r * 10 for r in requests]

    group: Group[int, int] = Group(lambda _: "write", together)
    calls = [asyncio.ensure_future(group(i)) for i in range(3)]
    await asyncio.sleep(0.01)
    calls[1].cancel()
    release.set()
    assert await calls[0] == 0 and await calls[2] == 20
    with pytest.raises(asyncio.CancelledError):
        await calls[1]
    await group.aclose()


async def test_an_idle_writer_writes_a_new_row_within_the_interval(store: SqlStore) -> None:
    await store.start_execution("wf", "r", {})
    writer = BatchWriter(store, "wf", batch_size=100, interval_s=0.05)
    await asyncio.sleep(0.2)  # asleep: nothing to write
    writer.add_event(SubtaskStarted(1, "wf", 1.0, "a", "writer", 1))
    await asyncio.sleep(0.05 + 0.2)  # the interval, and room for a slow machine
    assert await _count(store, events) == 1
    await writer.aclose()
    assert writer.warnings == []


async def test_a_committed_group_resumes_its_callers_a_few_at_a_time() -> None:
    """What the first callers wake (a server's event streams) runs before the last caller of
    a large group resumes, not after the whole group."""
    order: list[tuple[str, int]] = []

    async def together(requests: list[int]) -> Sequence[int]:
        await asyncio.sleep(0.01)  # the transaction
        return requests

    group: Group[int, int] = Group(lambda _: "op", together)
    loop = asyncio.get_running_loop()

    async def caller(i: int) -> None:
        assert await group(i) == i
        order.append(("resumed", i))
        loop.call_soon(order.append, ("woke", i))

    await asyncio.gather(*(caller(i) for i in range(200)))
    await asyncio.sleep(0)
    assert group.groups == 1
    assert order.index(("woke", 0)) < order.index(("resumed", 199))
    assert [i for kind, i in order if kind == "resumed"] == list(range(200))  # in order
