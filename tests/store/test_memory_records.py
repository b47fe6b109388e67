"""The memories' store (adding, merging lessons, listing, forgetting) on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest
from sqlalchemy import text

from automatos.errors import StoreError
from automatos.memory.base import Memory, MemoryKind, MemoryStore
from automatos.store.memory_records import MAX_MEMORIES
from automatos.store.sql import SqlStore
from tests.store.conftest import StoreTarget

D = 6


def at(degrees: float, plane: int = 0) -> np.ndarray:
    """A unit vector at ``degrees`` from the first axis, in the plane of axes 0 and
    ``plane + 1``: two of them at angle a have cosine cos(a)."""
    v = np.zeros(D, dtype=np.float32)
    v[0] = math.cos(math.radians(degrees))
    v[plane + 1] = math.sin(math.radians(degrees))
    return v


def rows(*vectors: np.ndarray) -> np.ndarray:
    return np.stack(vectors).astype(np.float32)


def memory(
    kind: MemoryKind = "collective",
    text: str = "lesson",
    workflow_id: str = "wf-1",
    *,
    quality: float | None = 0.8,
    **fields: Any,
) -> Memory:
    values: dict[str, Any] = {
        "id": 0,
        "kind": kind,
        "text": text,
        "workflow_id": workflow_id,
        "agent": None,
        "task_type": "analysis",
        "quality": quality,
        "succeeded": True,
        "count": 1,
        "tokens": len(text.split()),
        "entropy": 3.5,
        "embedder": "mini",
    }
    return Memory(**(values | fields))


@pytest.fixture
async def other(store_target: StoreTarget, store: SqlStore) -> AsyncIterator[SqlStore]:
    """A store of another workspace on the same database (opened after ``store``)."""
    s = await store_target.open(workspace="other")
    yield s
    await s.aclose()


async def test_the_store_is_a_memory_store(store: SqlStore) -> None:
    assert isinstance(store, MemoryStore)


async def test_memories_are_kept_and_listed_newest_first(store: SqlStore) -> None:
    first = await store.add_memories(
        [
            memory("episodic", "the run", "wf-1", quality=None, succeeded=None, task_type=None),
            memory("agent", "coder did well", "wf-1", agent="coder"),
        ],
        rows(at(0), at(90)),
        0.9,
    )
    second = await store.add_memories(
        [memory("agent", "coder failed", "wf-2", agent="coder", succeeded=False, quality=None)],
        rows(at(45)),
        0.9,
    )
    kept = first + second
    assert len({m.id for m in kept}) == 3 and all(m.id > 0 for m in kept)
    assert all(m.count == 1 and m.created_at == m.updated_at for m in kept)
    assert all(m.created_at is not None and m.created_at.tzinfo is not None for m in kept)
    listed = await store.memories()
    assert [m.id for m in listed] == [kept[2].id, kept[1].id, kept[0].id]
    assert listed[0] == kept[2]  # what was returned is what is kept
    assert [m.text for m in await store.memories("agent")] == ["coder failed", "coder did well"]
    assert [m.text for m in await store.memories(agent="coder", workflow_id="wf-1")] == [
        "coder did well"
    ]
    assert [m.text for m in await store.memories("episodic", limit=1)] == ["the run"]
    assert await store.memories("collective") == []
    assert len(await store.memories(limit=2)) == 2


async def test_limits_and_kinds_are_checked(store: SqlStore) -> None:
    for limit in (0, -1, MAX_MEMORIES + 1):
        with pytest.raises(ValueError, match="limit must be 1 to 10,000"):
            await store.memories(limit=limit)
    with pytest.raises(ValueError, match="unknown memory kind 'dream'"):
        await store.memories("dream")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown memory kind 'dream'"):
        await store.add_memories([memory("dream")], rows(at(0)), 0.9)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="duplicate_cosine"):
        await store.add_memories([memory()], rows(at(0)), 0.0)
    with pytest.raises(ValueError, match="has 2 item"):
        await store.add_memories([memory(), memory()], rows(at(0)), 0.9)
    with pytest.raises(ValueError, match="not float32"):
        await store.add_memories([memory()], rows(at(0)).astype(np.float64), 0.9)
    with pytest.raises(ValueError, match="NaN or infinite"):
        await store.add_memories([memory()], np.full((1, D), np.inf, np.float32), 0.9)
    assert await store.memories() == [] and await store.memory_generation() == 0
    assert await store.add_memories([], np.zeros((0, D), np.float32), 0.9) == []


async def test_a_lesson_like_a_kept_one_is_merged_into_it(store: SqlStore) -> None:
    (kept,) = await store.add_memories([memory(text="first", quality=0.8)], rows(at(0)), 0.9)
    # cos(20°) ≈ 0.94 ≥ 0.9, better scored: its text and vector replace the kept ones
    (merged,) = await store.add_memories(
        [memory(text="better", workflow_id="wf-2", quality=0.95, task_type="writing")],
        rows(at(20)),
        0.9,
    )
    assert merged.id == kept.id and merged.count == 2
    assert (merged.text, merged.quality, merged.task_type) == ("better", 0.95, "writing")
    assert merged.workflow_id == "wf-2" and merged.created_at == kept.created_at
    assert merged.updated_at is not None and kept.updated_at is not None
    assert merged.updated_at > kept.updated_at
    memories, matrix = await store.memory_matrix("mini")
    assert memories == [merged] and np.array_equal(matrix, rows(at(20)))
    # worse scored (no quality is the lowest): counted, the text stays; compared with the
    # vector kept now, at(20): cos(10°)
    (again,) = await store.add_memories(
        [memory(text="worse", workflow_id="wf-3", quality=None)], rows(at(30)), 0.9
    )
    assert (again.id, again.count, again.text, again.quality) == (kept.id, 3, "better", 0.95)
    assert again.workflow_id == "wf-3"
    assert np.array_equal((await store.memory_matrix("mini"))[1], rows(at(20)))
    assert await store.memories() == [again]


async def test_a_lesson_less_alike_than_the_threshold_is_added(store: SqlStore) -> None:
    (kept,) = await store.add_memories([memory(text="first")], rows(at(0)), 0.9)
    # cos(30°) ≈ 0.866 < 0.9
    (added,) = await store.add_memories([memory(text="second")], rows(at(30)), 0.9)
    assert added.id != kept.id and added.count == 1
    # the same pair at a lower threshold merges
    (merged,) = await store.add_memories([memory(text="third")], rows(at(30)), 0.85)
    assert merged.id == added.id and merged.count == 2  # the nearest, not the first
    assert len(await store.memories()) == 2


async def test_lessons_of_one_call_merge_with_each_other(store: SqlStore) -> None:
    kept = await store.add_memories(
        [
            memory(text="a", workflow_id="wf-1", quality=0.7),
            memory(text="b", workflow_id="wf-1", quality=0.9),
            memory(text="elsewhere", workflow_id="wf-1"),
            memory(text="c", workflow_id="wf-1", quality=0.8),
        ],
        rows(at(0), at(10), at(90), at(5)),
        0.9,
    )
    assert kept[0].id == kept[1].id == kept[3].id != kept[2].id
    assert kept[0] == kept[1] == kept[3]  # each as the row ends the call
    assert (kept[0].count, kept[0].text, kept[0].quality) == (3, "b", 0.9)
    memories, matrix = await store.memory_matrix("mini")
    assert [m.text for m in memories] == ["b", "elsewhere"]
    assert np.array_equal(matrix, rows(at(10), at(90)))


async def test_only_collective_lessons_of_one_embedder_merge(store: SqlStore) -> None:
    same = rows(at(0), at(0))
    episodic = await store.add_memories([memory("episodic"), memory("episodic")], same, 0.9)
    agent = await store.add_memories(
        [memory("agent", agent="x"), memory("agent", agent="x")], same, 0.9
    )
    lessons = await store.add_memories(
        [memory(embedder="mini"), memory(embedder="large")], same, 0.9
    )
    assert len({m.id for m in episodic + agent + lessons}) == 6
    assert all(m.count == 1 for m in episodic + agent + lessons)
    # an episodic memory is no lesson to merge into
    (lesson,) = await store.add_memories([memory()], rows(at(0)), 0.9)
    assert lesson.id == lessons[0].id and lesson.count == 2
    assert len((await store.memory_matrix("large"))[0]) == 1
    assert len((await store.memory_matrix("mini"))[0]) == 5


async def test_two_runs_learning_one_lesson_at_once_merge_it(store_target: StoreTarget) -> None:
    stores = [await store_target.open() for _ in range(4)]
    try:
        await asyncio.gather(
            *(
                s.add_memories([memory(workflow_id=f"wf-{i}")], rows(at(i)), 0.9)
                for i, s in enumerate(stores)
            )
        )
        (lesson,) = await stores[0].memories()
        assert lesson.count == 4
    finally:
        for s in stores:
            await s.aclose()


async def test_memory_matrix_round_trips_vectors_exactly(store: SqlStore) -> None:
    vectors = np.random.default_rng(3).standard_normal((20, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    kept = await store.add_memories(
        [memory("episodic", f"run {i}", f"wf-{i}") for i in range(20)], vectors, 0.9
    )
    memories, matrix = await store.memory_matrix("mini")
    assert [m.id for m in memories] == sorted(m.id for m in kept)
    assert matrix.dtype == np.float32 and np.array_equal(matrix, vectors)
    none, empty = await store.memory_matrix("nobody")
    assert none == [] and empty.shape == (0, 0) and empty.dtype == np.float32


async def test_forget_by_ids_run_or_everything(store: SqlStore, other: SqlStore) -> None:
    kept = await store.add_memories(
        [
            memory("episodic", "r1", "wf-1"),
            memory("agent", "a1", "wf-1", agent="x"),
            memory("episodic", "r2", "wf-2"),
            memory("agent", "a2", "wf-2", agent="x"),
            memory("episodic", "r3", "wf-3"),
        ],
        rows(at(0), at(10), at(20), at(30), at(40)),
        0.9,
    )
    (theirs,) = await other.add_memories([memory("episodic", "o", "wf-1")], rows(at(0)), 0.9)
    generation = await store.memory_generation()
    assert await store.forget([kept[0].id, 10**12, -1, theirs.id, 999_999]) == 1
    assert await store.memory_generation() != generation
    generation = await store.memory_generation()
    assert await store.forget([kept[0].id]) == 0  # already gone: nothing changes
    assert await store.forget(workflow_id="wf-404") == 0
    assert await store.memory_generation() == generation
    assert await store.forget(workflow_id="wf-2") == 2
    assert [m.text for m in await store.memories()] == ["r3", "a1"]
    assert await store.forget(everything=True) == 2
    assert await store.memories() == []
    assert await other.memories() == [theirs]  # another workspace's memories stay


async def test_forget_takes_exactly_one_selector(store: SqlStore) -> None:
    selectors: list[dict[str, Any]] = [
        {},
        {"ids": []},
        {"ids": [1], "workflow_id": "wf"},
        {"workflow_id": "wf", "everything": True},
    ]
    for kwargs in selectors:
        with pytest.raises(ValueError, match="exactly one of"):
            await store.forget(**kwargs)


async def test_forget_many_ids_in_batches(store: SqlStore) -> None:
    n = 1_200
    vectors = np.tile(at(0), (n, 1))
    kept = await store.add_memories([memory("episodic", f"r{i}") for i in range(n)], vectors, 0.9)
    assert await store.forget([m.id for m in kept[:1_100]]) == 1_100
    assert len(await store.memories(limit=MAX_MEMORIES)) == 100


async def test_workspaces_keep_their_memories_apart(store: SqlStore, other: SqlStore) -> None:
    (mine,) = await store.add_memories([memory(text="mine")], rows(at(0)), 0.9)
    assert await other.memories() == [] and (await other.memory_matrix("mini"))[0] == []
    assert await other.memory_generation() == 0
    (theirs,) = await other.add_memories([memory(text="theirs")], rows(at(0)), 0.9)
    assert theirs.id != mine.id and theirs.count == 1  # no merging across workspaces
    assert await other.forget(everything=True) == 1
    assert await store.memories() == [mine]


async def test_the_generation_changes_with_each_change(store: SqlStore) -> None:
    seen = [await store.memory_generation()]
    await store.add_memories([memory()], rows(at(0)), 0.9)
    seen.append(await store.memory_generation())
    await store.add_memories([memory()], rows(at(0)), 0.9)  # a merge is a change too
    seen.append(await store.memory_generation())
    await store.memories()
    await store.memory_matrix("mini")
    assert await store.memory_generation() == seen[-1]
    await store.forget(everything=True)
    seen.append(await store.memory_generation())
    assert len(set(seen)) == 4


async def test_a_missing_table_is_a_store_error(store: SqlStore) -> None:
    async with store.engine.begin() as conn:
        await conn.execute(text("DROP TABLE memories"))
    with pytest.raises(StoreError, match="the store failed in add_memories"):
        await store.add_memories([memory()], rows(at(0)), 0.9)


async def test_keep_forgets_the_least_recently_updated_beyond_it(
    store: SqlStore, other: SqlStore
) -> None:
    await other.add_memories([memory("episodic", "theirs")], rows(at(0)), 0.9)
    for batch in range(3):
        texts = [f"run {batch} memory {i}" for i in range(4)]
        await store.add_memories(
            [memory("episodic", t) for t in texts], np.tile(at(0), (4, 1)), 0.9, keep=6
        )
    kept = await store.memories(limit=100)
    assert len(kept) == 6
    assert {m.text for m in kept} >= {f"run 2 memory {i}" for i in range(4)}  # the call's own
    assert all(m.text.startswith(("run 1", "run 2")) for m in kept)
    # a keep below one call's memories keeps that call's all the same; others are untouched
    await store.add_memories(
        [memory("agent", f"x{i}") for i in range(3)], np.tile(at(0), (3, 1)), 0.9, keep=1
    )
    assert sorted(m.text for m in await store.memories(limit=100)) == ["x0", "x1", "x2"]
    assert [m.text for m in await other.memories()] == ["theirs"]
