"""The knowledge base's store (documents, chunks, vectors, generation) on SQLite and PostgreSQL,
and the 0005 migration that makes its tables."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest
from sqlalchemy import text

from automatos.errors import StoreError
from automatos.retrieval.base import ChunkRecord, KbDocument, KnowledgeStore
from automatos.store.database import create_engine, database_url
from automatos.store.sql import SqlStore
from tests.store.conftest import StoreTarget, alembic, differences, table_names

MINE = {"kb_documents", "kb_chunks", "memories", "generations"}


def unit_rows(n: int, d: int = 8, seed: int = 0) -> np.ndarray:
    m = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    m /= np.linalg.norm(m, axis=1, keepdims=True)
    return m


def records(path: str, n: int, tag: str = "") -> list[ChunkRecord]:
    return [
        ChunkRecord(
            id=hashlib.sha256(f"{path}\0{i}\0{tag}".encode()).hexdigest()[:32],
            path=path,
            ordinal=i,
            heading=f"Part {i}" if i % 2 else "",
            text=f"{tag}chunk {i} of {path}",
            tokens=10 + i,
            entropy=4.5 + i / 10,
            page=i + 1 if path.endswith(".pdf") else None,
        )
        for i in range(n)
    ]


def document(
    path: str, n: int, sha: str = "a" * 64, embedder: str = "mini", kind: str = "md"
) -> KbDocument:
    return KbDocument(path, kind, sha, n, 10 * n, embedder, "cl100k")


async def put(
    store: SqlStore, path: str, n: int, *, seed: int = 0, tag: str = "", **doc: Any
) -> tuple[list[ChunkRecord], np.ndarray]:
    chunks, vectors = records(path, n, tag), unit_rows(n, seed=seed)
    await store.kb_put(document(path, n, **doc), chunks, vectors)
    return chunks, vectors


@pytest.fixture
async def other(store_target: StoreTarget, store: SqlStore) -> AsyncIterator[SqlStore]:
    """A store of another workspace on the same database (opened after ``store``)."""
    s = await store_target.open(workspace="other")
    yield s
    await s.aclose()


async def test_the_store_is_a_knowledge_store(store: SqlStore) -> None:
    assert isinstance(store, KnowledgeStore)


async def test_a_document_its_chunks_and_vectors_come_back(store: SqlStore) -> None:
    b_chunks, b_vectors = await put(store, "/kb/b.pdf", 3, seed=1, kind="pdf")
    a_chunks, a_vectors = await put(store, "/kb/a.md", 2, seed=2)
    await put(store, "/kb/c.md", 4, seed=3, embedder="other-model")

    kept = await store.kb_document("/kb/b.pdf")
    assert kept is not None and kept.added_at is not None and kept.added_at.tzinfo is not None
    assert kept == KbDocument(
        "/kb/b.pdf", "pdf", "a" * 64, 3, 30, "mini", "cl100k", added_at=kept.added_at
    )
    assert await store.kb_document("/kb/nothing.md") is None
    assert [d.path for d in await store.kb_documents()] == ["/kb/a.md", "/kb/b.pdf", "/kb/c.md"]

    chunks, matrix = await store.kb_matrix("mini")
    assert chunks == a_chunks + b_chunks  # by path, then ordinal; c.md is another embedder's
    assert matrix.dtype == np.float32 and matrix.shape == (5, 8)
    assert np.array_equal(matrix, np.vstack([a_vectors, b_vectors]))  # exact, bit for bit
    assert [c.page for c in chunks] == [None, None, 1, 2, 3]

    wanted = [b_chunks[2].id, "missing", a_chunks[0].id, b_chunks[2].id]
    assert await store.kb_chunks(wanted) == [b_chunks[2], a_chunks[0], b_chunks[2]]
    assert await store.kb_chunks([]) == []


async def test_chunks_come_by_path_then_ordinal_whatever_the_order_given(store: SqlStore) -> None:
    chunks, vectors = records("/z.md", 12), unit_rows(12)
    shuffled = [11, 0, 5, 3, 10, 1, 2, 4, 9, 6, 8, 7]
    await store.kb_put(document("/z.md", 12), [chunks[i] for i in shuffled], vectors[shuffled])
    await put(store, "/Z.md", 1)  # upper case sorts first, by code point, on both databases
    await put(store, "/é.md", 1)
    got, matrix = await store.kb_matrix("mini")
    assert [c.path for c in got] == ["/Z.md", *["/z.md"] * 12, "/é.md"]
    assert got[1:13] == chunks and np.array_equal(matrix[1:13], vectors)


async def test_no_chunk_is_an_empty_matrix(store: SqlStore) -> None:
    chunks, matrix = await store.kb_matrix("mini")
    assert chunks == [] and matrix.shape == (0, 0) and matrix.dtype == np.float32
    await store.kb_put(document("/empty.md", 0), [], np.zeros((0, 0), np.float32))
    assert (await store.kb_document("/empty.md")) is not None
    assert (await store.kb_matrix("mini"))[1].shape == (0, 0)


async def test_new_bytes_replace_every_chunk_of_a_path(store: SqlStore) -> None:
    old, _ = await put(store, "/kb/a.md", 3, seed=1)
    await put(store, "/kb/b.md", 2, seed=2)
    new, new_vectors = await put(store, "/kb/a.md", 2, seed=9, tag="v2 ", sha="b" * 64)
    assert {c.id for c in old}.isdisjoint(c.id for c in new)
    assert await store.kb_chunks([c.id for c in old]) == []
    kept = await store.kb_document("/kb/a.md")
    assert kept is not None and kept.sha256 == "b" * 64 and kept.chunks == 2
    chunks, matrix = await store.kb_matrix("mini")
    assert chunks[:2] == new and np.array_equal(matrix[:2], new_vectors)
    assert [c.path for c in chunks] == ["/kb/a.md", "/kb/a.md", "/kb/b.md", "/kb/b.md"]
    # the same chunk ids again (the same text re-embedded) replace themselves
    await put(store, "/kb/a.md", 2, seed=10, tag="v2 ", sha="b" * 64)
    assert len((await store.kb_matrix("mini"))[0]) == 4


async def test_the_generation_changes_with_each_change_only(store: SqlStore) -> None:
    seen = [await store.kb_generation()]
    await put(store, "/kb/a.md", 2)
    seen.append(await store.kb_generation())
    await put(store, "/kb/a.md", 2, sha="c" * 64)
    seen.append(await store.kb_generation())
    assert len(set(seen)) == 3
    await store.kb_matrix("mini")
    await store.kb_chunks(["x"])
    assert await store.kb_remove(["/kb/none.md", "/elsewhere"]) == []
    assert await store.kb_generation() == seen[-1]
    assert await store.kb_remove(["/kb"]) == ["/kb/a.md"]
    assert await store.kb_generation() not in seen


async def test_a_directory_removes_what_is_under_it_only(store: SqlStore) -> None:
    for path in (
        "/docs/a.md",
        "/docs/sub/b.md",
        "/docs2/c.md",
        "/docs.md",
        "/DOCS/d.md",
        "/other/docs/e.md",
        "/notes.md",
        "/notes.md.bak",
    ):
        await put(store, path, 1)
    assert await store.kb_remove(["/docs"]) == ["/docs/a.md", "/docs/sub/b.md"]
    assert await store.kb_remove(["/notes.md", "/notes.md"]) == ["/notes.md"]
    await put(store, "/docs/a.md", 1)
    assert await store.kb_remove(["/docs/", "", "/missing"]) == ["/docs/a.md"]
    left = [d.path for d in await store.kb_documents()]
    assert left == ["/DOCS/d.md", "/docs.md", "/docs2/c.md", "/notes.md.bak", "/other/docs/e.md"]
    assert [c.path for c in (await store.kb_matrix("mini"))[0]] == left
    assert await store.kb_remove([]) == []


async def test_like_wildcards_in_paths_are_literal(store: SqlStore) -> None:
    for path in ("/a_b/x.md", "/axb/y.md", "/a%/z.md", "/abc/w.md", "/a\\b/v.md", "/a/b.md"):
        await put(store, path, 1)
    assert await store.kb_remove(["/a_b"]) == ["/a_b/x.md"]
    assert await store.kb_remove(["/a%"]) == ["/a%/z.md"]
    assert await store.kb_remove(["/a\\b"]) == ["/a\\b/v.md"]
    assert [d.path for d in await store.kb_documents()] == ["/a/b.md", "/abc/w.md", "/axb/y.md"]


async def test_a_path_longer_than_an_index_entry_is_kept(store: SqlStore) -> None:
    deep = "/" + "/".join(["dossier-très-profond"] * 250) + "/x.md"  # about 5,500 bytes
    chunks, _ = await put(store, deep, 2)
    assert (await store.kb_document(deep)) is not None
    assert (await store.kb_chunks([chunks[1].id])) == [chunks[1]]
    assert await store.kb_remove(["/dossier-très-profond/dossier-très-profond"]) == [deep]


@pytest.mark.parametrize(
    ("vectors", "chunks", "problem"),
    [
        (unit_rows(2), 3, "has 3 item"),
        (unit_rows(3)[0], 3, "2-D"),
        (unit_rows(3).astype(np.float64), 3, "not float32"),
        (np.full((3, 8), np.nan, np.float32), 3, "NaN or infinite"),
        (np.zeros((3, 0), np.float32), 3, "no dimensions"),
    ],
)
async def test_bad_vectors_are_refused(
    store: SqlStore, vectors: np.ndarray, chunks: int, problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        await store.kb_put(document("/a.md", chunks), records("/a.md", chunks), vectors)
    assert await store.kb_documents() == [] and await store.kb_generation() == 0


async def test_chunks_that_do_not_fit_their_document_are_refused(store: SqlStore) -> None:
    chunks = records("/a.md", 2)
    with pytest.raises(ValueError, match=r"names the path '/b\.md', not its document's '/a\.md'"):
        await store.kb_put(document("/a.md", 3), [*chunks, records("/b.md", 1)[0]], unit_rows(3))
    with pytest.raises(ValueError, match="says it has 5 chunk"):
        await store.kb_put(document("/a.md", 5), chunks, unit_rows(2))
    with pytest.raises(ValueError, match="have the id"):
        await store.kb_put(document("/a.md", 2), [chunks[0], chunks[0]], unit_rows(2))
    assert await store.kb_documents() == []


async def test_workspaces_do_not_see_each_others_knowledge(
    store: SqlStore, other: SqlStore
) -> None:
    chunks, vectors = await put(store, "/kb/a.md", 3)
    assert await other.kb_documents() == [] and await other.kb_document("/kb/a.md") is None
    assert await other.kb_chunks([c.id for c in chunks]) == []
    assert (await other.kb_matrix("mini"))[0] == []
    assert await other.kb_generation() == 0
    assert await other.kb_remove(["/kb"]) == []
    # the same path (and chunk ids) in both, kept apart
    theirs, _ = await put(other, "/kb/a.md", 3, seed=5)
    assert theirs == chunks
    await put(other, "/kb/a.md", 1, seed=6)
    assert np.array_equal((await store.kb_matrix("mini"))[1], vectors)
    assert await store.kb_remove(["/kb/a.md"]) == ["/kb/a.md"]
    assert [d.path for d in await other.kb_documents()] == ["/kb/a.md"]


async def test_two_writers_of_one_path_leave_one_of_them(store_target: StoreTarget) -> None:
    first, second = await store_target.open(), await store_target.open()
    try:
        for round_ in range(3):
            writes = [
                first.kb_put(
                    document("/a.md", 30, sha="1" * 64),
                    records("/a.md", 30, f"1{round_}"),
                    unit_rows(30, seed=1),
                ),
                second.kb_put(
                    document("/a.md", 20, sha="2" * 64),
                    records("/a.md", 20, f"2{round_}"),
                    unit_rows(20, seed=2),
                ),
            ]
            await asyncio.gather(*writes)
            kept = await first.kb_document("/a.md")
            chunks, matrix = await first.kb_matrix("mini")
            assert kept is not None and len(chunks) == kept.chunks == len(matrix)
            assert {c.text[:2] for c in chunks} == {kept.sha256[0] + str(round_)}
    finally:
        await first.aclose()
        await second.aclose()


async def test_ten_thousand_vectors_load_fast(store: SqlStore) -> None:
    d = 384
    for f in range(10):
        path = f"/kb/file{f:02}.md"
        await store.kb_put(document(path, 1000), records(path, 1000), unit_rows(1000, d, f))
    started = time.perf_counter()
    chunks, matrix = await store.kb_matrix("mini")
    took = time.perf_counter() - started
    assert len(chunks) == 10_000 and matrix.shape == (10_000, d)
    assert np.array_equal(matrix[-1000:], unit_rows(1000, d, 9))
    # a guard against loading row by row (minutes), not the speed target: a wall-clock bound
    # of 1 s failed at 1.04 s on the shared CI machine; speed is for benchmarks to measure
    assert took < 3.0, f"loading 10,000 vectors took {took:.2f} s"


async def test_a_missing_table_is_a_store_error(store: SqlStore) -> None:
    async with store.engine.begin() as conn:
        await conn.execute(text("DROP TABLE kb_chunks"))
    with pytest.raises(StoreError, match="the store failed in kb_matrix"):
        await store.kb_matrix("mini")


async def test_the_0005_migration_makes_the_tables_of_the_metadata(
    store_target: StoreTarget,
) -> None:
    engine = create_engine(database_url(store_target.settings), **store_target.options)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(alembic, "upgrade", "0004")
            assert not MINE & await conn.run_sync(table_names)
            await conn.run_sync(alembic, "upgrade", "0005")
            assert await conn.run_sync(table_names) >= MINE
            assert await conn.run_sync(differences, MINE) == []
            await conn.run_sync(alembic, "downgrade", "0004")
            assert not MINE & await conn.run_sync(table_names)
            assert "prompt_versions" in await conn.run_sync(table_names)
    finally:
        await engine.dispose()
    store = await store_target.open()  # upgrades again
    try:
        await put(store, "/a.md", 1)
        assert (await store.kb_generation()) == 1
    finally:
        await store.aclose()
