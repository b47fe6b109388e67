"""The shared-context seam: in-process now, Redis with the queued runner.

A workflow's shared context holds the findings its agents share (stage 4b): facts, decisions
and open questions, each with the subtask and agent that wrote it. The orchestrator is its
only writer: it parses the findings out of each answer, checks them for contradictions
(:mod:`automatos.field.contradiction`) and adds them; the subtasks' prompts read them back.

The Protocol is asynchronous and speaks only in plain values and
:class:`~automatos.domain.collaboration.Finding` (a pydantic model: ``model_dump_json`` /
``model_validate_json``), so that an implementation may keep the findings out of process
(a Redis hash under the workflow's id) without changing its callers. What an implementation
guarantees:

- ids are dense and start at 1, in the order the findings were added (so ``findings(after=n)``
  is everything from the (n+1)th on: a reader that keeps what it read asks only for what is
  new);
- ``add`` stores the finding as given: the check for contradictions is the caller's, which
  gives ``contradicts`` (ids of earlier findings);
- ``aclose`` may be called more than once; ``add`` after it is refused;
- its own I/O is bounded (a network implementation sets its own timeouts) and its failures
  are raised, not swallowed: the caller decides what a finding that could not be shared costs.
"""

from __future__ import annotations

from typing import Literal, Protocol, runtime_checkable

from automatos.domain.collaboration import Finding

__all__ = ["FINDING_KINDS", "FindingKind", "SharedContext"]

FindingKind = Literal["fact", "decision", "question"]
"""What a finding states: something found, something decided, or a question left open."""

FINDING_KINDS: tuple[FindingKind, ...] = ("fact", "decision", "question")


@runtime_checkable
class SharedContext(Protocol):
    """One workflow's findings, numbered from 1 in the order they were shared."""

    async def add(
        self,
        kind: FindingKind,
        text: str,
        subtask_id: str,
        agent: str,
        contradicts: tuple[int, ...] = (),
    ) -> Finding:
        """Share one finding; it gets the next id.

        Args:
            kind: fact, decision or question.
            text: the finding, one line (already bounded by the caller).
            subtask_id: the subtask whose answer stated it.
            agent: the agent that ran that subtask.
            contradicts: ids of earlier findings it contradicts.
        """
        ...

    async def findings(self, after: int = 0) -> list[Finding]:
        """The findings shared so far whose id is over ``after``, oldest first."""
        ...

    async def aclose(self) -> None:
        """Release what the context holds (the workflow's execution ended); idempotent."""
        ...
