"""The state one workflow carries from stage to stage."""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from automatos.domain.agent import DEFAULT_AGENT, AgentSpec, Assignment
from automatos.domain.collaboration import Finding, NegotiationReport, PromptUse
from automatos.domain.context import SubtaskContext
from automatos.domain.level import LevelChoice
from automatos.domain.plan import Plan
from automatos.domain.request import WorkflowRequest
from automatos.domain.result import LLMCall, QualityReport, SubtaskResult
from automatos.field.base import SharedContext
from automatos.llm.base import Completion, LLMProvider
from automatos.llm.profile import CAPABLE, ModelProfile
from automatos.phases.evaluate.heuristics import Dimensions
from automatos.phases.events import EventBus
from automatos.phases.execute.budget import Budget
from automatos.phases.plan.scoring import task_type
from automatos.prompts.resolve import PromptSet
from automatos.retrieval.pool import ContextSource
from automatos.runners.base import TaskRunner
from automatos.scoring import Scorer
from automatos.settings import Settings
from automatos.store.base import Store
from automatos.store.writer import BatchWriter

if TYPE_CHECKING:
    from automatos.phases.selector import StageSelector
    from automatos.tools.base import Tool

__all__ = [
    "Carried",
    "Evaluation",
    "Execution",
    "Learning",
    "Planning",
    "Preparation",
    "Runtime",
    "WorkflowState",
]


_TIMER_SLACK_S = 0.001
"""uvloop's timers count whole milliseconds and may fire up to one early: a deadline that
close has passed, or a cancellation by the deadline would be taken for the caller's."""


@dataclass(frozen=True)
class Runtime:
    """What the stages use but do not own: settings, the model and the runner."""

    settings: Settings
    llm: LLMProvider
    runner: TaskRunner
    store: Store | None = None
    scorer: Scorer | None = None
    selector: StageSelector | None = None
    """Chooses the stages of each workflow; unset, the :class:`PhaseSelector`."""
    profile: ModelProfile = CAPABLE
    """What the model can be trusted with (plan, choose agents, judge), its window and its
    tokenizer."""
    context: ContextSource | None = None
    """The embedder stage 3 retrieves with (and the pool it loaded); none: no retrieval."""
    stopping: asyncio.Event | None = None
    """Set when the engine is shutting down: a workflow cancelled from then on was
    interrupted (recorded ``interrupted``), not cancelled by its caller."""
    tools: tuple[Tool, ...] = ()
    """Python tools the caller gave the engine, offered to the agents that name them."""


@dataclass
class Planning:
    """What the PLAN phase writes: the plan and who runs each subtask."""

    plan: Plan | None = None
    assignments: dict[str, Assignment] = field(default_factory=dict)
    task_types: dict[str, str] = field(default_factory=dict)
    """The task type of each subtask, under which its agent's metrics are learned."""
    selection_notes: dict[str, str] = field(default_factory=dict)
    """Why the model's choice of an agent was not taken, per subtask."""
    negotiation: NegotiationReport | None = None
    """Stage 2b's record: the plan before it, and every proposal with its fate."""


@dataclass
class Preparation:
    """What the PREPARE phase writes: each subtask's context (stage 3) and the version of
    each stage's prompt (stage 3b)."""

    context: dict[str, SubtaskContext] = field(default_factory=dict)
    """Stage 3's record of each subtask: the items chosen, and what was dropped and why."""
    prompts: PromptSet = field(default_factory=PromptSet)
    """Without stage 3b (no store), the built-in texts."""


@dataclass
class Execution:
    """What the EXECUTE phase writes: one result per subtask."""

    results: dict[str, SubtaskResult] = field(default_factory=dict)
    shared: SharedContext | None = None
    """The workflow's shared context, when stage 4b coordinates its subtasks (until the
    execute stage ends and closes it)."""
    findings: list[Finding] = field(default_factory=list)
    """The findings shared so far, in order (what the result reports)."""


@dataclass
class Evaluation:
    """What the EVALUATE phase writes: the scores of the real outputs."""

    dimensions: dict[str, Dimensions] = field(default_factory=dict)
    """Stage 5's five dimension scores of each subtask."""
    quality: dict[str, float] = field(default_factory=dict)
    """Observed quality of each scored subtask's output, in [0, 1] (stage 7)."""
    quality_report: QualityReport | None = None
    fallbacks: int = 0
    """Subtasks the judge or the custom scorer could not score: the heuristics did."""


@dataclass
class Learning:
    """What the LEARN phase writes (agent metrics go to the store): the answer."""

    final_answer: str | None = None


@dataclass
class Carried:
    """What a resumed workflow took over from the process that ran it before (see
    :mod:`automatos.phases.resume`)."""

    results: int = 0
    """Subtask results kept from before: those subtasks are not run again."""
    prompts: dict[str, PromptUse] = field(default_factory=dict)
    """The prompt versions the first process used before its checkpoint (the planner's):
    recorded with the run beside those used after."""


@dataclass
class WorkflowState:
    """Everything known about one workflow so far.

    Each phase writes its own part (:attr:`planning`, :attr:`execution`, :attr:`evaluation`,
    :attr:`learning`); the rest is the workflow's own: its request, level, agents, spend,
    warnings and log.
    """

    request: WorkflowRequest
    runtime: Runtime
    bus: EventBus
    agents: dict[str, AgentSpec] = field(default_factory=dict)
    level: LevelChoice | None = None
    """The complexity level the workflow runs at, and the stages that means."""
    planning: Planning = field(default_factory=Planning)
    preparation: Preparation = field(default_factory=Preparation)
    execution: Execution = field(default_factory=Execution)
    evaluation: Evaluation = field(default_factory=Evaluation)
    learning: Learning = field(default_factory=Learning)
    llm_calls: list[LLMCall] = field(default_factory=list)
    stages: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    stage_log: list[dict[str, Any]] = field(default_factory=list)
    """Per-stage metadata (name, phase, seconds, error), as stored with the execution."""
    writer: BatchWriter | None = None
    owner: str | None = None
    """The token this process holds the run's record by (set with the record): the store
    takes the run's writes only while it is the run's, and refuses them once another
    process resumed the run."""
    spent_tokens: int = 0
    spent_usd: float = 0.0
    started: float = field(default_factory=time.perf_counter)
    budget: Budget | None = None
    """The workflow's token and dollar budget, if it has one (the request's, else the
    settings')."""
    unpriced: set[str] = field(default_factory=set)
    """Models whose calls had no known price: the result's cost leaves them out."""
    deadline: float | None = None
    """When the workflow must end (event-loop time, ``execution.workflow_timeout_s``)."""
    plan_shown: tuple[object, ...] | None = None
    """The plan and agents the last ``plan_ready`` event showed."""
    checkpointed: tuple[object, dict[str, Any]] | None = None
    """The plan of the run's last stored checkpoint, and that plan as stored (its record's
    end reuses it while the plan is the same object)."""
    carried: Carried | None = None
    """Set when the workflow was resumed: what it took over."""

    def __post_init__(self) -> None:
        if not self.agents:
            self.agents = {DEFAULT_AGENT.name: DEFAULT_AGENT}
            self.agents.update((a.name, a) for a in self.request.agents)
        if self.budget is None:
            execution = self.runtime.settings.execution
            tokens = self.request.budget_tokens or execution.budget_tokens
            usd = self.request.budget_usd or execution.budget_usd
            if tokens is not None or usd is not None:
                self.budget = Budget(tokens, usd)

    def prompt(self, slug: str, **fields: object) -> str:
        """The workflow's template for ``slug`` (see :mod:`automatos.prompts.catalog`),
        filled with ``fields``; the version used is recorded with the run."""
        return self.preparation.prompts.render(slug, fields)

    def time_left(self) -> float:
        """Seconds until the workflow's deadline (``inf`` without one, 0 once it passed)."""
        if self.deadline is None:
            return math.inf
        left = self.deadline - asyncio.get_running_loop().time()
        return left if left > _TIMER_SLACK_S else 0.0

    def tokens_left(self) -> int | None:
        """Tokens the workflow's budget leaves now (``None``: it has no token budget)."""
        budget = self.budget
        if budget is None or budget.tokens is None:
            return None
        return max(0, budget.tokens - self.spent_tokens)

    def call_refusal(self, estimated_tokens: int) -> str | None:
        """Why a model call outside the subtasks (synthesis, judge) of about this many tokens
        may not be made now, or ``None`` if it may (or there is no budget)."""
        if self.budget is None:
            return None
        return self.budget.call_refusal(
            self.spent_tokens, self.spent_usd, estimated_tokens, self.unpriced
        )

    @property
    def workflow_id(self) -> str:
        """The request's workflow id."""
        return self.request.workflow_id

    def require_plan(self) -> Plan:
        """The plan, which every stage after planning may rely on."""
        plan = self.planning.plan
        if plan is None:
            raise RuntimeError("no plan yet: a planning stage must run first")
        return plan

    def record_call(self, stage: str, done: Completion, subtask_id: str | None = None) -> None:
        """Keep one model call in the workflow's call log (and the store); an answer reached
        through a tool loop is kept as the calls it took (its :attr:`~Completion.rounds`),
        each with its own tokens, cost and latency."""
        if done.rounds:
            for part in done.rounds:
                self.record_call(stage, part, subtask_id)
            return
        call = LLMCall(
            stage,
            done.model,
            subtask_id,
            done.tokens_in,
            done.tokens_out,
            done.cost_usd,
            done.latency_s,
            done.priced,
        )
        self.llm_calls.append(call)
        self.spent_tokens += call.tokens_in + call.tokens_out
        self.spent_usd += call.cost_usd
        if not done.priced:
            self.unpriced.add(done.model)
        if self.writer is not None:
            self.writer.add_call(call)

    def task_type(self, subtask_id: str) -> str:
        """The subtask's task type (computed on first use)."""
        types = self.planning.task_types
        kind = types.get(subtask_id)
        if kind is None:
            kind = types[subtask_id] = task_type(self.require_plan().by_id[subtask_id].description)
        return kind
