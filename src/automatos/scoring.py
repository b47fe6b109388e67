"""The scorer seam: how good one subtask's output is, in [0, 1].

Stage 7 (quality assessment) plugs its scorers in here; stage 6 learns from the scores.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from automatos.domain.plan import Subtask

__all__ = ["Scorer"]


@runtime_checkable
class Scorer(Protocol):
    """Scores what an agent wrote for a subtask.

    The engine holds a scorer to this contract without trusting it: a score outside [0, 1]
    is clamped; one that raises (any exception), returns no finite number, or takes longer
    than ``quality.scorer_timeout_s`` (or the workflow's deadline) leaves that subtask its
    heuristic score, and the result one warning naming the scorer, how many subtasks fell
    back and the last reason (:class:`~automatos.errors.ScorerError`'s wording). Scores run
    concurrently, each in a task of its own; a scorer is cancelled at its timeout.
    """

    async def score(self, request: str, subtask: Subtask, output: str) -> float:
        """Quality of ``output`` as an answer to ``subtask`` of ``request``, in [0, 1].

        ``output`` may be any text, empty included."""
        ...
