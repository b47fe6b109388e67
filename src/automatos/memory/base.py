"""What a workflow leaves for later ones (stage 8), and the store's seam for it.

Three kinds, as the PRD's memory tiers:

- ``episodic``: one per run: the request, its plan, the outputs and their scores.
- ``agent``: one per subtask that ran: what its agent did with a task type, and how it went
  (succeeded with its quality, or failed with its error), kept under the agent's name.
- ``collective``: lessons of the workspace: outputs scored at least ``memory.min_quality``.
  A lesson that says what one already kept says (cosine ≥ ``memory.duplicate_cosine``) is
  merged into it: its count goes up and the better-scored text stays.

Every memory carries its vector (by the embedder it names) and its word entropy, so that it
comes back through stage 3's optimiser like a chunk of the knowledge base. A run whose
embedder has not been loaded (an Atom with nothing to retrieve) keeps its memories pending,
without a vector, rather than load a model for them; the next recall embeds them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol, runtime_checkable

from automatos.retrieval.base import Vectors

__all__ = ["MEMORY_KINDS", "Memory", "MemoryKind", "MemoryStore"]

MemoryKind = Literal["episodic", "agent", "collective"]
MEMORY_KINDS: tuple[MemoryKind, ...] = ("episodic", "agent", "collective")


@dataclass(frozen=True, slots=True)
class Memory:
    """One memory.

    Attributes:
        id: unique in the workspace (``0`` before the store gives it one).
        kind: see the module.
        text: what it says, as a model would read it.
        workflow_id: the run it comes from (for a merged lesson: the latest).
        agent: the agent it is about (``agent`` memories), else ``None``.
        task_type: the task type it is about, where there is one.
        quality: the score it was given, in [0, 1], where there was one.
        succeeded: whether what it remembers went well (``None``: not a matter of success).
        count: runs that taught it (a merged lesson counts each).
        tokens: its tokens, by the tokenizer of the run that wrote it.
        entropy: its word entropy in bits.
        embedder: the embedder of its vector.
        created_at: when it was first kept; ``updated_at``: when last merged into.
    """

    id: int
    kind: MemoryKind
    text: str
    workflow_id: str
    agent: str | None
    task_type: str | None
    quality: float | None
    succeeded: bool | None
    count: int
    tokens: int
    entropy: float
    embedder: str
    created_at: datetime | None = None
    updated_at: datetime | None = None


@runtime_checkable
class MemoryStore(Protocol):
    """The memories of the store's workspace."""

    async def add_memories(
        self,
        memories: Sequence[Memory],
        vectors: Vectors | None,
        duplicate_cosine: float,
        keep: int | None = None,
        replacing: Sequence[int] = (),
    ) -> list[Memory]:
        """Keep ``memories`` (row i of ``vectors`` is memory i's) in one transaction and return
        them as kept (ids set). A ``collective`` memory whose cosine with a kept collective
        memory of the same embedder is at least ``duplicate_cosine`` is merged into it
        instead (count + 1, the better-scored text and its vector kept, updated_at now).
        With ``keep``, only the ``keep`` most recently updated memories of the workspace
        stay (this call's always among them). Without ``vectors`` they are kept pending,
        to be embedded later and added again ``replacing`` the pending ids."""
        ...

    async def pending_memories(self, embedder: str, limit: int = 1_000) -> list[Memory]:
        """Memories kept without a vector, for ``embedder`` to embed, oldest first."""
        ...

    async def memories(
        self,
        kind: MemoryKind | None = None,
        *,
        agent: str | None = None,
        workflow_id: str | None = None,
        limit: int = 50,
    ) -> list[Memory]:
        """Memories, newest first (by updated_at, then id), filtered as asked."""
        ...

    async def memory_matrix(self, embedder: str) -> tuple[list[Memory], Vectors]:
        """Every memory embedded by ``embedder`` (by id) and their vectors, one row each
        (stage 3 recalls an ``agent`` memory only for a subtask of that agent)."""
        ...

    async def memory_generation(self) -> int:
        """A number that changes whenever the workspace's memories change."""
        ...

    async def forget(
        self, ids: Sequence[int] = (), *, workflow_id: str | None = None, everything: bool = False
    ) -> int:
        """Delete these memories, or every memory of a run, or all of them; how many went."""
        ...
