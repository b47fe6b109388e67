"""Stage 6, learning: the metrics of every agent that ran move toward what was observed.

``m ← α·observed + (1−α)·m`` with α = 0.1, for success (1 or 0), quality (stage 7's score,
when the run was scored), latency and cost; overall and for the subtask's task type. The
metrics are stored, and the next selection (stage 2) reads them.

Only the workspace's registered agents learn. An agent the request defined for itself (a
recipe's ``agents:``, :attr:`WorkflowRequest.agents`) lives for that run only: learning about
it must not make it a candidate for every later run, and when it borrows a registered name its
prompt or model may differ, so what it did says nothing about the registered agent. The store
keeps the same promise on its side (metrics of names not registered are not kept).
"""

from __future__ import annotations

import dataclasses

from automatos.domain.agent import AgentMetrics
from automatos.domain.level import Phase
from automatos.domain.result import SubtaskResult, SubtaskStatus
from automatos.phases.contracts import ASSIGNMENTS, PLAN, RESULTS
from automatos.phases.state import WorkflowState
from automatos.store.base import OVERALL

__all__ = ["ALPHA", "LearnStage", "update_metrics"]

ALPHA = 0.1


def update_metrics(
    current: AgentMetrics, result: SubtaskResult, quality: float | None, alpha: float = ALPHA
) -> AgentMetrics:
    """One exponential-moving-average step. Latency and cost start at their first value."""
    m = dataclasses.replace(current)
    first = m.total_executions == 0
    success = 1.0 if result.status is SubtaskStatus.SUCCEEDED else 0.0
    m.success_rate = alpha * success + (1 - alpha) * m.success_rate
    if quality is not None:
        m.avg_quality = alpha * quality + (1 - alpha) * m.avg_quality
    elif success == 0.0:
        m.avg_quality = (1 - alpha) * m.avg_quality  # a failure wrote nothing of value
    if first:
        m.avg_latency_s, m.avg_cost_usd = result.latency_s, result.cost_usd
    else:
        m.avg_latency_s = alpha * result.latency_s + (1 - alpha) * m.avg_latency_s
        m.avg_cost_usd = alpha * result.cost_usd + (1 - alpha) * m.avg_cost_usd
    m.total_executions += 1
    return m


class LearnStage:
    """Stage 6."""

    name = "learn"
    phase = Phase.LEARN
    reads = frozenset({PLAN, ASSIGNMENTS, RESULTS})  # and the scores, where there are some
    writes = frozenset[str]()

    async def run(self, state: WorkflowState) -> None:
        """Update and store the metrics of the agents that ran."""
        store = state.runtime.store
        if store is None:
            return
        # The metrics as stored when learning, not what selection saw: runs that overlapped
        # have learned since, and building on older values would undo their updates.
        try:
            await store.update_metrics(lambda known: _learned(state, known))
        except Exception as exc:  # the run's work stands; only what it taught is not kept
            state.warnings.append(
                f"what this run taught could not be stored: {type(exc).__name__}: {exc}"
            )


def _learned(
    state: WorkflowState, known: dict[str, dict[str, AgentMetrics]]
) -> dict[str, dict[str, AgentMetrics]]:
    changed: dict[str, dict[str, AgentMetrics]] = {}
    own = {agent.name for agent in state.request.agents}  # this run's, not the registry's
    for sid, result in state.execution.results.items():
        if (
            result.agent is None
            or result.agent in own
            or result.status not in (SubtaskStatus.SUCCEEDED, SubtaskStatus.FAILED)
        ):
            continue
        quality = state.evaluation.quality.get(sid)
        mine = changed.setdefault(result.agent, {})
        for kind in (OVERALL, state.task_type(sid)):
            base = mine.get(kind) or known.get(result.agent, {}).get(kind) or AgentMetrics()
            mine[kind] = update_metrics(base, result, quality)
    return changed
