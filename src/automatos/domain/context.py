"""What stage 3 gave each subtask: the items chosen, and why the others were not."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

__all__ = ["ContextDrop", "ContextItem", "SubtaskContext", "item_header"]

ItemKind = Literal["chunk", "episodic", "agent", "collective"]


class ContextItem(BaseModel):
    """One item a subtask was given: a chunk of the knowledge base or a memory."""

    model_config = ConfigDict(frozen=True)

    id: str
    """``kb:<chunk id>`` or ``memory:<id>``."""
    kind: ItemKind
    title: str
    """Where it comes from: ``path > heading`` for a chunk, the memory's kind and run."""
    source: str = ""
    """What the prompt names it by: a chunk's path (its text starts with its headings), a
    memory's title."""
    text: str
    tokens: int
    relevance: float
    """Its cosine with the subtask."""
    value: float
    """What the knapsack weighed it at: relevance × information density."""


class ContextDrop(BaseModel):
    """A candidate the optimiser dropped, and the step and numbers that dropped it."""

    model_config = ConfigDict(frozen=True)

    id: str
    title: str
    step: Literal["entropy", "relevance", "mmr", "knapsack", "candidates"]
    reason: str


class SubtaskContext(BaseModel):
    """Stage 3's record for one subtask.

    Every candidate has one fate: chosen (:attr:`items`), or dropped by a step. Items at or
    below the relevance cut are counted (:attr:`dropped_by`) but, being most of a large
    knowledge base, not listed one by one; every other drop is in :attr:`dropped`.
    """

    model_config = ConfigDict(frozen=True)

    subtask_id: str
    retrieved: bool
    """Whether retrieval ran; when not, :attr:`reason` says why (``requires_context`` false,
    nothing to retrieve from)."""
    reason: str = ""
    budget: int = 0
    """Tokens the subtask's context could take."""
    tokens: int = 0
    """Tokens it took."""
    candidates: int = 0
    """Items considered: the knowledge base's chunks and the memories it may recall."""
    items: tuple[ContextItem, ...] = ()
    dropped_by: dict[str, int] = {}
    """How many candidates each step dropped."""
    dropped: tuple[ContextDrop, ...] = ()
    exact: bool = True
    """Whether the knapsack was solved exactly (else within half of the best value)."""


def item_header(number: int, source: str) -> str:
    """The line before an item's text in a prompt: stage 3 counts it in the item's tokens."""
    return f"[{number}] {source}\n"
