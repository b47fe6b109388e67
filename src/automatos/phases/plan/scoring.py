"""The multi-dimensional agent score of stage 2, and the task types metrics are kept under.

``S = 0.4·capability_match + 0.3·performance + 0.2·availability + 0.1·cost_efficiency``, each
in [0, 1], with ``performance = 0.5·success_rate + 0.5·avg_quality``. Two small terms are
added: an exploration bonus ``e / sqrt(1 + executions)`` that gets little-tried agents
measured before the engine settles on one (without it a first choice that works at all is
never challenged), and a seeded random spread that shares work between equal agents (the
role of the noise η in the PRD's attractor dynamics).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

from automatos.domain.agent import AgentMetrics, AgentSpec
from automatos.domain.plan import Subtask
from automatos.store.base import OVERALL

__all__ = [
    "AgentScore",
    "Profile",
    "capability_match",
    "learned",
    "score_agent",
    "subtask_words",
    "task_type",
]

_WORD = re.compile(r"[a-z][a-z0-9+#-]{2,}")


def _keys(text: str) -> frozenset[str]:
    return frozenset(text.split())


_STOP = _keys(
    "the and for with that this from into over under about your their them then than are was "
    "were will would should could can each every all any its one two three step steps task "
    "tasks using use used make write give list find based what which who how why"
)
TASK_TYPES: dict[str, frozenset[str]] = {
    "code": _keys(
        "code coding program programming implement function bug debug api sql python script "
        "software test tests refactor"
    ),
    "research": _keys(
        "research find gather sources survey investigate identify collect facts look search "
        "discover"
    ),
    "analysis": _keys(
        "analyse analyze analysis compare comparison evaluate assess trade-offs weigh pros cons "
        "rank benchmark"
    ),
    "writing": _keys(
        "write draft report article essay prose compose explain describe document comparison"
    ),
    "review": _keys("review edit proofread check critique verify correct"),
    "planning": _keys("plan planning schedule roadmap organise organize steps milestones"),
    "summary": _keys("summarise summarize summary condense tldr abstract key"),
}


def words(text: str) -> set[str]:
    """Lower-case content words of a text."""
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP}


def task_type(description: str) -> str:
    """The type a subtask's metrics are kept under: the best keyword match, else general."""
    found = words(description)
    best, hits = "general", 0
    for name, keys in TASK_TYPES.items():
        n = len(found & keys)
        if n > hits:
            best, hits = name, n
    return best


@dataclass(frozen=True)
class Profile:
    """An agent's words, computed once per selection rather than once per subtask."""

    capabilities: frozenset[str]
    described: frozenset[str]

    @classmethod
    def of(cls, agent: AgentSpec) -> Profile:
        """The profile of an agent."""
        caps = words(" ".join(agent.capabilities)) | {c.lower() for c in agent.capabilities}
        return cls(frozenset(caps), frozenset(words(agent.description)))


def subtask_words(subtask: Subtask) -> set[str]:
    """The words of a subtask that capabilities are matched against."""
    return words(f"{subtask.description} {subtask.expected_output}")


def capability_match(wanted: set[str], profile: Profile, kind: str) -> float:
    """How well an agent's capabilities and description cover a subtask's words, in [0, 1]."""
    hits = len(wanted & profile.capabilities) + 0.5 * len(wanted & profile.described)
    if kind in profile.capabilities:
        hits += 1.0
    return min(1.0, hits / 3.0)


def learned(
    metrics: Mapping[str, AgentMetrics] | None, kind: str, min_type_executions: int
) -> AgentMetrics:
    """An agent's metrics for a task type once it has enough runs of it, else overall."""
    if not metrics:
        return AgentMetrics()
    typed = metrics.get(kind)
    if typed is not None and typed.total_executions >= min_type_executions:
        return typed
    return metrics.get(OVERALL) or AgentMetrics()


@dataclass(frozen=True)
class AgentScore:
    """One agent's score for one subtask, with its parts."""

    agent: str
    total: float
    capability: float
    performance: float
    availability: float
    cost_efficiency: float

    def explain(self) -> str:
        """The score and its parts, for the assignment's reason."""
        return (
            f"score {self.total:.2f} (capability {self.capability:.2f}, performance "
            f"{self.performance:.2f}, availability {self.availability:.2f}, cost "
            f"{self.cost_efficiency:.2f})"
        )


def score_agent(
    wanted: set[str],
    agent: AgentSpec,
    profile: Profile,
    metrics: AgentMetrics,
    kind: str,
    *,
    load: int,
    capacity: int,
    cost: float,
    max_cost: float,
    exploration: float = 0.0,
    noise: float = 0.0,
) -> AgentScore:
    """The multi-dimensional score; ``wanted`` are the subtask's words, ``load`` the agent's
    subtasks already given out."""
    capability = capability_match(wanted, profile, kind)
    performance = 0.5 * metrics.success_rate + 0.5 * metrics.avg_quality
    availability = max(0.0, 1.0 - load / max(1, capacity))
    cost_efficiency = 1.0 - cost / max_cost if max_cost > 0 else 1.0
    total = 0.4 * capability + 0.3 * performance + 0.2 * availability + 0.1 * cost_efficiency
    bonus = exploration / math.sqrt(1 + metrics.total_executions)
    return AgentScore(
        agent.name, total + bonus + noise, capability, performance, availability, cost_efficiency
    )
