"""The registry's records and the store seam that keeps them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["AbOutcome", "AbStatus", "AbTest", "PromptState", "PromptStore", "PromptVersion"]

AbStatus = Literal["running", "activated", "rejected", "stopped", "inconclusive"]
"""A test runs until the rule decides (``activated``: the candidate was better and is now
active; ``rejected``: it was worse), its last look finds no difference (``inconclusive``),
or someone stops it (``stopped``)."""


class PromptVersion(BaseModel):
    """One version of one slug's template."""

    model_config = ConfigDict(frozen=True)

    slug: str
    version: int = Field(ge=1)
    text: str
    note: str = ""
    created_at: datetime
    active: bool = False


class AbTest(BaseModel):
    """An A/B test of a candidate version against the slug's active one."""

    model_config = ConfigDict(frozen=True)

    id: int
    slug: str
    control_version: int
    """The version active when the test started."""
    candidate_version: int
    share: float = Field(gt=0, lt=1)
    """The share of workflows that get the candidate."""
    min_per_arm: int
    """Outcomes per arm before the first decision; later looks come at multiples of it."""
    looks: int
    """How many times the rule looks (the last at ``looks × min_per_arm`` per arm)."""
    status: AbStatus
    decision: str = ""
    """The rule's verdict, or who stopped the test and why."""
    started_at: datetime
    ended_at: datetime | None = None


class AbOutcome(BaseModel):
    """What one workflow in an A/B test achieved (recorded when it ends)."""

    model_config = ConfigDict(frozen=True)

    test_id: int
    workflow_id: str
    arm: Literal["control", "candidate"]
    quality: float | None
    """Stage 7's Q; ``None`` where the run had no quality assessment."""
    success: bool
    tokens: int
    latency_s: float


class PromptState(BaseModel):
    """What a workflow needs of the registry: the active versions and the running tests."""

    model_config = ConfigDict(frozen=True)

    active: dict[str, PromptVersion]
    """The active version of each slug."""
    tests: list[AbTest] = []
    """The running A/B tests."""
    candidates: dict[int, PromptVersion] = {}
    """The candidate version of each running test, by test id."""


@runtime_checkable
class PromptStore(Protocol):
    """Versioned templates per slug, one active each, and A/B tests with their outcomes.

    Scoped to the store's workspace. A slug the registry does not hold yet is seeded with
    the code's text as version 1 the first time it is read.
    """

    async def prompt_state(self, defaults: Mapping[str, str]) -> PromptState:
        """The active version of each slug of ``defaults`` (seeding the slugs the registry
        does not hold with the text given as version 1), the running A/B tests and their
        candidates, in one transaction."""
        ...

    async def prompt_versions(self, slug: str) -> list[PromptVersion]:
        """Every version of ``slug``, oldest first (empty if it was never seeded)."""
        ...

    async def add_prompt(self, slug: str, text: str, note: str = "") -> PromptVersion:
        """Store ``text`` as the next version of ``slug`` (not active)."""
        ...

    async def activate_prompt(self, slug: str, version: int) -> None:
        """Make ``version`` the active one of ``slug``.

        Raises:
            PromptError: no such version.
        """
        ...

    async def start_ab(
        self, slug: str, candidate: int, share: float, min_per_arm: int, looks: int
    ) -> AbTest:
        """Start testing version ``candidate`` of ``slug`` against its active version.

        Raises:
            PromptError: no such version, it is the active one, or the slug already has a
                running test.
        """
        ...

    async def ab_tests(self, slug: str | None = None) -> list[AbTest]:
        """Tests, newest first (of one slug, if given)."""
        ...

    async def record_outcomes(self, outcomes: Sequence[AbOutcome]) -> None:
        """Keep each outcome once (a second for the same test and workflow is ignored)."""
        ...

    async def ab_outcomes(self, test_id: int) -> list[AbOutcome]:
        """The outcomes recorded for a test, oldest first."""
        ...

    async def end_ab(
        self, test_id: int, status: AbStatus, decision: str, *, activate: bool = False
    ) -> AbTest:
        """End a running test with its verdict; with ``activate`` its candidate becomes the
        active version in the same transaction.

        Raises:
            PromptError: no such test, or it has already ended.
        """
        ...
