"""The PhaseSelector: which stages a workflow runs, from its level and its mode.

The PRD's table of levels, with this engine's stages (the PRD's numbers in brackets):

=========  ==================================================  ==============================
level      stages                                              a recipe instead of planning
=========  ==================================================  ==============================
Atom       one_step, context [3], execute [4], memory [8],     recipe, select_agents
           respond [9]
Molecule   one_step, context, execute, aggregate [5],          recipe, select_agents
           memory, respond
Cell       … aggregate, assess [7], learn [6], memory,         recipe, select_agents
           respond
Organ      prompt_variant [3b], decompose [1],                 prompt_variant, recipe,
           select_agents [2], negotiate [2b], context,         select_agents, negotiate,
           coordinate [4b], execute, aggregate, assess,        context, coordinate, …
           learn, memory, respond
Organism   as Organ
=========  ==================================================  ==============================

``one_step`` makes the request its own single subtask with the agent the scores choose, no
model call: the levels below Organ have no PLAN phase. ``context`` runs at every level, within
the level's token budget (the PRD gives Atom 50–200 tokens of context, so an Atom is answered
from the knowledge base too), for the subtasks that require context; it and ``memory`` need a
store and an embedder. ``prompt_variant`` (the registry's versions and A/B arms) runs first
where it runs, since the plan's own prompts are versioned too; it needs a store. ``negotiate``
and ``coordinate`` need a model that plans (its profile: a small base model echoes
conventions back instead of following them); ``negotiate`` acts only on plans of
``negotiation.min_agents`` agents or more. Quality stages need ``quality.enabled``, learning a
store. Stages of the PRD this engine does not have yet (cross-workflow learning) are listed
among those not run, saying so.

A caller runs its own stage list by passing any object with :meth:`StageSelector.select` to
the engine (``Engine(selector=...)``); the pipeline checks its list all the same.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol

from automatos.domain.level import Level
from automatos.domain.request import WorkflowRequest
from automatos.phases.contracts import Stage
from automatos.phases.evaluate.aggregate import AggregateStage
from automatos.phases.evaluate.assess import AssessStage
from automatos.phases.execute.coordinate import CoordinateStage
from automatos.phases.execute.dispatch import ExecuteStage
from automatos.phases.execute.one_step import OneStepStage
from automatos.phases.learn.memory import MemoryStage
from automatos.phases.learn.metrics import LearnStage
from automatos.phases.learn.respond import RespondStage
from automatos.phases.plan.decompose import DecomposeStage
from automatos.phases.plan.negotiate import NegotiateStage
from automatos.phases.plan.recipe import RecipeStage
from automatos.phases.plan.select import SelectStage
from automatos.phases.prepare.context import ContextStage
from automatos.phases.prepare.prompt_variant import PromptVariantStage
from automatos.phases.state import Runtime

__all__ = ["NOT_BUILT", "PhaseSelector", "StageSelection", "StageSelector"]

NOT_BUILT: Mapping[str, tuple[Level, str]] = MappingProxyType({})
"""The PRD's stages this engine does not have yet: the lowest level whose stages include
each (the PRD's table of levels), and what it will do."""


@dataclass(frozen=True)
class StageSelection:
    """The stages to run, in order, and each stage left out with the reason."""

    stages: Sequence[Stage]
    skipped: dict[str, str] = field(default_factory=dict)


class StageSelector(Protocol):
    """Chooses a workflow's stages; :class:`PhaseSelector` is the engine's own."""

    def select(self, request: WorkflowRequest, level: Level, runtime: Runtime) -> StageSelection:
        """The stages ``request`` runs at ``level``."""
        ...


class PhaseSelector:
    """The PRD's table of levels and phases (see the module's docstring)."""

    def select(self, request: WorkflowRequest, level: Level, runtime: Runtime) -> StageSelection:
        """The stages ``request`` runs at ``level`` (see the module's table)."""
        chosen = _Choice(level, runtime)
        chosen.plan(request)
        chosen.context()
        chosen.coordinate()
        chosen.add(ExecuteStage())
        chosen.evaluate()
        chosen.learn()
        chosen.memory()
        chosen.add(RespondStage())
        chosen.prompts()
        chosen.unbuilt()
        return StageSelection(chosen.stages, chosen.skipped)


class _Choice:
    """The stages chosen so far for one level, and each left out with its reason."""

    def __init__(self, level: Level, runtime: Runtime) -> None:
        self.level = level
        self.runtime = runtime
        self.name = level.value.capitalize()
        self.planned = level.rank >= Level.ORGAN.rank
        self.stages: list[Stage] = []
        self.skipped: dict[str, str] = {}

    def add(self, stage: Stage) -> None:
        self.stages.append(stage)

    def plan(self, request: WorkflowRequest) -> None:
        """PLAN: a recipe's, a planned one (negotiated), or the request as one step."""
        skipped, name, runtime = self.skipped, self.name, self.runtime
        if request.is_recipe:  # below Organ, no model call chooses its agents either
            self.stages += [RecipeStage(), SelectStage(ask_model=None if self.planned else False)]
            skipped["decompose"] = "a recipe brings its own subtasks"
            skipped["negotiate"] = "a recipe's plan is the caller's: not negotiated"
        elif self.planned:
            self.stages += [DecomposeStage(), SelectStage()]
            if not runtime.settings.negotiation.enabled:
                skipped["negotiate"] = "negotiation.enabled is off"
            elif not runtime.profile.plans_freely:
                skipped["negotiate"] = (
                    "the model cannot plan freely (its profile), so cannot negotiate"
                )
            else:
                self.add(NegotiateStage())
        else:
            self.add(OneStepStage())
            reason = f"{name}: one deliverable, run as one step by the agent the scores choose"
            skipped["decompose"] = skipped["select_agents"] = reason
            skipped["negotiate"] = f"{name}: one step, no team to negotiate it"

    def context(self) -> None:
        """Stage 3 at every level, within the level's budget (Atom's is 200 tokens), for the
        subtasks whose plan says they need context."""
        runtime = self.runtime
        if not runtime.settings.context.enabled:
            self.skipped["context"] = "context.enabled is off"
        elif runtime.store is None:
            self.skipped["context"] = "no store: no knowledge base or memory to draw from"
        elif runtime.context is None:
            self.skipped["context"] = "no embedder: retrieval is not set up for this engine"
        else:
            self.add(ContextStage())

    def memory(self) -> None:
        """Stage 8 at every level (an Atom's run is remembered as well), with a store."""
        runtime = self.runtime
        if not runtime.settings.memory.enabled:
            self.skipped["memory"] = "memory.enabled is off"
        elif runtime.store is None:
            self.skipped["memory"] = "no store to remember in"
        elif runtime.context is None:
            self.skipped["memory"] = "no embedder: memories could not be recalled"
        else:
            self.add(MemoryStage())

    def coordinate(self) -> None:
        """Stage 4b, for a plan of several steps and a model that follows its convention."""
        runtime = self.runtime
        if not self.planned:
            reason = f"{self.name}: one step, no other agents to share findings with"
            self.skipped["coordinate"] = reason
        elif not runtime.settings.coordination.enabled:
            self.skipped["coordinate"] = "coordination.enabled is off"
        elif not runtime.profile.plans_freely:
            # A base model answers the findings convention by echoing it back as its answer.
            self.skipped["coordinate"] = (
                "the model cannot follow the findings convention (its profile does not plan freely)"
            )
        else:
            self.add(CoordinateStage())

    def evaluate(self) -> None:
        """EVALUATE: stage 5 from Molecule, stage 7 from Cell, if quality is on."""
        skipped, name, level = self.skipped, self.name, self.level
        if level is Level.ATOM:
            skipped["aggregate"] = skipped["assess"] = "Atom: no evaluation"
        elif not self.runtime.settings.quality.enabled:
            skipped["aggregate"] = skipped["assess"] = "quality.enabled is off"
        else:
            self.add(AggregateStage())
            if level.rank >= Level.CELL.rank:
                self.add(AssessStage())
            else:
                skipped["assess"] = f"{name}: no quality assessment"

    def learn(self) -> None:
        """Stage 6 from Cell, with a store to learn into."""
        if self.level.rank < Level.CELL.rank:
            self.skipped["learn"] = f"{self.name}: no agent-metrics update"
        elif self.runtime.store is None:
            self.skipped["learn"] = "no store to learn into"
        else:
            self.add(LearnStage())

    def prompts(self) -> None:
        """Stage 3b, first, where a stage uses a registry prompt: the plan, the steps of a
        plan, the judge (from Cell) and the synthesis of several steps; an Atom or a
        Molecule uses none."""
        if not (self.planned or any(isinstance(s, AssessStage) for s in self.stages)):
            reason = f"{self.name}: no stage of this level uses a registry prompt"
            self.skipped["prompt_variant"] = reason
        elif self.runtime.store is None:
            self.skipped["prompt_variant"] = "no store: the built-in prompts are used"
        else:
            self.stages.insert(0, PromptVariantStage())

    def unbuilt(self) -> None:
        """The PRD's stages not built yet, said so where the level has them."""
        level = self.level
        for stage, (lowest, what) in NOT_BUILT.items():
            self.skipped[stage] = (
                f"not built yet: {what}"
                if level.rank >= lowest.rank
                else f"{self.name}: not part of this level ({what})"
            )
        if level is Level.ORGANISM:
            self.skipped["cross_workflow_learning"] = "not built yet: learning across workflows"
