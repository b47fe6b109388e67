"""The in-process shared context: one workflow's findings in a list, on the event loop."""

from __future__ import annotations

from automatos.domain.collaboration import Finding
from automatos.field.base import FindingKind

__all__ = ["InProcessSharedContext"]


class InProcessSharedContext:
    """A :class:`~automatos.field.base.SharedContext` kept in memory, for one workflow.

    Safe under asyncio without a lock: ``add`` takes the next id and appends without
    awaiting anything in between, so two concurrent adds can never take the same id.
    (It is not thread-safe: like the rest of a workflow, it lives on one event loop.)
    """

    def __init__(self) -> None:
        self._findings: list[Finding] = []
        self._closed = False

    async def add(
        self,
        kind: FindingKind,
        text: str,
        subtask_id: str,
        agent: str,
        contradicts: tuple[int, ...] = (),
    ) -> Finding:
        """Share one finding; it gets the next id (from 1).

        Raises:
            RuntimeError: the context was closed (a bug of its caller: the workflow's
                execution is over).
        """
        if self._closed:
            raise RuntimeError(
                f"the shared context is closed: the finding of subtask {subtask_id!r} by "
                f"{agent!r} came after the workflow's execution ended"
            )
        finding = Finding(
            id=len(self._findings) + 1,
            kind=kind,
            text=text,
            subtask_id=subtask_id,
            agent=agent,
            contradicts=contradicts,
        )
        self._findings.append(finding)
        return finding

    async def findings(self, after: int = 0) -> list[Finding]:
        """The findings whose id is over ``after``, oldest first (ids are list positions)."""
        return self._findings[max(after, 0) :]

    async def aclose(self) -> None:
        """Refuse further findings; what was shared stays readable (the result reports it)."""
        self._closed = True

    @property
    def closed(self) -> bool:
        """Whether :meth:`aclose` was called."""
        return self._closed

    def __len__(self) -> int:
        return len(self._findings)
