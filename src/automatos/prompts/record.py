"""Recording a finished workflow's outcome in its A/B tests, and ending the tests the rule
decides."""

from __future__ import annotations

from collections.abc import Mapping

from automatos.domain.collaboration import PromptUse
from automatos.errors import PromptError
from automatos.prompts.ab import Decision, evaluate
from automatos.prompts.base import AbOutcome, AbStatus, AbTest, PromptStore

__all__ = ["record_run"]

_ENDS: Mapping[Decision, AbStatus] = {
    "activate": "activated",
    "reject": "rejected",
    "inconclusive": "inconclusive",
}


async def record_run(
    store: PromptStore,
    workflow_id: str,
    uses: Mapping[str, PromptUse],
    *,
    quality: float | None,
    success: bool,
    tokens: int,
    latency_s: float,
) -> list[str]:
    """Record one workflow's outcome in every A/B test it took part in, then end each test
    whose rule has decided (activating a better candidate).

    Args:
        store: the registry.
        workflow_id: the workflow.
        uses: the version and arm of each prompt the workflow used
            (:meth:`PromptSet.uses <automatos.prompts.resolve.PromptSet.uses>`).
        quality: stage 7's Q, ``None`` if the run had none.
        success: whether the run succeeded.
        tokens: tokens the run used, prompt and answer.
        latency_s: the run's duration.

    Returns:
        One line for each test this call ended, saying how and why.

    Raises:
        StoreError: the store failed.
        PromptError: a use names a test the store does not have.
    """
    outcomes: dict[int, AbOutcome] = {}
    slugs: dict[int, str] = {}
    for use in uses.values():
        if use.test_id is None or use.arm is None:
            continue
        slugs[use.test_id] = use.slug
        outcomes[use.test_id] = AbOutcome(
            test_id=use.test_id,
            workflow_id=workflow_id,
            arm=use.arm,
            quality=quality,
            success=success,
            tokens=tokens,
            latency_s=latency_s,
        )
    if not outcomes:
        return []
    await store.record_outcomes(list(outcomes.values()))
    lines = []
    for test in await _running(store, slugs):
        line = await _conclude(store, test)
        if line is not None:
            lines.append(line)
    return lines


async def _running(store: PromptStore, slugs: Mapping[int, str]) -> list[AbTest]:
    """The tests of ``slugs`` (test id to slug) that are still running."""
    running = []
    for slug in sorted(set(slugs.values())):
        running += [
            t for t in await store.ab_tests(slug) if t.id in slugs and t.status == "running"
        ]
    return running


async def _conclude(store: PromptStore, test: AbTest) -> str | None:
    """End ``test`` if the rule decides; the line that says so, or ``None``."""
    verdict = evaluate(test, await store.ab_outcomes(test.id))
    status = _ENDS.get(verdict.decision)
    if status is None:
        return None
    try:
        await store.end_ab(test.id, status, verdict.reason, activate=status == "activated")
    except PromptError:
        return None  # another workflow's process ended it first, and says so itself
    return (
        f"A/B test {test.id} of prompt {test.slug!r} (version {test.candidate_version} "
        f"against {test.control_version}) {status}: {verdict.reason}"
    )
