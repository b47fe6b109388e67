"""Everything stage 3 may choose from, as one matrix: the knowledge base's chunks and memories.

Loading the vectors of a large knowledge base costs more than selecting from them, so the pool
is kept between workflows and reloaded only when the store says the knowledge base or the
memories changed (their generation numbers) or another embedder is asked for.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from automatos.memory.base import Memory, MemoryStore
from automatos.retrieval.base import KnowledgeStore, Vectors
from automatos.retrieval.embedder import Embedder

__all__ = ["ContextSource", "Pool"]


@dataclass(frozen=True, slots=True, eq=False)
class Pool:
    """Candidate items by row: chunks first (by path and ordinal), then memories (by id).

    Attributes:
        ids: ``kb:<chunk id>`` or ``memory:<id>``.
        kinds: ``chunk``, ``episodic``, ``agent`` or ``collective``.
        titles: where each comes from (``path > heading``, ``agent memory of writer``).
        sources: what the prompt names each by (a chunk's path: its text has its headings).
        texts: what a model is shown.
        tokens: token counts, by ``tokenizers[row]``.
        tokenizers: the tokenizer each count is by.
        entropy: word entropy in bits.
        agents: the agent an ``agent`` memory belongs to (else empty).
        quality: a memory's recorded quality (NaN where it has none, and for chunks).
        matrix: unit vectors, one row each.
    """

    ids: tuple[str, ...]
    kinds: tuple[str, ...]
    titles: tuple[str, ...]
    sources: tuple[str, ...]
    texts: tuple[str, ...]
    tokens: npt.NDArray[np.int64]
    tokenizers: tuple[str, ...]
    entropy: npt.NDArray[np.float64]
    agents: tuple[str, ...]
    matrix: Vectors
    embedder: str
    quality: npt.NDArray[np.float64] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def qualities(self) -> npt.NDArray[np.float64]:
        """:attr:`quality`, NaN throughout when the pool was built without it."""
        if self.quality is None:
            return np.full(len(self.ids), math.nan)
        return self.quality

    @property
    def chunks(self) -> int:
        """How many of the items are chunks of the knowledge base."""
        return self.kinds.count("chunk")


class ContextSource:
    """The embedder stage 3 retrieves with, and the pool it last loaded.

    The knowledge base's part and the memories' part are kept apart: every run adds
    memories, and reloading a large knowledge base's vectors for that would cost each run
    more than its selection."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder
        self._parts: dict[str, tuple[tuple[object, ...], Pool]] = {}
        self._pool: tuple[tuple[object, ...], Pool] | None = None
        self._lock = asyncio.Lock()

    @property
    def ready(self) -> bool:
        """Whether the embedder embeds without loading a model first."""
        return bool(getattr(self.embedder, "ready", True))

    async def embed_pending(self, store: MemoryStore, duplicate_cosine: float) -> int:
        """Embed the memories runs kept pending, merging lessons as they go in; how many."""
        pending = await store.pending_memories(self.embedder.name)
        if not pending:
            return 0
        vectors = await self.embedder.embed([m.text for m in pending])
        fresh = [dataclasses.replace(m, id=0) for m in pending]
        await store.add_memories(
            fresh, vectors, duplicate_cosine, replacing=[m.id for m in pending]
        )
        return len(pending)

    async def pool(self, store: object, *, memories: bool, duplicate_cosine: float = 0.9) -> Pool:
        """The items of ``store``'s knowledge base (if it has one) and, with ``memories``, its
        memories (the pending ones embedded first, lessons merged at ``duplicate_cosine``),
        embedded by this source's embedder."""
        kb = store if isinstance(store, KnowledgeStore) else None
        mem = store if memories and isinstance(store, MemoryStore) else None
        if mem is not None:
            await self.embed_pending(mem, duplicate_cosine)
        name, dimension = self.embedder.name, self.embedder.dimension
        where = (id(store), getattr(store, "workspace", None), name)
        kb_key = (*where, await kb.kb_generation()) if kb is not None else None
        mem_key = (*where, await mem.memory_generation()) if mem is not None else None
        async with self._lock:
            if self._pool is not None and self._pool[0] == (kb_key, mem_key):
                return self._pool[1]
            parts: list[Pool] = []
            if kb is not None and kb_key is not None:
                parts.append(await self._part("kb", kb_key, lambda: _load_kb(kb, name, dimension)))
            if mem is not None and mem_key is not None:
                parts.append(
                    await self._part(
                        "memory", mem_key, lambda: _load_memories(mem, name, dimension)
                    )
                )
            pool = _joined(parts, name, dimension)
            self._pool = ((kb_key, mem_key), pool)
            return pool

    async def _part(
        self, which: str, key: tuple[object, ...], load: Callable[[], Awaitable[Pool]]
    ) -> Pool:
        cached = self._parts.get(which)
        if cached is not None and cached[0] == key:
            return cached[1]
        part = await load()
        self._parts[which] = (key, part)
        return part


@dataclass
class _Rows:
    """A pool being built, row by row."""

    ids: list[str] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    titles: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)
    tokenizers: list[str] = field(default_factory=list)
    entropy: list[float] = field(default_factory=list)
    agents: list[str] = field(default_factory=list)
    quality: list[float] = field(default_factory=list)

    def pool(self, matrix: Vectors, embedder: str) -> Pool:
        return Pool(
            ids=tuple(self.ids),
            kinds=tuple(self.kinds),
            titles=tuple(self.titles),
            sources=tuple(self.sources),
            texts=tuple(self.texts),
            tokens=np.asarray(self.tokens, dtype=np.int64),
            tokenizers=tuple(self.tokenizers),
            entropy=np.asarray(self.entropy, dtype=np.float64),
            agents=tuple(self.agents),
            matrix=matrix,
            embedder=embedder,
            quality=np.asarray(self.quality, dtype=np.float64),
        )


async def _load_kb(kb: KnowledgeStore, embedder: str, dimension: int) -> Pool:
    rows = _Rows()
    chunks, vectors = await kb.kb_matrix(embedder)
    tokenizer_of = {d.path: d.tokenizer for d in await kb.kb_documents()} if chunks else {}
    for c in chunks:
        rows.ids.append(f"kb:{c.id}")
        rows.kinds.append("chunk")
        rows.titles.append(f"{c.path} > {c.heading}" if c.heading else c.path)
        rows.sources.append(c.path)
        rows.texts.append(c.text)
        rows.tokens.append(c.tokens)
        rows.tokenizers.append(tokenizer_of.get(c.path, ""))
        rows.entropy.append(c.entropy)
        rows.agents.append("")
        rows.quality.append(math.nan)
    return rows.pool(vectors if chunks else _empty(dimension), embedder)


async def _load_memories(mem: MemoryStore, embedder: str, dimension: int) -> Pool:
    rows = _Rows()
    memories, vectors = await mem.memory_matrix(embedder)
    for m in memories:
        title = _memory_title(m)
        rows.ids.append(f"memory:{m.id}")
        rows.kinds.append(m.kind)
        rows.titles.append(title)
        rows.sources.append(title)
        rows.texts.append(m.text)
        rows.tokens.append(m.tokens)
        rows.tokenizers.append("")  # counted by whichever model wrote it: recounted when used
        rows.entropy.append(m.entropy)
        rows.agents.append(m.agent or "")
        rows.quality.append(math.nan if m.quality is None else m.quality)
    return rows.pool(vectors if memories else _empty(dimension), embedder)


def _joined(parts: list[Pool], embedder: str, dimension: int) -> Pool:
    parts = [p for p in parts if len(p)]
    if len(parts) == 1:
        return parts[0]
    if not parts:
        return _Rows().pool(_empty(dimension), embedder)
    return Pool(
        ids=tuple(x for p in parts for x in p.ids),
        kinds=tuple(x for p in parts for x in p.kinds),
        titles=tuple(x for p in parts for x in p.titles),
        sources=tuple(x for p in parts for x in p.sources),
        texts=tuple(x for p in parts for x in p.texts),
        tokens=np.concatenate([p.tokens for p in parts]),
        tokenizers=tuple(x for p in parts for x in p.tokenizers),
        entropy=np.concatenate([p.entropy for p in parts]),
        agents=tuple(x for p in parts for x in p.agents),
        matrix=np.vstack([p.matrix for p in parts]).astype(np.float32, copy=False),
        embedder=embedder,
        quality=np.concatenate([p.qualities for p in parts]),
    )


def _empty(dimension: int) -> Vectors:
    return np.zeros((0, dimension), dtype=np.float32)


def _memory_title(m: Memory) -> str:
    """How the prompt names a memory: what it is, its run, and how it was scored (a model
    should weigh an unscored or poorly scored earlier answer accordingly)."""
    if m.quality is not None:
        scored = f"quality {m.quality:.2f}"
    elif m.succeeded is False:
        scored = "failed"
    else:
        scored = "not scored"
    run = m.workflow_id[:12]  # as `automatos runs list` shows it
    if m.kind == "agent":
        return f"memory: what {m.agent} did before (run {run}, {scored})"
    if m.kind == "collective":
        runs = f"{m.count} runs" if m.count > 1 else f"run {run}"
        return f"memory: a lesson of this workspace ({runs}, {scored})"
    return f"memory: an earlier run ({run}, {scored})"
