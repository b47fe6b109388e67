"""Stage 2, agent selection: a model call assigns agents to the subtasks, in batches.

The prompt carries, for every candidate, what was learned about it: success rate, average
quality, average latency, total executions and average cost (the PRD's Fix 2: the learning
loop is read). The answer is validated; where the model fails, names an unknown agent, or is
unsure (confidence below ``selection.min_confidence``), the multi-dimensional score of
:mod:`automatos.phases.plan.scoring` decides. A recipe's pre-assigned agents are kept.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from automatos.domain.agent import AgentMetrics, AgentSpec, Assignment
from automatos.domain.level import Phase
from automatos.domain.plan import Subtask
from automatos.errors import InvalidRequestError, LLMError
from automatos.llm.base import Message
from automatos.llm.structured import complete_structured, pydantic_parser
from automatos.phases.contracts import ASSIGNMENTS, PLAN
from automatos.phases.plan.scoring import (
    AgentScore,
    Profile,
    learned,
    score_agent,
    subtask_words,
)
from automatos.phases.state import WorkflowState
from automatos.prompts.catalog import SELECTOR, render
from automatos.registry import registered_agents
from automatos.store.base import OVERALL

__all__ = ["SelectStage", "selection_messages"]


class Choice(BaseModel):
    """The model's choice for one subtask."""

    model_config = ConfigDict(extra="ignore")

    subtask_id: str
    agent: str
    confidence: float = Field(default=1.0, ge=0, le=1)
    reason: str = ""


class Selection(BaseModel):
    """The model's answer."""

    model_config = ConfigDict(extra="ignore")

    assignments: list[Choice]


SYSTEM_PROMPT = render(SELECTOR, {})
"""Stage 2's built-in system prompt (the registry's ``selector`` slug, version 1)."""


def _signals(m: AgentMetrics) -> str:
    return (
        f"success_rate {m.success_rate:.2f}, avg_quality {m.avg_quality:.2f}, "
        f"avg_latency_s {m.avg_latency_s:.2f}, total_executions {m.total_executions}, "
        f"avg_cost_usd {m.avg_cost_usd:.4f}"
    )


def selection_messages(
    subtasks: Sequence[Subtask],
    kinds: Mapping[str, str],
    candidates: Sequence[AgentSpec],
    metrics: Mapping[str, Mapping[str, AgentMetrics]],
    system: str = SYSTEM_PROMPT,
) -> list[Message]:
    """The prompt of stage 2, learned signals included (``system``: the workflow's version)."""
    lines = ["Subtasks:"]
    lines += [f"- {s.id} ({kinds[s.id]}): {s.description}" for s in subtasks]
    lines.append("\nCandidate agents:")
    for agent in candidates:
        known = metrics.get(agent.name, {})
        lines.append(
            f"- {agent.name}: {agent.description or 'no description'} "
            f"[capabilities: {', '.join(agent.capabilities) or 'none'}]"
        )
        lines.append(f"  overall: {_signals(known.get(OVERALL) or AgentMetrics())}")
        for kind, value in sorted(known.items()):
            if kind != OVERALL:
                lines.append(f"  on {kind} subtasks: {_signals(value)}")
    return [Message("system", system), Message("user", "\n".join(lines))]


def _schema(subtask_ids: Sequence[str], names: Sequence[str], reason_chars: int) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "assignments": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "subtask_id": {"enum": list(subtask_ids)},
                        "agent": {"enum": list(names)},
                        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
                        "reason": {"type": "string", "maxLength": reason_chars},
                    },
                    "required": ["subtask_id", "agent", "confidence", "reason"],
                },
                "minItems": len(subtask_ids),
                "maxItems": len(subtask_ids),
            }
        },
        "required": ["assignments"],
    }


class SelectStage:
    """Stage 2."""

    name = "select_agents"
    phase = Phase.PLAN
    reads = frozenset({PLAN})
    writes = frozenset({ASSIGNMENTS})
    after_deadline = False

    def __init__(self, *, ask_model: bool | None = None) -> None:
        self.ask_model = ask_model
        """Whether the model chooses agents; ``None`` leaves it to ``selection.use_llm`` and
        the model's profile."""

    async def run(self, state: WorkflowState) -> None:
        """Assign an agent to every subtask."""
        plan = state.require_plan()
        store = state.runtime.store
        open_ = [s for s in plan.subtasks if not s.agent]
        metrics: dict[str, dict[str, AgentMetrics]] = {}
        if store is not None:  # the registry replaces the lone default agent
            if open_:  # both reads at once: a round trip less on every run
                registry, metrics = await asyncio.gather(
                    registered_agents(store), store.agent_metrics()
                )
            else:
                registry = await registered_agents(store)
            state.agents = {a.name: a for a in registry}
            state.agents.update((a.name, a) for a in state.request.agents)
        unknown = sorted(
            {s.agent for s in plan.subtasks if s.agent and s.agent not in state.agents}
        )
        if unknown:
            raise InvalidRequestError(
                f"the recipe names unknown agents: {', '.join(unknown)}; "
                f"known agents: {', '.join(sorted(state.agents))}"
            )
        candidates = list(state.agents.values())
        chosen: dict[str, Assignment] = {}
        if open_ and len(candidates) > 1:
            chosen = await self._choose(state, open_, candidates, metrics)
        only = candidates[0].name
        state.planning.assignments = {
            s.id: Assignment(s.id, s.agent, "pre-assigned by the recipe")
            if s.agent
            else chosen.get(s.id) or Assignment(s.id, only, "the only agent")
            for s in plan.subtasks
        }

    async def _choose(
        self,
        state: WorkflowState,
        subtasks: list[Subtask],
        candidates: list[AgentSpec],
        metrics: dict[str, dict[str, AgentMetrics]],
    ) -> dict[str, Assignment]:
        settings = state.runtime.settings.selection
        profile = state.runtime.profile
        kinds = {s.id: state.task_type(s.id) for s in subtasks}
        chosen: dict[str, Assignment] = {}
        ask = self.ask_model
        if ask is None:
            ask = settings.use_llm if settings.use_llm is not None else profile.chooses_agents
        if ask:  # in batches, asked at once: no answer outgrows the output limit
            size = settings.batch_size
            answers = await asyncio.gather(
                *(
                    self._ask_model(state, subtasks[i : i + size], kinds, candidates, metrics)
                    for i in range(0, len(subtasks), size)
                )
            )
            chosen = {sid: choice for answer in answers for sid, choice in answer.items()}
        rng = random.Random(settings.seed)
        load = Counter(a.agent for a in chosen.values())
        costs = {a.name: self._cost(a, metrics) for a in candidates}
        max_cost = max(costs.values(), default=0.0)
        profiles = {a.name: Profile.of(a) for a in candidates}
        for s in subtasks:
            if s.id in chosen:
                continue
            wanted = subtask_words(s)
            scores = [
                score_agent(
                    wanted,
                    agent,
                    profiles[agent.name],
                    learned(metrics.get(agent.name), kinds[s.id], settings.min_type_executions),
                    kinds[s.id],
                    load=load[agent.name],
                    capacity=len(subtasks),
                    cost=costs[agent.name],
                    max_cost=max_cost,
                    exploration=settings.exploration,
                    noise=rng.uniform(-settings.jitter, settings.jitter),
                )
                for agent in candidates
            ]
            best: AgentScore = max(scores, key=lambda x: x.total)
            load[best.agent] += 1
            note = state.planning.selection_notes.get(s.id, "")
            chosen[s.id] = Assignment(s.id, best.agent, f"{note}{best.explain()}")
        return chosen

    @staticmethod
    def _cost(agent: AgentSpec, metrics: Mapping[str, Mapping[str, AgentMetrics]]) -> float:
        overall = metrics.get(agent.name, {}).get(OVERALL)
        if overall is not None and overall.total_executions:
            return overall.avg_cost_usd
        return agent.cost_hint_usd or 0.0

    async def _ask_model(
        self,
        state: WorkflowState,
        subtasks: list[Subtask],
        kinds: Mapping[str, str],
        candidates: list[AgentSpec],
        metrics: Mapping[str, Mapping[str, AgentMetrics]],
    ) -> dict[str, Assignment]:
        names = [a.name for a in candidates]
        ids = [s.id for s in subtasks]
        try:
            answer = await complete_structured(
                state.runtime.llm,
                selection_messages(subtasks, kinds, candidates, metrics, state.prompt("selector")),
                pydantic_parser(Selection),
                # Small local models decode under this schema's grammar, slowly: short reasons.
                json_schema=_schema(
                    ids, names, 200 if state.runtime.profile.chooses_agents else 40
                ),
                temperature=0.0,
                max_tokens=state.runtime.settings.llm.max_tokens,
                on_call=lambda done: state.record_call(self.name, done),
            )
        except LLMError as exc:
            for sid in ids:
                state.planning.selection_notes[sid] = (
                    f"selection call failed ({type(exc).__name__}); "
                )
            return {}
        floor = state.runtime.settings.selection.min_confidence
        chosen: dict[str, Assignment] = {}
        for choice in answer.value.assignments:
            if choice.subtask_id not in ids or choice.subtask_id in chosen:
                continue
            if choice.agent not in names:
                state.planning.selection_notes[choice.subtask_id] = (
                    f"model chose unknown {choice.agent!r}; "
                )
            elif choice.confidence < floor:
                state.planning.selection_notes[choice.subtask_id] = (
                    f"model unsure ({choice.agent} at {choice.confidence:.2f}); "
                )
            else:
                chosen[choice.subtask_id] = Assignment(
                    choice.subtask_id,
                    choice.agent,
                    f"model ({choice.confidence:.2f}): {choice.reason}".strip(),
                )
        return chosen
