"""The decision rule of an A/B test: when a candidate prompt is better, worse, or neither.

Each workflow in a test is one outcome of its arm. The rule compares the arms' quality (stage
7's Q) with Welch's two-sided t-test; a failed run without a Q counts as Q = 0, so that a
candidate that breaks runs loses, and a successful run without a Q (no stage 7) is not
counted. The rule is group-sequential: it looks when both arms have ``min_per_arm × k``
counted outcomes, for k = 1 … ``looks``, and decides at the first look whose p-value is
below Pocock's nominal level for that many looks, which keeps the chance of a false decision
over the whole test at α = 0.05 (looking after every run instead would raise it far above).

A look compares equal samples of the arms, ``min_per_arm × k`` outcomes each: all of the
smaller arm's, and as many of the larger arm's (the control, with most of the traffic) taken
evenly over its outcomes so far, so that both samples span the same time. Each look's sample
holds the previous look's, as Pocock's boundaries assume. Equal samples because Q is bounded
and skewed (most answers score near the top, a few fail), and Welch's test of a sample
against one four times larger is then lopsided: it finds a useless candidate better about 6%
of the time instead of 2.5% (simulated on the heuristic scorer's scores of good answers; 8%
with 5% of runs failed). With equal samples the statistic is symmetric.

A look uses the outcomes recorded up to the one that completed it, oldest first, so the
verdict is the same whenever it is asked: outcomes recorded later wait for the next look,
and a test evaluated after several looks became due is judged at each in turn.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict

from automatos.errors import PromptError
from automatos.prompts.base import AbOutcome, AbTest
from automatos.prompts.stats import Welch, pocock_level, welch

__all__ = ["AbVerdict", "Decision", "evaluate", "scored_quality"]

Decision = Literal["continue", "activate", "reject", "inconclusive"]

_T = TypeVar("_T")


class AbVerdict(BaseModel):
    """What the rule says of a test, and the figures it said it on.

    The figures are those of the look that decided, or of the latest look; before the first
    look (``look`` 0), of the outcomes so far. Q is compared on equal samples of the arms
    (``n_control == n_candidate``); the runs, success rates, tokens and latencies are of every
    run of each arm the figures cover.
    """

    model_config = ConfigDict(frozen=True)

    test_id: int
    decision: Decision
    """``activate`` (the candidate is better), ``reject`` (worse), ``inconclusive`` (the last
    look found no difference) or ``continue`` (no decision yet)."""
    reason: str
    """The verdict in a sentence, with the figures."""
    look: int
    """The look the figures come from; 0 before the first."""
    looks: int
    boundary: float
    """The nominal two-sided level a p-value must be below at each look (Pocock's)."""
    next_look_at: int | None
    """Counted outcomes per arm the next look needs; ``None`` once the rule has decided."""
    n_control: int
    n_candidate: int
    """Outcomes per arm in the test of Q, equal: ``min_per_arm × look`` (before the first
    look, the smaller arm's counted outcomes), the larger arm's taken evenly over its own."""
    mean_control: float | None
    mean_candidate: float | None
    """Mean Q of each arm's sample (a failed run without Q as 0); ``None`` while an arm has
    no counted outcome."""
    effect: float | None
    """``mean_candidate - mean_control``."""
    low: float | None
    high: float | None
    """Welch's 95% interval of the effect; ``None`` until each arm has two outcomes."""
    p_value: float | None
    """Welch's two-sided p-value; ``None`` until each arm has two outcomes."""
    runs_control: int
    runs_candidate: int
    """Runs per arm the figures cover, counted in the test of Q or not."""
    success_rate_control: float | None
    success_rate_candidate: float | None
    mean_tokens_control: float | None
    mean_tokens_candidate: float | None
    mean_latency_s_control: float | None
    mean_latency_s_candidate: float | None
    recorded: int
    """Every outcome recorded for the test, those after the look included."""

    @property
    def runs(self) -> int:
        """Runs the figures cover (at a decision: the runs the test took to decide)."""
        return self.runs_control + self.runs_candidate


def scored_quality(outcome: AbOutcome) -> float | None:
    """The Q an outcome counts with: its own, 0 for a failed run without one, ``None`` (not
    counted) for a successful run without one."""
    if outcome.quality is not None:
        return outcome.quality
    return None if outcome.success else 0.0


@dataclass
class _Arm:
    """Running totals of one arm's outcomes, and the sample of them the looks compare."""

    q: list[float] = field(default_factory=list)
    sample: list[float] = field(default_factory=list)
    taken: set[int] = field(default_factory=set)
    """Which of :attr:`q` are in :attr:`sample`."""
    runs: int = 0
    successes: int = 0
    tokens: int = 0
    latency_s: float = 0.0

    def add(self, outcome: AbOutcome) -> None:
        self.runs += 1
        self.successes += outcome.success
        self.tokens += outcome.tokens
        self.latency_s += outcome.latency_s
        q = scored_quality(outcome)
        if q is not None:
            self.q.append(q)

    def per_run(self, total: float) -> float | None:
        return total / self.runs if self.runs else None

    def grow_sample(self, size: int) -> None:
        """Add outcomes to the sample until it holds ``size``, taken evenly over those not in
        it yet. Each look's sample holds the previous look's, as the boundaries assume: a
        sample drawn afresh at each look would decide wrongly more often (6.5% instead of 5%
        over four looks)."""
        left = [i for i in range(len(self.q)) if i not in self.taken]
        for i in _evenly(left, size - len(self.sample)):
            self.taken.add(i)
            self.sample.append(self.q[i])


def evaluate(test: AbTest, outcomes: Sequence[AbOutcome]) -> AbVerdict:
    """Apply the rule to a test's outcomes, oldest first (as the store returns them).

    A second outcome of the same workflow is ignored, as the store ignores it.

    Raises:
        PromptError: an outcome belongs to another test, or the test looks more than five
            times (Pocock's levels are tabled for one to five).
    """
    boundary = pocock_level(test.looks)
    # Fewer than two per arm leaves no variance to test with.
    per_look = max(2, test.min_per_arm)
    runs = _distinct(test, outcomes)
    arms = {"control": _Arm(), "candidate": _Arm()}
    verdict: AbVerdict | None = None
    look = 0
    for outcome in runs:
        arms[outcome.arm].add(outcome)
        counted = min(len(arms["control"].q), len(arms["candidate"].q))
        if look < test.looks and counted >= per_look * (look + 1):
            look += 1
            for arm in arms.values():
                arm.grow_sample(per_look * look)
            verdict = _verdict(test, arms, look, boundary, per_look, len(runs))
            if verdict.decision != "continue":
                return verdict  # the rule stops at its first decision
    if verdict is None:
        verdict = _verdict(test, arms, 0, boundary, per_look, len(runs))
    return verdict


def _distinct(test: AbTest, outcomes: Sequence[AbOutcome]) -> list[AbOutcome]:
    """The first outcome of each workflow, in order."""
    seen: set[str] = set()
    runs = []
    for outcome in outcomes:
        if outcome.test_id != test.id:
            raise PromptError(
                f"an outcome of A/B test {outcome.test_id} was given to evaluate test {test.id}"
            )
        if outcome.workflow_id not in seen:
            seen.add(outcome.workflow_id)
            runs.append(outcome)
    return runs


def _evenly(values: list[_T], n: int) -> list[_T]:
    """``n`` of ``values`` taken evenly over them (all of them when there are ``n``)."""
    if n <= 0:
        return []
    step = len(values) / n
    return [values[int((j + 0.5) * step)] for j in range(n)]


def _verdict(
    test: AbTest,
    arms: dict[str, _Arm],
    look: int,
    boundary: float,
    per_look: int,
    recorded: int,
) -> AbVerdict:
    control, candidate = arms["control"], arms["candidate"]
    if look:
        a, b = control.sample, candidate.sample
    else:  # no look yet: what equal samples of the outcomes so far show
        n = min(len(control.q), len(candidate.q))
        a, b = _evenly(control.q, n), _evenly(candidate.q, n)
    result = welch(a, b)
    decision = _decide(result, look, test.looks, boundary)
    return AbVerdict(
        test_id=test.id,
        decision=decision,
        reason=_reason(decision, result, control, candidate, look, test.looks, boundary, per_look),
        look=look,
        looks=test.looks,
        boundary=boundary,
        next_look_at=per_look * (look + 1) if decision == "continue" else None,
        n_control=len(a),
        n_candidate=len(b),
        mean_control=_mean(a),
        mean_candidate=_mean(b),
        effect=result.effect if result is not None else None,
        low=result.low if result is not None else None,
        high=result.high if result is not None else None,
        p_value=result.p_value if result is not None else None,
        runs_control=control.runs,
        runs_candidate=candidate.runs,
        success_rate_control=control.per_run(control.successes),
        success_rate_candidate=candidate.per_run(candidate.successes),
        mean_tokens_control=control.per_run(control.tokens),
        mean_tokens_candidate=candidate.per_run(candidate.tokens),
        mean_latency_s_control=control.per_run(control.latency_s),
        mean_latency_s_candidate=candidate.per_run(candidate.latency_s),
        recorded=recorded,
    )


def _mean(values: list[float]) -> float | None:
    return math.fsum(values) / len(values) if values else None


def _decide(result: Welch | None, look: int, looks: int, boundary: float) -> Decision:
    if look == 0 or result is None:
        return "continue"
    if result.p_value < boundary:
        return "activate" if result.effect > 0 else "reject"
    return "inconclusive" if look == looks else "continue"


def _reason(
    decision: Decision,
    result: Welch | None,
    control: _Arm,
    candidate: _Arm,
    look: int,
    looks: int,
    boundary: float,
    per_look: int,
) -> str:
    if look == 0:
        return (
            f"no look yet: the first comes at {per_look} counted outcomes per arm (control "
            f"{len(control.q)}, candidate {len(candidate.q)} so far)"
        )
    assert result is not None  # a look needs per_look >= 2 outcomes in each arm
    figures = (
        f"Q {result.mean_b:.3f} against {result.mean_a:.3f}, effect {result.effect:+.3f} "
        f"(95% CI {result.low:+.3f} to {result.high:+.3f}), p = {result.p_value:.3g}"
    )
    where = (
        f"look {look} of {looks} ({result.n_a} outcomes per arm, of {control.runs} control "
        f"and {candidate.runs} candidate runs)"
    )
    if decision == "activate":
        return f"the candidate is better at {where}: {figures} < {boundary:g}"
    if decision == "reject":
        return f"the candidate is worse at {where}: {figures} < {boundary:g}"
    if decision == "inconclusive":
        return f"no difference shown by the last look, {where}: {figures} ≥ {boundary:g}"
    return (
        f"no difference yet at {where}: {figures} ≥ {boundary:g}; the next look comes at "
        f"{per_look * (look + 1)} per arm"
    )
