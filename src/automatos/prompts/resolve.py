"""The prompts one workflow uses: the active versions, or a test's candidate for its arm."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from automatos.domain.collaboration import PromptUse
from automatos.errors import PromptError
from automatos.prompts.base import PromptState
from automatos.prompts.catalog import CATALOG, check_template, render

__all__ = ["Arm", "PromptChoice", "PromptSet", "arm_of"]

Arm = Literal["control", "candidate"]


def arm_of(test_id: int, workflow_id: str, share: float) -> Arm:
    """The arm of ``workflow_id`` in test ``test_id``: the same every time it is asked, and
    ``candidate`` for a ``share`` of workflow ids (a hash, not a random draw, so that a
    resumed or retried workflow stays in its arm, and two tests split independently)."""
    digest = hashlib.sha256(f"{test_id}:{workflow_id}".encode()).digest()
    point = int.from_bytes(digest[:8], "big") / 2.0**64
    return "candidate" if point < share else "control"


@dataclass(frozen=True)
class PromptChoice:
    """The template a workflow uses for one slug."""

    slug: str
    version: int
    text: str
    test_id: int | None = None
    arm: Arm | None = None


@dataclass
class PromptSet:
    """The workflow's template for each slug, and which slugs it has used so far."""

    choices: dict[str, PromptChoice] = field(default_factory=dict)
    used: dict[str, PromptChoice] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    """Stored versions this engine cannot fill (a template from another version of it), each
    replaced by the built-in text."""

    @classmethod
    def from_state(cls, registry: PromptState, workflow_id: str) -> PromptSet:
        """The active versions, with the candidate for each test whose arm is ``candidate``."""
        problems: list[str] = []
        choices = {
            slug: PromptChoice(slug, v.version, v.text)
            for slug, v in registry.active.items()
            if _usable(slug, v.version, v.text, problems)
        }
        for test in registry.tests:
            active = choices.get(test.slug)
            candidate = registry.candidates.get(test.id)
            if active is None or candidate is None:
                continue
            if not _usable(test.slug, candidate.version, candidate.text, problems):
                continue
            arm = arm_of(test.id, workflow_id, test.share)
            if arm == "candidate":
                choices[test.slug] = PromptChoice(
                    test.slug, candidate.version, candidate.text, test.id, arm
                )
            else:
                choices[test.slug] = PromptChoice(
                    test.slug, active.version, active.text, test.id, arm
                )
        return cls(choices, problems=problems)

    def choice(self, slug: str) -> PromptChoice:
        """The template for ``slug`` (the built-in one if the registry gave none), marked used.

        Raises:
            PromptError: ``slug`` is not one of the catalog's.
        """
        chosen = self.choices.get(slug)
        if chosen is None:
            spec = CATALOG.get(slug)
            if spec is None:
                raise PromptError(
                    f"unknown prompt slug {slug!r}; the slugs are {', '.join(CATALOG)}"
                )
            chosen = self.choices[slug] = PromptChoice(slug, 0, spec.text)
        self.used.setdefault(slug, chosen)
        return chosen

    def render(self, slug: str, fields: Mapping[str, object] | None = None) -> str:
        """The template for ``slug`` filled with ``fields``.

        Raises:
            PromptError: an unknown slug, or ``fields`` lack one the template uses.
        """
        text = self.choice(slug).text
        try:
            return render(text, fields or {})
        except KeyError as exc:
            raise PromptError(
                f"the {slug!r} prompt uses the field {exc.args[0]!r}, which was not given"
            ) from None

    def uses(self) -> dict[str, PromptUse]:
        """The version (and arm) of each slug used so far."""
        return {
            slug: PromptUse(slug=slug, version=c.version, test_id=c.test_id, arm=c.arm)
            for slug, c in sorted(self.used.items())
        }


def _usable(slug: str, version: int, text: str, problems: list[str]) -> bool:
    """Whether this engine can fill a stored template (checked again on every read: the
    store may have been written by another version of automatos, or by hand)."""
    if slug not in CATALOG:
        return False  # a slug of a newer automatos: no stage here asks for it
    try:
        check_template(slug, text)
    except PromptError as exc:
        problems.append(
            f"version {version} of {slug!r} cannot be used ({exc}); the built-in text is used"
        )
        return False
    return True
