"""The knowledge base's seams: what the store keeps of it, and the index searched at stage 3.

A document is kept under its resolved path (POSIX form) with the sha256 of its bytes: adding
the same bytes again changes nothing, other bytes replace all its chunks in one transaction.
Each chunk is kept with its text, its token count (by the tokenizer named on the document),
its word entropy (a property of the text, computed once at ingest) and its vector (float32,
unit length, by the embedder named on the document). A change to the knowledge base bumps the
workspace's generation, so an index loaded in memory knows when to reload.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

__all__ = ["ChunkRecord", "Hit", "KbDocument", "KnowledgeStore", "VectorIndex", "Vectors"]

Vectors = npt.NDArray[np.float32]
"""One row per item, unit length."""


@dataclass(frozen=True, slots=True)
class KbDocument:
    """One file of the knowledge base.

    Attributes:
        path: the resolved path it was read from (POSIX form): its key.
        kind: the format it was read as (``md``, ``rst``, ``txt``, ``html``, ``pdf``).
        sha256: hex sha256 of its bytes.
        chunks: how many chunks it was cut into.
        tokens: their tokens in all.
        embedder: the embedder of its vectors (:attr:`Embedder.name`).
        tokenizer: the tokenizer that counted its tokens (:attr:`ModelProfile.tokenizer`).
        added_at: when these bytes were ingested (set by the store).
    """

    path: str
    kind: str
    sha256: str
    chunks: int
    tokens: int
    embedder: str
    tokenizer: str
    added_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ChunkRecord:
    """One stored chunk (see :class:`~automatos.retrieval.chunking.Chunk`).

    Attributes:
        id: the chunk's stable id.
        path: its document's path.
        ordinal: its place among the document's chunks, from 0.
        heading: its heading path joined with ``" > "`` (empty when it has none).
        text: the text embedded and shown to a model.
        tokens: its tokens, by the document's tokenizer.
        entropy: its word entropy in bits (:func:`~automatos.retrieval.optimizer.word_entropy`).
        page: the PDF page it comes from, else ``None``.
    """

    id: str
    path: str
    ordinal: int
    heading: str
    text: str
    tokens: int
    entropy: float
    page: int | None = None


@runtime_checkable
class KnowledgeStore(Protocol):
    """The knowledge base of the store's workspace."""

    async def kb_document(self, path: str) -> KbDocument | None:
        """The document kept under ``path``, if any."""
        ...

    async def kb_documents(self) -> list[KbDocument]:
        """Every document, by path."""
        ...

    async def kb_put(
        self, document: KbDocument, chunks: Sequence[ChunkRecord], vectors: Vectors
    ) -> None:
        """Keep ``document`` with these chunks (row i of ``vectors`` is chunk i's), replacing
        whatever was kept under its path, in one transaction.

        Raises:
            ValueError: ``vectors`` has not one row per chunk, or a chunk names another path.
        """
        ...

    async def kb_remove(self, paths: Sequence[str]) -> list[str]:
        """Remove these documents and their chunks; a path that is a directory's removes every
        document under it. Returns the paths removed, sorted."""
        ...

    async def kb_chunks(self, ids: Sequence[str]) -> list[ChunkRecord]:
        """The chunks of these ids that exist, in the order asked."""
        ...

    async def kb_matrix(self, embedder: str) -> tuple[list[ChunkRecord], Vectors]:
        """Every chunk embedded by ``embedder`` (by path, then ordinal) and their vectors, one
        row each; chunks of other embedders are left out."""
        ...

    async def kb_generation(self) -> int:
        """A number that changes whenever the workspace's knowledge base changes."""
        ...


@dataclass(frozen=True, slots=True)
class Hit:
    """An item found by a :class:`VectorIndex`: its row and its cosine with the query."""

    row: int
    score: float


class VectorIndex(Protocol):
    """Nearest-neighbour search over unit vectors."""

    def __len__(self) -> int:
        """Items indexed."""
        ...

    def search(self, query: Vectors, k: int, min_score: float = -1.0) -> list[Hit]:
        """At most ``k`` items whose cosine with ``query`` (one unit vector) is above
        ``min_score``, best first (ties: lower row first)."""
        ...

    def scores(self, query: Vectors) -> npt.NDArray[np.float32]:
        """The cosine of every item with ``query``, by row."""
        ...
