"""The shared-context seam: in-process now, Redis with the queued runner."""

from __future__ import annotations

from typing import Literal, Protocol, runtime_checkable

from automatos.domain.collaboration import Finding

__all__ = ["SharedContext"]


@runtime_checkable
class SharedContext(Protocol):
    """One workflow's findings, numbered in the order they were shared."""

    async def add(
        self,
        kind: Literal["fact", "decision", "question"],
        text: str,
        subtask_id: str,
        agent: str,
        contradicts: tuple[int, ...] = (),
    ) -> Finding:
        """Share one finding; it gets the next id."""
        ...

    async def findings(self) -> list[Finding]:
        """Every finding shared so far, oldest first."""
        ...

    async def aclose(self) -> None:
        """Release what the context holds (the workflow ended)."""
        ...
