"""Agents and the assignment of agents to subtasks."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["DEFAULT_AGENT", "AgentMetrics", "AgentSpec", "Assignment"]


class AgentSpec(BaseModel):
    """An agent: a system prompt and model settings under a name."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=128)
    description: str = ""
    capabilities: tuple[str, ...] = ()
    model: str | None = None
    """Model to call; ``None`` uses the engine's configured model."""
    system_prompt: str = "You are a careful, capable assistant."
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, gt=0)
    cost_hint_usd: float | None = Field(default=None, ge=0)
    """Expected dollars per subtask, used for cost efficiency until runs have been measured."""


@dataclass(slots=True)
class Assignment:
    """Which agent runs a subtask, and why."""

    subtask_id: str
    agent: str
    reason: str = ""


@dataclass(slots=True)
class AgentMetrics:
    """What was learned about an agent, overall or for one task type (stage 6 writes it)."""

    success_rate: float = 0.5
    """Exponential moving average of success (1) and failure (0); starts undecided."""
    avg_quality: float = 0.5
    avg_latency_s: float = 0.0
    avg_cost_usd: float = 0.0
    total_executions: int = 0


DEFAULT_AGENT = AgentSpec(
    name="generalist",
    description="A general-purpose agent for research, analysis and writing.",
    capabilities=("research", "analysis", "writing"),
    system_prompt=(
        "You are a careful, capable assistant working on one step of a larger task. "
        "Do exactly the step you are given, use the results of earlier steps when they "
        "are provided, and answer with the result itself."
    ),
)
