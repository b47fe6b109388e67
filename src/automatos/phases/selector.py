"""The PhaseSelector: which stages a workflow runs, from its level and its mode.

The PRD's table of levels, with this engine's stages (the PRD's numbers in brackets):

=========  =============================================  ==================================
level      stages                                         a recipe instead of planning
=========  =============================================  ==================================
Atom       one_step, execute [4], respond [9]             recipe, select_agents
Molecule   one_step, execute, aggregate [5], respond      recipe, select_agents
Cell       … aggregate, assess [7], learn [6], respond    recipe, select_agents
Organ      prompt_variant [3b], decompose [1],            prompt_variant, recipe,
           select_agents [2], negotiate [2b],             select_agents, negotiate,
           coordinate [4b], execute, aggregate, assess,   coordinate, …
           learn, respond
Organism   as Organ
=========  =============================================  ==================================

``one_step`` makes the request its own single subtask with the agent the scores choose, no
model call: the levels below Organ have no PLAN phase. ``prompt_variant`` (the registry's
versions and A/B arms) runs first where it runs, since the plan's own prompts are versioned
too; it needs a store. ``negotiate`` and ``coordinate`` need a model that plans (its
profile: a small base model echoes conventions back instead of following them);
``negotiate`` acts only on plans of ``negotiation.min_agents`` agents or more. Quality stages need
``quality.enabled``, learning a store. Stages of the PRD this engine does not have yet are
listed among those not run, saying so.

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
from automatos.phases.learn.metrics import LearnStage
from automatos.phases.learn.respond import RespondStage
from automatos.phases.plan.decompose import DecomposeStage
from automatos.phases.plan.negotiate import NegotiateStage
from automatos.phases.plan.recipe import RecipeStage
from automatos.phases.plan.select import SelectStage
from automatos.phases.prepare.prompt_variant import PromptVariantStage
from automatos.phases.state import Runtime

__all__ = ["NOT_BUILT", "PhaseSelector", "StageSelection", "StageSelector"]

NOT_BUILT: Mapping[str, tuple[Level, str]] = MappingProxyType(
    {
        "context": (Level.MOLECULE, "context engineering within a token budget (PRD stage 3)"),
        "memory": (Level.ATOM, "memory storage (PRD stage 8)"),
    }
)
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
    """the PRD's table of levels of levels and phases."""

    def select(self, request: WorkflowRequest, level: Level, runtime: Runtime) -> StageSelection:
        """The stages ``request`` runs at ``level`` (see the module's table)."""
        stages: list[Stage] = []
        skipped: dict[str, str] = {}
        name = level.value.capitalize()
        planned = level.rank >= Level.ORGAN.rank
        if request.is_recipe:  # below Organ, no model call chooses its agents either
            stages += [RecipeStage(), SelectStage(ask_model=None if planned else False)]
            skipped["decompose"] = "a recipe brings its own subtasks"
            skipped["negotiate"] = "a recipe's plan is the caller's: not negotiated"
        elif planned:
            stages += [DecomposeStage(), SelectStage()]
            if not runtime.settings.negotiation.enabled:
                skipped["negotiate"] = "negotiation.enabled is off"
            elif not runtime.profile.plans_freely:
                skipped["negotiate"] = (
                    "the model cannot plan freely (its profile), so cannot negotiate"
                )
            else:
                stages.append(NegotiateStage())
        else:
            stages.append(OneStepStage())
            reason = f"{name}: one deliverable, run as one step by the agent the scores choose"
            skipped["decompose"] = skipped["select_agents"] = reason
            skipped["negotiate"] = f"{name}: one step, no team to negotiate it"
        if not planned:
            skipped["coordinate"] = f"{name}: one step, no other agents to share findings with"
        elif not runtime.settings.coordination.enabled:
            skipped["coordinate"] = "coordination.enabled is off"
        elif not runtime.profile.plans_freely:
            # A base model answers the findings convention by echoing it back as its answer.
            skipped["coordinate"] = (
                "the model cannot follow the findings convention (its profile does not plan freely)"
            )
        else:
            stages.append(CoordinateStage())
        stages.append(ExecuteStage())
        quality = runtime.settings.quality.enabled
        if level is Level.ATOM:
            skipped["aggregate"] = skipped["assess"] = "Atom: no evaluation"
        elif not quality:
            skipped["aggregate"] = skipped["assess"] = "quality.enabled is off"
        else:
            stages.append(AggregateStage())
            if level.rank >= Level.CELL.rank:
                stages.append(AssessStage())
            else:
                skipped["assess"] = f"{name}: no quality assessment"
        if level.rank < Level.CELL.rank:
            skipped["learn"] = f"{name}: no agent-metrics update"
        elif runtime.store is None:
            skipped["learn"] = "no store to learn into"
        else:
            stages.append(LearnStage())
        stages.append(RespondStage())
        # Registry prompts are used by the plan, the steps of a plan, the judge (from Cell)
        # and the synthesis of several steps; below, an Atom or Molecule uses none.
        if not (planned or any(isinstance(s, AssessStage) for s in stages)):
            skipped["prompt_variant"] = f"{name}: no stage of this level uses a registry prompt"
        elif runtime.store is None:
            skipped["prompt_variant"] = "no store: the built-in prompts are used"
        else:
            stages.insert(0, PromptVariantStage())
        for stage, (lowest, what) in NOT_BUILT.items():
            skipped[stage] = (
                f"not built yet: {what}"
                if level.rank >= lowest.rank
                else f"{name}: not part of this level ({what})"
            )
        if level is Level.ORGANISM:
            skipped["cross_workflow_learning"] = "not built yet: learning across workflows"
        return StageSelection(stages, skipped)
