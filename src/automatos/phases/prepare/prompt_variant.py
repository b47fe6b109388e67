"""Stage 3b: the version of each stage's prompt this workflow uses, its A/B arms included.

The registry (:mod:`automatos.prompts`) holds every stage's prompt as versioned templates,
one active per slug; an A/B test gives a share of workflows a candidate version instead,
chosen by the workflow's id (:func:`~automatos.prompts.resolve.arm_of`). The stage reads
the active versions and the running tests in one store transaction (seeding the built-in
texts the first time) and fixes the workflow's prompt set; every later stage takes its
prompt from it, and the versions used are recorded with the run.

It runs first among the stages that use prompts: the PRD places it in PREPARE, but the
plan's own prompts (the decomposer's, the selector's) are versioned and A/B tested too, so
it must come before them.
"""

from __future__ import annotations

import asyncio

from automatos.domain.event import PromptsChosen
from automatos.domain.level import Phase
from automatos.errors import StoreError
from automatos.phases.contracts import PROMPTS, REQUEST
from automatos.phases.state import WorkflowState
from automatos.prompts.base import PromptStore
from automatos.prompts.catalog import CATALOG
from automatos.prompts.resolve import PromptSet

__all__ = ["PromptVariantStage"]

_DEFAULTS = {slug: spec.text for slug, spec in CATALOG.items()}


class PromptVariantStage:
    """Stage 3b."""

    name = "prompt_variant"
    phase = Phase.PREPARE
    reads = frozenset({REQUEST})
    writes = frozenset({PROMPTS})
    after_deadline = False

    async def run(self, state: WorkflowState) -> None:
        """Fix the workflow's prompt versions from the registry."""
        store = state.runtime.store
        if not isinstance(store, PromptStore):
            return  # the built-in texts (the selector lists this stage only with a store)
        limit = state.runtime.settings.store.timeout_s
        try:
            async with asyncio.timeout(limit):
                registry = await store.prompt_state(_DEFAULTS)
        except (TimeoutError, StoreError) as exc:
            # A registry that cannot be read costs the run its A/B arm, not the run.
            why = str(exc) or f"no answer within {limit:g} s (setting store.timeout_s)"
            state.warnings.append(
                f"the prompt registry could not be read ({why}); the built-in prompts are used"
            )
            return
        prompts = PromptSet.from_state(registry, state.workflow_id)
        earlier = state.preparation.prompts.used
        if earlier:  # a stage list that runs this stage late: a slug keeps what it used
            prompts.choices.update(earlier)
            prompts.used.update(earlier)
            state.warnings.append(
                f"stage {self.name} ran after {', '.join(sorted(earlier))} had been used: "
                "their built-in texts stay for this run"
            )
        state.preparation.prompts = prompts
        state.warnings += prompts.problems
        state.bus.emit(
            PromptsChosen,
            prompts={
                slug: {"version": c.version, "test_id": c.test_id, "arm": c.arm}
                for slug, c in sorted(prompts.choices.items())
            },
        )
