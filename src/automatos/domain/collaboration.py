"""What agents do together: negotiated plan changes, shared findings, the prompts a run used."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

__all__ = ["Finding", "NegotiationReport", "PromptUse", "ProposalOutcome"]


class ProposalOutcome(BaseModel):
    """One change an agent proposed to the plan (stage 2b), and its fate."""

    model_config = ConfigDict(frozen=True)

    round: int
    """The negotiation round, from 1."""
    agents: tuple[str, ...]
    """The agents that proposed it (two or more when they agree)."""
    kind: str
    """``split``, ``merge``, ``reassign``, ``add_dependency``, ``drop_dependency``,
    ``add_step``; ``malformed`` (an answer, or one proposal of it, that did not validate),
    ``over_limit`` (one outcome for the proposals past ``negotiation.max_proposals``) or
    ``failed`` (a review call that failed or that the budget or deadline refused)."""
    change: dict[str, Any]
    """The proposal as the agent stated it (validated; strings cut to 500 characters, lists
    to 20 items), or the error of a malformed one."""
    status: Literal["applied", "rejected"]
    reason: str
    """Why it was applied (who agreed) or rejected (what it would break)."""


class NegotiationReport(BaseModel):
    """Stage 2b's record: the plan before, each round's proposals with their fate."""

    model_config = ConfigDict(frozen=True)

    rounds: int
    plan_before: list[dict[str, Any]]
    """The subtasks (with their agents) before negotiation, as JSON specs."""
    proposals: tuple[ProposalOutcome, ...] = ()
    skipped: str = ""
    """Why no agent reviewed the plan, when the stage ran but had nothing to negotiate (too
    few agents or subtasks); empty when they did."""

    @property
    def applied(self) -> int:
        """How many changes were applied."""
        return sum(p.status == "applied" for p in self.proposals)


class Finding(BaseModel):
    """A fact, decision or open question an agent wrote to the workflow's shared context."""

    model_config = ConfigDict(frozen=True)

    id: int
    """Numbered from 1 in the order the findings were shared."""
    kind: Literal["fact", "decision", "question"]
    text: str
    subtask_id: str
    agent: str
    contradicts: tuple[int, ...] = ()
    """Ids of earlier findings this one contradicts."""


class PromptUse(BaseModel):
    """Which version of a stage's prompt a run used, and its A/B arm if it was in a test."""

    model_config = ConfigDict(frozen=True)

    slug: str
    version: int
    """0 for the built-in text: the run did not read the registry (it had no store, or its
    level's stages use no registry prompt, or a custom stage list has no ``prompt_variant``)."""
    test_id: int | None = None
    arm: Literal["control", "candidate"] | None = None
