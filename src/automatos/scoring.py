"""The scorer seam: how good one subtask's output is, in [0, 1].

Stage 7 (quality assessment) plugs its scorers in here; stage 6 learns from the scores.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from automatos.domain.plan import Subtask

__all__ = ["Scorer"]


@runtime_checkable
class Scorer(Protocol):
    """Scores what an agent wrote for a subtask."""

    async def score(self, request: str, subtask: Subtask, output: str) -> float:
        """Quality of ``output`` as an answer to ``subtask`` of ``request``, in [0, 1]."""
        ...
