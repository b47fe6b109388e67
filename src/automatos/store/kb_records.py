"""The knowledge base in SQL: documents, their chunks and vectors, and the generation counter.

:class:`KbRecords` is the half of :class:`~automatos.store.sql.SqlStore` that implements
:class:`~automatos.retrieval.base.KnowledgeStore`, scoped to the store's workspace.

A document is keyed by the sha256 of its path (``path_key``): a path may be longer than
PostgreSQL can index. Vectors are kept as float32 little-endian bytes, one row per chunk, and
read back with one :func:`numpy.frombuffer` over all of them, so that loading the index of a
large knowledge base costs one query and one copy.

Every change runs in one transaction that holds the workspace's knowledge-base lock (see
:func:`writing`) and bumps its generation, so that two processes adding the same file cannot
leave the chunks of both, and an index loaded in memory knows when to reload.

The helpers of this module (:func:`writing`, :func:`bump`, :func:`generation`,
:func:`check_vectors`, :func:`pack`, :func:`unpack`, :func:`now`, :func:`aware`) serve
:mod:`automatos.store.memory_records` too.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import delete, func, insert, or_, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from automatos.errors import StoreError
from automatos.retrieval.base import ChunkRecord, KbDocument, Vectors
from automatos.store.failures import typed
from automatos.store.tables import generations, kb_chunks, kb_documents

__all__ = [
    "IN_BATCH",
    "KbRecords",
    "aware",
    "bump",
    "check_vectors",
    "generation",
    "now",
    "pack",
    "path_key",
    "unpack",
    "writing",
]

IN_BATCH = 500
"""Values per ``IN (...)`` list: SQLite and asyncpg both bound a statement's parameters."""

_KB = "kb"
_CHUNK_COLUMNS = (
    kb_chunks.c.id,
    kb_chunks.c.path,
    kb_chunks.c.ordinal,
    kb_chunks.c.heading,
    kb_chunks.c.text,
    kb_chunks.c.tokens,
    kb_chunks.c.entropy,
    kb_chunks.c.page,
)
_MAX_CHUNK_ID = 64  # the width of kb_chunks.id


def now() -> datetime:
    """The current time, in UTC."""
    return datetime.now(UTC)


def aware(moment: datetime | None) -> datetime | None:
    """``moment`` in UTC: SQLite gives back the naive UTC time it was given."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def path_key(path: str) -> str:
    """The key of a document: the hex sha256 of its path."""
    return hashlib.sha256(path.encode("utf-8", "surrogatepass")).hexdigest()


def _lock_key(workspace: str, subject: str) -> int:
    """A PostgreSQL advisory lock key (a signed 64-bit integer) for a workspace's subject."""
    digest = hashlib.sha256(f"automatos\0{subject}\0{workspace}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextlib.asynccontextmanager
async def writing(
    engine: AsyncEngine, workspace: str, subject: str
) -> AsyncIterator[AsyncConnection]:
    """A transaction that holds the lock of ``subject`` (``kb``, ``memory``) in ``workspace``
    from its start: on SQLite the database's write lock (``BEGIN IMMEDIATE``: a deferred
    transaction that read first could not upgrade to writing once another had written); on
    PostgreSQL a transaction-level advisory lock, which readers never wait for and which needs
    no row to exist yet. Two writers of one subject take turns; its readers never wait."""
    async with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            await conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            await conn.execute(
                text("SELECT pg_advisory_xact_lock(:key)"),
                {"key": _lock_key(workspace, subject)},
            )
        yield conn


async def bump(conn: AsyncConnection, workspace: str, subject: str) -> None:
    """Change the generation of ``subject`` in ``workspace`` (in the caller's transaction)."""
    insert_into = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = insert_into(generations).values(
        workspace_id=workspace, subject=subject, generation=1
    )
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=["workspace_id", "subject"],
            set_={"generation": generations.c.generation + 1},
        )
    )


async def generation(engine: AsyncEngine, workspace: str, subject: str) -> int:
    """The generation of ``subject`` in ``workspace``: 0 until its first change."""
    g = generations.c
    async with engine.connect() as conn:
        value = await conn.scalar(
            select(g.generation).where(g.workspace_id == workspace, g.subject == subject)
        )
    return int(value or 0)


def check_vectors(vectors: Vectors, rows: int, what: str) -> None:
    """Refuse ``vectors`` unless it is a 2-D float32 array of ``rows`` finite rows.

    Raises:
        ValueError: naming what is wrong with it.
    """
    if not isinstance(vectors, np.ndarray):
        raise ValueError(f"the vectors of {what} are a {type(vectors).__name__}, not an array")
    if vectors.ndim != 2:
        raise ValueError(
            f"the vectors of {what} have shape {vectors.shape}: one row per item is 2-D"
        )
    if vectors.dtype != np.float32:
        raise ValueError(f"the vectors of {what} are {vectors.dtype}, not float32")
    if vectors.shape[0] != rows:
        raise ValueError(
            f"{what} has {rows} item(s) but its vectors have {vectors.shape[0]} row(s)"
        )
    if rows and vectors.shape[1] == 0:
        raise ValueError(f"the vectors of {what} have no dimensions")
    if not np.isfinite(vectors).all():
        raise ValueError(f"the vectors of {what} hold NaN or infinite values")


def pack(vectors: Vectors) -> list[bytes]:
    """Each row of ``vectors`` as float32 little-endian bytes."""
    little = np.ascontiguousarray(vectors, dtype="<f4")
    return [row.tobytes() for row in little]


def unpack(blobs: Sequence[bytes], dimensions: Sequence[int], what: str) -> Vectors:
    """The (n, d) float32 matrix of ``n`` rows stored by :func:`pack` (``(0, 0)`` for none),
    writable and owned by the caller.

    Raises:
        StoreError: the rows are not all of one dimension (not retryable).
    """
    if not blobs:
        return np.zeros((0, 0), dtype=np.float32)
    shapes = set(dimensions)
    width = dimensions[0]
    if len(shapes) != 1 or any(len(blob) != 4 * width for blob in blobs):
        found = ", ".join(str(d) for d in sorted(shapes | {len(b) // 4 for b in blobs}))
        raise StoreError(
            f"the store holds vectors of {what} of different dimensions ({found}): the "
            "embedder's name must change with its dimension; add the items again",
            transient=False,
        )
    flat = np.frombuffer(bytearray(b"".join(blobs)), dtype="<f4")
    return flat.reshape(len(blobs), width).astype(np.float32, copy=False)


def _chunk(row: Any) -> ChunkRecord:
    return ChunkRecord(
        id=row.id,
        path=row.path,
        ordinal=row.ordinal,
        heading=row.heading,
        text=row.text,
        tokens=row.tokens,
        entropy=row.entropy,
        page=row.page,
    )


def _document(row: Any) -> KbDocument:
    return KbDocument(
        path=row.path,
        kind=row.kind,
        sha256=row.sha256,
        chunks=row.chunks,
        tokens=row.tokens,
        embedder=row.embedder,
        tokenizer=row.tokenizer,
        added_at=aware(row.added_at),
    )


def _check_put(document: KbDocument, chunks: Sequence[ChunkRecord], vectors: Vectors) -> None:
    what = f"the chunks of {document.path!r}"
    check_vectors(vectors, len(chunks), what)
    if document.chunks != len(chunks):
        raise ValueError(
            f"the document {document.path!r} says it has {document.chunks} chunk(s) but "
            f"{len(chunks)} were given"
        )
    seen: set[str] = set()
    for record in chunks:
        if record.path != document.path:
            raise ValueError(
                f"chunk {record.id!r} names the path {record.path!r}, not its document's "
                f"{document.path!r}"
            )
        if not record.id or len(record.id) > _MAX_CHUNK_ID:
            raise ValueError(f"chunk id {record.id!r} is empty or over {_MAX_CHUNK_ID} characters")
        if record.id in seen:
            raise ValueError(f"two chunks of {document.path!r} have the id {record.id!r}")
        seen.add(record.id)


class KbRecords:
    """:class:`~automatos.retrieval.base.KnowledgeStore` on the store's engine and workspace."""

    engine: AsyncEngine
    workspace: str

    @typed
    async def kb_document(self, path: str) -> KbDocument | None:
        """The document kept under ``path``, if any."""
        d = kb_documents.c
        query = select(kb_documents).where(
            d.workspace_id == self.workspace, d.path_key == path_key(path), d.path == path
        )
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return _document(row) if row is not None else None

    @typed
    async def kb_documents(self) -> list[KbDocument]:
        """Every document, by path (by code point, the same on both databases)."""
        query = select(kb_documents).where(kb_documents.c.workspace_id == self.workspace)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return sorted((_document(row) for row in rows), key=lambda doc: doc.path)

    @typed
    async def kb_put(
        self, document: KbDocument, chunks: Sequence[ChunkRecord], vectors: Vectors
    ) -> None:
        """Keep ``document`` with these chunks (row i of ``vectors`` is chunk i's), replacing
        whatever was kept under its path, in one transaction; ``added_at`` is now.

        Raises:
            ValueError: ``vectors`` is not a 2-D float32 array of one finite row per chunk, a
                chunk names another path, two chunks share an id, or ``document.chunks`` is
                not the number of chunks.
        """
        _check_put(document, chunks, vectors)
        key = path_key(document.path)
        fields = {
            "path": document.path,
            "kind": document.kind,
            "sha256": document.sha256,
            "chunks": document.chunks,
            "tokens": document.tokens,
            "embedder": document.embedder,
            "tokenizer": document.tokenizer,
            "added_at": now(),
        }
        insert_into = (
            postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert
        )
        upsert = insert_into(kb_documents).values(
            workspace_id=self.workspace, path_key=key, **fields
        )
        upsert = upsert.on_conflict_do_update(
            index_elements=["workspace_id", "path_key"],
            set_={name: upsert.excluded[name] for name in fields},
        )
        dimension = int(vectors.shape[1])
        rows = [
            {
                "workspace_id": self.workspace,
                "id": record.id,
                "path_key": key,
                "path": record.path,
                "ordinal": record.ordinal,
                "heading": record.heading,
                "text": record.text,
                "tokens": record.tokens,
                "entropy": record.entropy,
                "page": record.page,
                "embedder": document.embedder,
                "dimension": dimension,
                "vector": blob,
            }
            for record, blob in zip(chunks, pack(vectors), strict=True)
        ]
        c = kb_chunks.c
        async with writing(self.engine, self.workspace, _KB) as conn:
            await conn.execute(upsert)  # the document first: its chunks refer to it
            await conn.execute(
                delete(kb_chunks).where(c.workspace_id == self.workspace, c.path_key == key)
            )
            if rows:
                await conn.execute(insert(kb_chunks), rows)
            await bump(conn, self.workspace, _KB)

    @typed
    async def kb_remove(self, paths: Sequence[str]) -> list[str]:
        """Remove these documents and their chunks; a path that is a directory's removes every
        document under it (``docs`` removes ``docs/a.md``, not ``docs2/b.md``). Returns the
        paths removed, sorted; the generation changes only if one was. An empty path names
        nothing."""
        d = kb_documents.c
        wanted = [p for p in dict.fromkeys(paths) if p]
        if not wanted:
            return []
        removed: dict[str, str] = {}  # path_key -> path
        async with writing(self.engine, self.workspace, _KB) as conn:
            for start in range(0, len(wanted), 100):
                batch = wanted[start : start + 100]
                # A prefix compared with substr, not LIKE: LIKE is case-blind on SQLite and
                # its wildcards would need escaping.
                under = [
                    func.substr(d.path, 1, len(prefix)) == prefix
                    for prefix in (p if p.endswith("/") else p + "/" for p in batch)
                ]
                query = select(d.path_key, d.path).where(
                    d.workspace_id == self.workspace,
                    or_(d.path_key.in_([path_key(p) for p in batch]), *under),
                )
                for key, path in (await conn.execute(query)).all():
                    removed[key] = path
            keys = list(removed)
            for start in range(0, len(keys), IN_BATCH):
                batch = keys[start : start + IN_BATCH]
                await conn.execute(
                    delete(kb_chunks).where(
                        kb_chunks.c.workspace_id == self.workspace,
                        kb_chunks.c.path_key.in_(batch),
                    )
                )
                await conn.execute(
                    delete(kb_documents).where(
                        d.workspace_id == self.workspace, d.path_key.in_(batch)
                    )
                )
            if removed:
                await bump(conn, self.workspace, _KB)
        return sorted(removed.values())

    @typed
    async def kb_chunks(self, ids: Sequence[str]) -> list[ChunkRecord]:
        """The chunks of these ids that exist, in the order asked (an id asked twice comes
        twice)."""
        c = kb_chunks.c
        wanted = list(dict.fromkeys(ids))
        found: dict[str, ChunkRecord] = {}
        async with self.engine.connect() as conn:
            for start in range(0, len(wanted), IN_BATCH):
                query = select(*_CHUNK_COLUMNS).where(
                    c.workspace_id == self.workspace, c.id.in_(wanted[start : start + IN_BATCH])
                )
                for row in (await conn.execute(query)).all():
                    found[row.id] = _chunk(row)
        return [found[i] for i in ids if i in found]

    @typed
    async def kb_matrix(self, embedder: str) -> tuple[list[ChunkRecord], Vectors]:
        """Every chunk embedded by ``embedder`` (by path, by code point, then ordinal) and
        their vectors, one row each; chunks of other embedders are left out. No chunk: an
        empty list and a ``(0, 0)`` matrix.

        Raises:
            StoreError: the embedder's vectors are not all of one dimension (not retryable).
        """
        c = kb_chunks.c
        query = select(*_CHUNK_COLUMNS, c.dimension, c.vector).where(
            c.workspace_id == self.workspace, c.embedder == embedder
        )
        async with self.engine.connect() as conn:
            rows = sorted((await conn.execute(query)).all(), key=lambda r: (r.path, r.ordinal))
        matrix = unpack(
            [row.vector for row in rows], [row.dimension for row in rows], f"embedder {embedder!r}"
        )
        return [_chunk(row) for row in rows], matrix

    @typed
    async def kb_generation(self) -> int:
        """A number that changes whenever the workspace's knowledge base changes (0 before
        its first change)."""
        return await generation(self.engine, self.workspace, _KB)
