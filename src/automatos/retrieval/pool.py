"""Everything stage 3 may choose from, as one matrix: the knowledge base's chunks and memories.

Loading the vectors of a large knowledge base costs more than selecting from them, so the pool
is kept between workflows and reloaded only when the store says the knowledge base or the
memories changed (their generation numbers) or another embedder is asked for.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from automatos.memory.base import MemoryStore
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

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def chunks(self) -> int:
        """How many of the items are chunks of the knowledge base."""
        return self.kinds.count("chunk")


class ContextSource:
    """The embedder stage 3 retrieves with, and the pool it last loaded."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder
        self._key: tuple[object, ...] | None = None
        self._pool: Pool | None = None
        self._lock = asyncio.Lock()

    def warm(self) -> None:
        """Let the embedder start loading, if it loads (errors surface when it is used)."""
        warm = getattr(self.embedder, "warm", None)
        if callable(warm):
            try:
                warm()
            except Exception:  # a plugin's warm-up is a hint, never a failure
                return

    async def pool(self, store: object, *, memories: bool) -> Pool:
        """The items of ``store``'s knowledge base (if it has one) and, with ``memories``, its
        memories, embedded by this source's embedder."""
        kb = store if isinstance(store, KnowledgeStore) else None
        mem = store if memories and isinstance(store, MemoryStore) else None
        name = self.embedder.name
        key = (
            id(store),
            getattr(store, "workspace", None),
            name,
            await kb.kb_generation() if kb is not None else None,
            await mem.memory_generation() if mem is not None else None,
        )
        async with self._lock:
            if self._pool is None or key != self._key:
                self._pool = await _load(kb, mem, name, self.embedder.dimension)
                self._key = key
            return self._pool


async def _load(
    kb: KnowledgeStore | None, mem: MemoryStore | None, embedder: str, dimension: int
) -> Pool:
    ids: list[str] = []
    kinds: list[str] = []
    titles: list[str] = []
    sources: list[str] = []
    texts: list[str] = []
    tokens: list[int] = []
    tokenizers: list[str] = []
    entropy: list[float] = []
    agents: list[str] = []
    blocks: list[Vectors] = []
    if kb is not None:
        chunks, vectors = await kb.kb_matrix(embedder)
        tokenizer_of = {d.path: d.tokenizer for d in await kb.kb_documents()} if chunks else {}
        for c in chunks:
            ids.append(f"kb:{c.id}")
            kinds.append("chunk")
            titles.append(f"{c.path} > {c.heading}" if c.heading else c.path)
            sources.append(c.path)
            texts.append(c.text)
            tokens.append(c.tokens)
            tokenizers.append(tokenizer_of.get(c.path, ""))
            entropy.append(c.entropy)
            agents.append("")
        if chunks:
            blocks.append(vectors)
    if mem is not None:
        memories, vectors = await mem.memory_matrix(embedder)
        for m in memories:
            ids.append(f"memory:{m.id}")
            kinds.append(m.kind)
            titles.append(_memory_title(m.kind, m.agent, m.workflow_id, m.count))
            sources.append(titles[-1])
            texts.append(m.text)
            tokens.append(m.tokens)
            tokenizers.append("")  # counted by whichever model wrote it: recounted when used
            entropy.append(m.entropy)
            agents.append(m.agent or "")
        if memories:
            blocks.append(vectors)
    matrix = (
        np.vstack(blocks).astype(np.float32, copy=False)
        if blocks
        else np.zeros((0, dimension), dtype=np.float32)
    )
    return Pool(
        ids=tuple(ids),
        kinds=tuple(kinds),
        titles=tuple(titles),
        sources=tuple(sources),
        texts=tuple(texts),
        tokens=np.asarray(tokens, dtype=np.int64),
        tokenizers=tuple(tokenizers),
        entropy=np.asarray(entropy, dtype=np.float64),
        agents=tuple(agents),
        matrix=matrix,
        embedder=embedder,
    )


def _memory_title(kind: str, agent: str | None, workflow_id: str, count: int) -> str:
    if kind == "agent":
        return f"memory: what {agent} did before (run {workflow_id})"
    if kind == "collective":
        runs = f"{count} runs" if count > 1 else f"run {workflow_id}"
        return f"memory: a lesson of this workspace ({runs})"
    return f"memory: an earlier run ({workflow_id})"
