"""How much machinery a request needs: the five complexity levels of the PRD."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict

__all__ = ["Level", "LevelChoice", "Phase"]


class Level(StrEnum):
    """A request's complexity, from a one-call answer to the whole pipeline."""

    ATOM = "atom"
    """A simple task: one agent, one model call, no plan and no evaluation call."""
    MOLECULE = "molecule"
    """One task that needs examples or context: prepare, execute, aggregate, respond."""
    CELL = "cell"
    """One substantial task: adds quality assessment and learning from it."""
    ORGAN = "organ"
    """Several deliverables for several agents: all five phases."""
    ORGANISM = "organism"
    """Large multi-part work: all five phases, learning across workflows."""

    @property
    def rank(self) -> int:
        """0 for Atom … 4 for Organism."""
        return _ORDER.index(self)


_ORDER = tuple(Level)


class Phase(StrEnum):
    """The five phases, in the order a workflow goes through them."""

    PLAN = "plan"
    PREPARE = "prepare"
    EXECUTE = "execute"
    EVALUATE = "evaluate"
    LEARN = "learn"


class LevelChoice(BaseModel):
    """The level a workflow runs at, who chose it and why, and what that meant.

    ``source`` is ``caller`` (the request or ``--level`` set it), ``settings``
    (``plan.level``), ``features`` (the request's own features decided) or ``model`` (the
    model classified it). ``skipped`` maps each stage of the full pipeline that did not run
    to the reason.
    """

    model_config = ConfigDict(frozen=True)

    level: Level
    source: str
    reasons: tuple[str, ...]
    stages: tuple[str, ...] = ()
    skipped: dict[str, str] = {}
