"""Stage 3's pool: the knowledge base and the memories as one matrix, reloaded only when the
store says either changed, each part on its own."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from automatos.memory.base import Memory
from automatos.retrieval.base import ChunkRecord, KbDocument, Vectors
from automatos.retrieval.pool import ContextSource
from automatos.settings import StoreSettings
from automatos.store.sql import SqlStore


class Fixed:
    name, dimension = "fixed", 4

    async def embed(self, texts: Sequence[str]) -> Vectors:
        return np.tile(np.eye(4, dtype=np.float32)[0], (len(texts), 1))


class Counting(SqlStore):
    """The real store, counting the loads of each part."""

    loads: dict[str, int]

    async def kb_matrix(self, embedder: str):  # type: ignore[no-untyped-def]
        self.loads["kb"] = self.loads.get("kb", 0) + 1
        return await super().kb_matrix(embedder)

    async def memory_matrix(self, embedder: str):  # type: ignore[no-untyped-def]
        self.loads["memory"] = self.loads.get("memory", 0) + 1
        return await super().memory_matrix(embedder)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Counting]:
    opened = await SqlStore.open(StoreSettings(data_dir=tmp_path))
    opened.__class__ = Counting
    opened.loads = {}
    yield opened  # type: ignore[misc]
    await opened.aclose()


async def _add_document(store: SqlStore, path: str, n: int) -> None:
    doc = KbDocument(path, "md", "sha", n, 10 * n, "fixed", "estimate")
    chunks = [ChunkRecord(f"{path}-{i}", path, i, "H", f"text {i}", 10, 5.0) for i in range(n)]
    await store.kb_put(doc, chunks, np.tile(np.eye(4, dtype=np.float32)[1], (n, 1)))


def _memory(text: str) -> Memory:
    return Memory(0, "episodic", text, "wf", None, None, None, None, 1, 5, 5.0, "fixed")


async def test_each_part_is_reloaded_only_when_it_changed(store: Counting) -> None:
    source = ContextSource(Fixed())
    await _add_document(store, "/docs/a.md", 3)
    pool = await source.pool(store, memories=True)
    assert len(pool) == 3 and pool.chunks == 3 and store.loads == {"kb": 1, "memory": 1}
    assert await source.pool(store, memories=True) is pool  # nothing changed: nothing read
    assert store.loads == {"kb": 1, "memory": 1}

    await store.add_memories([_memory("an earlier run")], await Fixed().embed(["x"]), 0.9)
    pool = await source.pool(store, memories=True)
    assert list(pool.kinds) == ["chunk"] * 3 + ["episodic"]
    assert store.loads == {"kb": 1, "memory": 2}  # the knowledge base was not read again
    assert pool.matrix.shape == (4, 4) and pool.ids[-1].startswith("memory:")

    await _add_document(store, "/docs/b.md", 2)
    pool = await source.pool(store, memories=True)
    assert pool.chunks == 5 and store.loads == {"kb": 2, "memory": 2}


async def test_without_recall_the_memories_are_not_read(store: Counting) -> None:
    await store.add_memories([_memory("an earlier run")], await Fixed().embed(["x"]), 0.9)
    pool = await ContextSource(Fixed()).pool(store, memories=False)
    assert len(pool) == 0 and pool.matrix.shape == (0, 4) and "memory" not in store.loads


async def test_another_store_or_workspace_is_another_pool(store: Counting, tmp_path: Path) -> None:
    source = ContextSource(Fixed())
    await _add_document(store, "/docs/a.md", 3)
    assert len(await source.pool(store, memories=True)) == 3
    other = await SqlStore.open(StoreSettings(data_dir=tmp_path, workspace="other"))
    try:
        assert len(await source.pool(other, memories=True)) == 0
        assert len(await source.pool(store, memories=True)) == 3
    finally:
        await other.aclose()


async def test_pending_memories_are_embedded_and_their_lessons_merged(store: Counting) -> None:
    lesson = Memory(0, "collective", "a lesson", "wf-1", None, None, 0.8, True, 1, 3, 5.0, "fixed")
    kept = await store.add_memories([lesson, lesson], None, 0.9)  # pending: nothing merged
    assert [m.count for m in kept] == [1, 1]
    assert len(await store.pending_memories("fixed")) == 2
    assert len(await ContextSource(Fixed()).pool(store, memories=True, duplicate_cosine=0.9)) == 1
    assert await store.pending_memories("fixed") == []
    [merged] = await store.memories("collective")
    assert merged.count == 2
