"""What each agent scored, run after run: the points of ``GET /v1/agents/{name}``'s
``history``, read from the workspace's newest stored runs.

A run's record holds what it takes: the plan (each subtask's description, whose task type is
the one learning kept its metrics under), the results (which agent ran each subtask) and
stage 7's quality report (each subtask's Q, what learning moved the agent's quality toward).
A run that has ended never changes again, so its points are kept: reading the history again
costs one query for the list of runs and one per run not seen before.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from automatos.phases.plan.scoring import task_type
from automatos.store.base import RunDetail
from automatos.store.sql import SqlStore

__all__ = ["RUNS", "AgentHistory", "HistoryPoint"]

RUNS = 200
"""How many of the newest runs the history is read from."""
_ENDED = frozenset({"succeeded", "partial", "failed", "cancelled"})
_LEARNED = frozenset({"succeeded", "failed"})  # the subtasks learning counts (stage 6)


class HistoryPoint(BaseModel):
    """One subtask an agent ran and the score it got."""

    workflow_id: str
    at: datetime
    """When the run ended (when it was learned from)."""
    task_type: str
    score: float
    """Stage 7's Q of the subtask, in [0, 1]."""


def points(run: RunDetail) -> dict[str, list[HistoryPoint]]:
    """The points of one stored run, by agent (none for a run that was never scored)."""
    scores: dict[str, Any] = (run.quality or {}).get("subtasks") or {}
    described = {
        s["id"]: s.get("description", "")
        for s in (run.plan or {}).get("subtasks", [])
        if isinstance(s, dict) and "id" in s
    }
    at = run.finished_at or run.started_at
    at = at if at.tzinfo else at.replace(tzinfo=UTC)  # SQLite gives back naive UTC times
    found: dict[str, list[HistoryPoint]] = {}
    for result in run.results:
        sid, agent = str(result.get("subtask_id")), result.get("agent")
        score = (scores.get(sid) or {}).get("q")
        if agent is None or result.get("status") not in _LEARNED or score is None:
            continue
        found.setdefault(agent, []).append(
            HistoryPoint(
                workflow_id=run.id,
                at=at,
                task_type=task_type(described.get(sid, "")),
                score=float(score),
            )
        )
    return found


class AgentHistory:
    """The points of one workspace's ended runs, kept as they were first read (the newest
    ``max_runs`` of them)."""

    def __init__(self, max_runs: int = 2 * RUNS) -> None:
        self._runs: OrderedDict[str, dict[str, list[HistoryPoint]]] = OrderedDict()
        self._max_runs = max_runs
        self._reading = asyncio.Lock()  # the agents of a page asked at once read each run once

    async def of(self, store: SqlStore, agent: str) -> list[HistoryPoint]:
        """``agent``'s points from the newest :data:`RUNS` runs of ``store``'s workspace,
        oldest first (a running run has none yet)."""
        async with self._reading:
            return await self._of(store, agent)

    async def _of(self, store: SqlStore, agent: str) -> list[HistoryPoint]:
        history: list[HistoryPoint] = []
        for summary in reversed(await store.list_runs(RUNS)):
            if summary.status not in _ENDED:
                continue
            key = summary.id
            found = self._runs.get(key)
            if found is None:
                run = await store.get_run(summary.id)
                found = points(run) if run is not None and run.id == summary.id else {}
                self._runs[key] = found
                while len(self._runs) > self._max_runs:
                    self._runs.popitem(last=False)
            else:
                self._runs.move_to_end(key)
            history += found.get(agent, [])
        history.sort(key=lambda point: point.at)  # by when each run ended
        return history
