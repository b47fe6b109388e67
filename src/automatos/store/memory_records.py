"""Memories in SQL: what workflows leave for later ones, and the generation counter.

:class:`MemoryRecords` is the half of :class:`~automatos.store.sql.SqlStore` that implements
:class:`~automatos.memory.base.MemoryStore`, scoped to the store's workspace.

Adding memories runs in one transaction that holds the workspace's memory lock (see
:func:`~automatos.store.kb_records.writing`), so that two runs learning the same lesson at
once merge it rather than keep it twice: the stored collective lessons are read under the
lock and compared with each new one (a dot product of unit vectors) and with those added
before it in the same call.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import ColumnElement, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from automatos.memory.base import MEMORY_KINDS, Memory, MemoryKind
from automatos.retrieval.base import Vectors
from automatos.store.failures import typed
from automatos.store.kb_records import (
    IN_BATCH,
    aware,
    bump,
    check_vectors,
    generation,
    now,
    pack,
    unpack,
    writing,
)
from automatos.store.tables import memories as memories_table

__all__ = ["MAX_MEMORIES", "MemoryRecords"]

MAX_MEMORIES = 10_000
"""The most memories one call of :meth:`MemoryRecords.memories` returns."""

_MEMORY = "memory"
_MAX_ID = 2**31 - 1
"""Ids are 32-bit integers in both databases: a larger one names no memory (and would be an
overflow error of the driver)."""

_m = memories_table.c
_INSERT = insert(memories_table)
_INSERT_IDS = insert(memories_table).returning(_m.id, sort_by_parameter_order=True)
_FIELDS = (
    _m.id,
    _m.kind,
    _m.text,
    _m.workflow_id,
    _m.agent,
    _m.task_type,
    _m.quality,
    _m.succeeded,
    _m["count"],
    _m.tokens,
    _m.entropy,
    _m.embedder,
    _m.created_at,
    _m.updated_at,
)
_CONTENT = ("text", "quality", "tokens", "entropy", "task_type", "agent", "succeeded")
"""What a merged lesson takes from the better-scored of the two: the text and what goes with
it (its vector is taken with it)."""


def _memory(row: Mapping[Any, Any]) -> Memory:
    """The memory of a row (a mapping: ``count`` is also a method of a row's tuple)."""
    return Memory(
        id=row["id"],
        kind=row["kind"],
        text=row["text"],
        workflow_id=row["workflow_id"],
        agent=row["agent"],
        task_type=row["task_type"],
        quality=row["quality"],
        succeeded=row["succeeded"],
        count=row["count"],
        tokens=row["tokens"],
        entropy=row["entropy"],
        embedder=row["embedder"],
        created_at=aware(row["created_at"]),
        updated_at=aware(row["updated_at"]),
    )


def _rank(quality: float | None) -> float:
    return -math.inf if quality is None else quality


def _check_add(
    memories: Sequence[Memory], vectors: Vectors | None, duplicate_cosine: float
) -> None:
    if vectors is not None:
        check_vectors(vectors, len(memories), "the memories")
    if not 0.0 < duplicate_cosine <= 1.0:
        raise ValueError(f"duplicate_cosine must be in (0, 1], got {duplicate_cosine!r}")
    for memory in memories:
        if memory.kind not in MEMORY_KINDS:
            raise ValueError(
                f"unknown memory kind {memory.kind!r}; the kinds are {', '.join(MEMORY_KINDS)}"
            )


@dataclasses.dataclass
class _Lessons:
    """The collective lessons of one embedder that a new one may merge into: their ids and
    unit vectors, stored rows first, then those added in this call."""

    ids: list[int]
    matrix: npt.NDArray[np.float32]

    def nearest(self, vector: npt.NDArray[np.float32]) -> tuple[int, float] | None:
        """The row nearest ``vector`` and its cosine (ties: the first), if there is a row."""
        if not self.ids:
            return None
        scores = self.matrix @ vector
        row = int(np.argmax(scores))
        return row, float(scores[row])

    def add(self, memory_id: int, vector: npt.NDArray[np.float32]) -> None:
        self.ids.append(memory_id)
        self.matrix = np.vstack([self.matrix, vector[np.newaxis, :]])


class MemoryRecords:
    """:class:`~automatos.memory.base.MemoryStore` on the store's engine and workspace."""

    engine: AsyncEngine
    workspace: str

    @typed
    async def add_memories(
        self,
        memories: Sequence[Memory],
        vectors: Vectors | None,
        duplicate_cosine: float,
        keep: int | None = None,
        replacing: Sequence[int] = (),
    ) -> list[Memory]:
        """Keep ``memories`` (row i of ``vectors`` is memory i's) in one transaction and return
        them as kept, ids set, in the order given; several merged into one row are returned
        each as that row ends the call.

        A ``collective`` memory whose cosine with a kept collective memory of the same
        embedder (or one added before it in this call) is at least ``duplicate_cosine`` is
        merged into the nearest one instead: its count goes up by one, its ``workflow_id``
        becomes the new memory's, ``updated_at`` now, and the text (with its vector, quality,
        tokens, entropy, task type, agent and success) of the better-scored of the two is kept
        (no quality ranks lowest; a tie keeps the kept one). Other kinds are always added.
        With ``keep``, the workspace then keeps its ``keep`` most recently updated memories
        and forgets the rest, in the same transaction (recall reads them all, so their
        number must be bounded).

        Without ``vectors`` the memories are kept pending (no vector, nothing merged) until
        :meth:`pending_memories` are embedded and added again ``replacing`` their ids: the
        pending rows are deleted in the same transaction.

        Raises:
            ValueError: ``vectors`` is not a 2-D float32 array of one finite row per memory,
                a kind is unknown, or ``duplicate_cosine`` is not in (0, 1].
        """
        _check_add(memories, vectors, duplicate_cosine)
        if not memories:
            return []
        if vectors is None:
            return await self._add_pending(memories, keep)
        moment = now()
        kept: dict[int, Memory] = {}
        order: list[int] = []
        async with writing(self.engine, self.workspace, _MEMORY) as conn:
            for start in range(0, len(replacing), IN_BATCH):
                batch = [int(i) for i in replacing[start : start + IN_BATCH]]
                await conn.execute(
                    delete(memories_table).where(
                        _m.workspace_id == self.workspace, _m.id.in_(batch)
                    )
                )
            lessons = await self._lessons(
                conn,
                {m.embedder for m in memories if m.kind == "collective"},
                int(vectors.shape[1]),
            )
            for memory, vector in zip(memories, vectors, strict=True):
                pool = lessons.get(memory.embedder) if memory.kind == "collective" else None
                nearest = pool.nearest(vector) if pool is not None else None
                if pool is not None and nearest is not None and nearest[1] >= duplicate_cosine:
                    row, _ = nearest
                    target = pool.ids[row]
                    if target not in kept:
                        kept[target] = await self._read(conn, target)
                    merged, better = _merge(kept[target], memory, moment)
                    values: dict[str, Any] = {
                        "count": merged.count,
                        "workflow_id": merged.workflow_id,
                        "updated_at": moment,
                    }
                    if better:
                        values |= {name: getattr(merged, name) for name in _CONTENT}
                        values["vector"] = pack(vector[np.newaxis, :])[0]
                        pool.matrix[row] = vector
                    await conn.execute(
                        update(memories_table).where(_m.id == target).values(**values)
                    )
                    kept[target] = merged
                    order.append(target)
                    continue
                added = dataclasses.replace(memory, created_at=moment, updated_at=moment)
                new_id = await self._insert(conn, added, vector)
                kept[new_id] = dataclasses.replace(added, id=new_id)
                order.append(new_id)
                if pool is not None:
                    pool.add(new_id, vector)
            if keep is not None:
                await self._keep_newest(conn, keep, set(order))
            await bump(conn, self.workspace, _MEMORY)
        return [kept[memory_id] for memory_id in order]

    async def _add_pending(self, memories: Sequence[Memory], keep: int | None) -> list[Memory]:
        moment = now()
        kept: list[Memory] = []
        added = [dataclasses.replace(m, created_at=moment, updated_at=moment) for m in memories]
        async with writing(self.engine, self.workspace, _MEMORY) as conn:
            # a run's memories in one statement, their ids in the order given
            for start in range(0, len(added), IN_BATCH):
                part = added[start : start + IN_BATCH]
                rows = [self._row(memory, None) for memory in part]
                ids = (await conn.execute(_INSERT_IDS, rows)).scalars().all()
                kept += [dataclasses.replace(m, id=int(i)) for m, i in zip(part, ids, strict=True)]
            if keep is not None:
                await self._keep_newest(conn, keep, {m.id for m in kept})
            await bump(conn, self.workspace, _MEMORY)
        return kept

    @typed
    async def pending_memories(self, embedder: str, limit: int = 1_000) -> list[Memory]:
        """Memories kept without a vector for ``embedder`` to embed, oldest first."""
        query = (
            select(*_FIELDS)
            .where(_m.workspace_id == self.workspace, _m.embedder == embedder, _m.vector.is_(None))
            .order_by(_m.id)
            .limit(limit)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [_memory(row) for row in rows]

    async def _keep_newest(self, conn: AsyncConnection, keep: int, fresh: set[int]) -> None:
        """Forget all but the ``keep`` most recently updated memories (never one of
        ``fresh``, this call's)."""
        mine = _m.workspace_id == self.workspace
        total = (await conn.execute(select(func.count()).where(mine))).scalar_one()
        excess = total - max(keep, len(fresh))
        if excess <= 0:
            return
        oldest = await conn.execute(
            select(_m.id).where(mine).order_by(_m.updated_at, _m.id).limit(excess + len(fresh))
        )
        doomed = [i for (i,) in oldest if i not in fresh][:excess]
        for start in range(0, len(doomed), IN_BATCH):
            batch = doomed[start : start + IN_BATCH]
            await conn.execute(delete(memories_table).where(mine, _m.id.in_(batch)))

    async def _lessons(
        self, conn: AsyncConnection, embedders: set[str], dimension: int
    ) -> dict[str, _Lessons]:
        """The stored collective lessons of these embedders, of ``dimension`` (vectors of
        another cannot be compared: they are no lesson's duplicates)."""
        if not embedders:
            return {}
        query = (
            select(_m.id, _m.embedder, _m.dimension, _m.vector)
            .where(
                _m.workspace_id == self.workspace,
                _m.kind == "collective",
                _m.embedder.in_(sorted(embedders)),
                _m.dimension == dimension,
            )
            .order_by(_m.id)
        )
        rows = (await conn.execute(query)).all()
        out: dict[str, _Lessons] = {}
        for embedder in embedders:
            mine = [row for row in rows if row.embedder == embedder]
            matrix = unpack(
                [row.vector for row in mine], [row.dimension for row in mine], "memories"
            )
            if not mine:
                matrix = np.zeros((0, dimension), dtype=np.float32)
            out[embedder] = _Lessons([row.id for row in mine], matrix)
        return out

    async def _read(self, conn: AsyncConnection, memory_id: int) -> Memory:
        query = select(*_FIELDS).where(_m.id == memory_id)
        return _memory((await conn.execute(query)).mappings().one())

    async def _insert(
        self, conn: AsyncConnection, memory: Memory, vector: npt.NDArray[np.float32] | None
    ) -> int:
        # one statement, its rows as parameters: building ``.values(...)`` for each row
        # costs more than the row's write
        result = await conn.execute(_INSERT, self._row(memory, vector))
        key = result.inserted_primary_key
        assert key is not None
        return int(key[0])

    def _row(self, memory: Memory, vector: npt.NDArray[np.float32] | None) -> dict[str, Any]:
        return {
            "workspace_id": self.workspace,
            "kind": memory.kind,
            "text": memory.text,
            "workflow_id": memory.workflow_id,
            "agent": memory.agent,
            "task_type": memory.task_type,
            "quality": memory.quality,
            "succeeded": memory.succeeded,
            "count": memory.count,
            "tokens": memory.tokens,
            "entropy": memory.entropy,
            "embedder": memory.embedder,
            "dimension": int(vector.shape[0]) if vector is not None else None,
            "vector": pack(vector[np.newaxis, :])[0] if vector is not None else None,
            "created_at": memory.created_at,
            "updated_at": memory.updated_at,
        }

    @typed
    async def memories(
        self,
        kind: MemoryKind | None = None,
        *,
        agent: str | None = None,
        workflow_id: str | None = None,
        limit: int = 50,
    ) -> list[Memory]:
        """Memories, newest first (by updated_at, then id), filtered as asked.

        Raises:
            ValueError: an unknown kind, or ``limit`` not in 1 to :data:`MAX_MEMORIES`.
        """
        if kind is not None and kind not in MEMORY_KINDS:
            raise ValueError(
                f"unknown memory kind {kind!r}; the kinds are {', '.join(MEMORY_KINDS)}"
            )
        if not 1 <= limit <= MAX_MEMORIES:
            raise ValueError(f"limit must be 1 to {MAX_MEMORIES:,}, got {limit}")
        where: list[ColumnElement[bool]] = [_m.workspace_id == self.workspace]
        if kind is not None:
            where.append(_m.kind == kind)
        if agent is not None:
            where.append(_m.agent == agent)
        if workflow_id is not None:
            where.append(_m.workflow_id == workflow_id)
        query = (
            select(*_FIELDS).where(*where).order_by(_m.updated_at.desc(), _m.id.desc()).limit(limit)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [_memory(row) for row in rows]

    @typed
    async def memory_matrix(self, embedder: str) -> tuple[list[Memory], Vectors]:
        """Every memory embedded by ``embedder`` (by id) and their vectors, one row each; no
        memory: an empty list and a ``(0, 0)`` matrix.

        Raises:
            StoreError: the embedder's vectors are not all of one dimension (not retryable).
        """
        query = (
            select(*_FIELDS, _m.dimension, _m.vector)
            .where(
                _m.workspace_id == self.workspace,
                _m.embedder == embedder,
                _m.vector.is_not(None),
            )
            .order_by(_m.id)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        matrix = unpack(
            [row["vector"] for row in rows],
            [row["dimension"] for row in rows],
            f"memories of embedder {embedder!r}",
        )
        return [_memory(row) for row in rows], matrix

    @typed
    async def memory_generation(self) -> int:
        """A number that changes whenever the workspace's memories change (0 before their
        first change)."""
        return await generation(self.engine, self.workspace, _MEMORY)

    @typed
    async def forget(
        self, ids: Sequence[int] = (), *, workflow_id: str | None = None, everything: bool = False
    ) -> int:
        """Delete these memories, or every memory of a run, or all of them; how many went.
        Ids of no memory of the workspace are passed over.

        Raises:
            ValueError: not exactly one of ``ids`` (not empty), ``workflow_id`` and
                ``everything`` was given.
        """
        chosen = bool(ids) + (workflow_id is not None) + bool(everything)
        if chosen != 1:
            raise ValueError(
                "forget takes exactly one of: ids (not empty), workflow_id, everything=True"
            )
        mine = _m.workspace_id == self.workspace
        selections: list[ColumnElement[bool]]
        if ids:
            wanted = sorted({i for i in ids if 1 <= i <= _MAX_ID})
            selections = [
                _m.id.in_(wanted[start : start + IN_BATCH])
                for start in range(0, len(wanted), IN_BATCH)
            ]
        elif workflow_id is not None:
            selections = [_m.workflow_id == workflow_id]
        else:
            selections = [mine]
        gone = 0
        async with writing(self.engine, self.workspace, _MEMORY) as conn:
            for selection in selections:
                result = await conn.execute(delete(memories_table).where(mine, selection))
                gone += result.rowcount
            if gone:
                await bump(conn, self.workspace, _MEMORY)
        return gone


def _merge(kept: Memory, new: Memory, moment: datetime) -> tuple[Memory, bool]:
    """``kept`` with ``new`` merged into it, and whether ``new`` was the better scored (so
    that its text and vector replace the kept ones)."""
    better = _rank(new.quality) > _rank(kept.quality)
    source = new if better else kept
    merged = dataclasses.replace(
        kept,
        count=kept.count + 1,
        workflow_id=new.workflow_id,
        updated_at=moment,
        **{name: getattr(source, name) for name in _CONTENT},
    )
    return merged, better
