"""The decision rule: Welch's test of Q at Pocock's looks."""

from __future__ import annotations

import itertools
import random
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime

import pytest

from automatos.errors import PromptError
from automatos.prompts.ab import evaluate, scored_quality
from automatos.prompts.base import AbOutcome, AbTest
from automatos.prompts.stats import pocock_level

_ids = itertools.count()


def _test(min_per_arm: int = 10, looks: int = 3, test_id: int = 1) -> AbTest:
    return AbTest(
        id=test_id, slug="executor", control_version=1, candidate_version=2, share=0.5,
        min_per_arm=min_per_arm, looks=looks, status="running", started_at=datetime.now(UTC),
    )  # fmt: skip


def _run(
    arm: str,
    quality: float | None,
    *,
    success: bool = True,
    tokens: int = 100,
    latency_s: float = 1.0,
    test_id: int = 1,
    workflow_id: str | None = None,
) -> AbOutcome:
    return AbOutcome(
        test_id=test_id,
        workflow_id=workflow_id or f"wf-{next(_ids)}",
        arm=arm,  # type: ignore[arg-type]
        quality=quality,
        success=success,
        tokens=tokens,
        latency_s=latency_s,
    )


def _pairs(control: Iterable[float], candidate: Iterable[float]) -> list[AbOutcome]:
    """Outcomes alternating between the arms."""
    runs = []
    for c, t in zip(control, candidate, strict=True):
        runs += [_run("control", c), _run("candidate", t)]
    return runs


def _cycle(values: list[float], n: int) -> list[float]:
    return [values[i % len(values)] for i in range(n)]


SPREAD = [0.5, 0.6, 0.7, 0.8, 0.9]


def test_before_the_first_look_the_rule_continues_with_the_figures_so_far() -> None:
    verdict = evaluate(_test(), _pairs(_cycle(SPREAD, 9), _cycle([0.9, 1.0], 9)))
    assert verdict.decision == "continue"
    assert verdict.look == 0
    assert verdict.next_look_at == 10
    assert (verdict.n_control, verdict.n_candidate) == (9, 9)
    assert verdict.p_value is not None and verdict.p_value < 0.01  # not a look: no decision
    assert "no look yet" in verdict.reason
    empty = evaluate(_test(), [])
    assert (empty.decision, empty.p_value, empty.effect, empty.mean_control) == (
        "continue", None, None, None,
    )  # fmt: skip


def test_a_better_candidate_is_activated_at_the_first_look() -> None:
    verdict = evaluate(_test(), _pairs(_cycle(SPREAD, 15), _cycle([0.8, 0.9, 1.0], 15)))
    assert verdict.decision == "activate"
    assert verdict.look == 1
    assert (verdict.n_control, verdict.n_candidate) == (10, 10)
    assert verdict.runs == 20  # the look that decided, not the 30 runs recorded
    assert verdict.recorded == 30
    assert verdict.effect == pytest.approx(0.9 - 0.7, abs=0.02)
    assert verdict.low is not None and verdict.high is not None
    assert 0 < verdict.low < verdict.effect < verdict.high
    assert verdict.p_value is not None and verdict.p_value < verdict.boundary
    assert verdict.boundary == pocock_level(3)
    assert verdict.next_look_at is None
    assert verdict.reason.startswith("the candidate is better at look 1 of 3")


def test_a_worse_candidate_is_rejected() -> None:
    verdict = evaluate(_test(), _pairs(_cycle(SPREAD, 10), _cycle([0.3, 0.4, 0.5], 10)))
    assert verdict.decision == "reject"
    assert verdict.effect is not None and verdict.effect < 0
    assert "worse" in verdict.reason


def test_no_difference_ends_inconclusive_at_the_last_look() -> None:
    test = _test(min_per_arm=10, looks=3)
    outcomes = _pairs(_cycle(SPREAD, 40), _cycle(SPREAD[::-1], 40))
    verdict = evaluate(test, outcomes)
    assert verdict.decision == "inconclusive"
    assert verdict.look == 3
    assert (verdict.n_control, verdict.n_candidate) == (30, 30)
    assert verdict.p_value == pytest.approx(1.0)
    assert "last look" in verdict.reason
    between = evaluate(test, outcomes[:50])  # 25 per arm: past look 2, before look 3
    assert (between.decision, between.look, between.next_look_at) == ("continue", 2, 30)
    assert (between.n_control, between.n_candidate) == (20, 20)


def test_a_look_is_judged_on_the_outcomes_up_to_it_whenever_it_is_asked() -> None:
    test = _test(min_per_arm=10, looks=3)
    first = _pairs(_cycle(SPREAD, 10), _cycle(SPREAD, 10))
    at_look = evaluate(test, first)
    # Runs after the look that would be decisive on their own wait for the next look.
    later = evaluate(test, first + _pairs([0.5] * 9, [1.0] * 9))
    assert at_look.decision == later.decision == "continue"
    assert (later.look, later.p_value, later.n_candidate) == (1, at_look.p_value, 10)
    assert later.recorded == 38
    reached = evaluate(test, first + _pairs([0.5] * 10, [1.0] * 10))
    assert (reached.decision, reached.look) == ("activate", 2)


def test_the_rule_stops_at_its_first_decision() -> None:
    decisive = _pairs(_cycle(SPREAD, 10), [1.0] * 10)
    contrary = _pairs([1.0] * 40, [0.5] * 40)  # would reject at the later looks
    verdict = evaluate(_test(), decisive + contrary)
    assert (verdict.decision, verdict.look) == ("activate", 1)


def test_every_due_look_is_judged_in_turn() -> None:
    # Look 1 (10 per arm) is not significant; by look 2 the candidate is clearly better.
    outcomes = _pairs(_cycle(SPREAD, 10), _cycle(SPREAD, 10)) + _pairs([0.5] * 10, [1.0] * 10)
    verdict = evaluate(_test(), outcomes)
    assert (verdict.decision, verdict.look) == ("activate", 2)


def test_a_look_compares_equal_samples_spread_over_the_same_time() -> None:
    """Four control runs to each candidate run: the look takes every fourth control outcome,
    over the whole period, not the first ones (Q here drifts upwards over time)."""
    outcomes = []
    for i in range(10):
        outcomes += [_run("control", (4 * i + j) / 40) for j in range(4)]
        outcomes.append(_run("candidate", 0.5))
    verdict = evaluate(_test(min_per_arm=10), outcomes)
    assert verdict.look == 1
    assert (verdict.n_control, verdict.n_candidate) == (10, 10)
    assert (verdict.runs_control, verdict.runs_candidate) == (40, 10)
    assert verdict.mean_control == pytest.approx(sum(4 * i + 2 for i in range(10)) / 400)
    assert "10 outcomes per arm, of 40 control and 10 candidate runs" in verdict.reason


def test_each_looks_sample_holds_the_previous_looks() -> None:
    """Look 1 takes every fourth of 40 control outcomes (those marked 1.0, the rest 0.0);
    look 2 keeps them and adds ten of the others, so the control's mean there is 0.5. (A
    sample drawn afresh at look 2 would hold few of the marked ones; the first outcomes of
    each arm would have decided at look 1.)"""
    outcomes = []
    for _ in range(10):
        outcomes += [_run("control", 1.0 if j == 2 else 0.0) for j in range(4)]
        outcomes.append(_run("candidate", 1.0))
    at_first = evaluate(_test(min_per_arm=10), outcomes)
    assert (at_first.look, at_first.decision, at_first.mean_control) == (1, "continue", 1.0)
    for _ in range(10):
        outcomes += [_run("control", 0.0) for _ in range(3)]
        outcomes.append(_run("candidate", 1.0))
    verdict = evaluate(_test(min_per_arm=10), outcomes)
    assert (verdict.look, verdict.decision) == (2, "activate")
    assert (verdict.n_control, verdict.runs_control) == (20, 70)
    assert verdict.mean_control == pytest.approx(0.5)


def test_a_candidate_that_breaks_runs_loses() -> None:
    control = [_run("control", q) for q in _cycle(SPREAD, 10)]
    broken = [_run("candidate", None, success=False) for _ in range(10)]
    verdict = evaluate(_test(), control + broken)
    assert verdict.decision == "reject"
    assert verdict.mean_candidate == 0.0
    assert verdict.success_rate_candidate == 0.0


def test_successful_runs_without_q_are_not_counted() -> None:
    control = [_run("control", q) for q in _cycle(SPREAD, 12)]
    unscored = [_run("candidate", None) for _ in range(12)]
    verdict = evaluate(_test(), control + unscored)
    assert (verdict.decision, verdict.look) == ("continue", 0)
    assert (verdict.n_control, verdict.n_candidate) == (0, 0)
    assert "(control 12, candidate 0 so far)" in verdict.reason
    assert (verdict.runs_control, verdict.runs_candidate) == (12, 12)
    assert verdict.mean_candidate is None
    assert verdict.success_rate_candidate == 1.0


def test_scored_quality() -> None:
    assert scored_quality(_run("control", 0.4, success=False)) == 0.4
    assert scored_quality(_run("control", None, success=False)) == 0.0
    assert scored_quality(_run("control", None, success=True)) is None


def test_each_arm_is_summarised_for_status() -> None:
    outcomes = [
        _run("control", 0.6, tokens=100, latency_s=1.0),
        _run("control", 0.8, tokens=300, latency_s=3.0, success=False),
        _run("candidate", 0.9, tokens=50, latency_s=0.5),
        _run("candidate", 0.7, tokens=150, latency_s=1.5),
    ]
    verdict = evaluate(_test(), outcomes)
    assert verdict.success_rate_control == 0.5
    assert verdict.success_rate_candidate == 1.0
    assert (verdict.mean_tokens_control, verdict.mean_tokens_candidate) == (200, 100)
    assert (verdict.mean_latency_s_control, verdict.mean_latency_s_candidate) == (2.0, 1.0)
    assert verdict.mean_control == pytest.approx(0.7)
    assert verdict.mean_candidate == pytest.approx(0.8)


def test_a_second_outcome_of_a_workflow_is_ignored() -> None:
    first = _run("candidate", 0.9, workflow_id="wf-same")
    again = _run("candidate", 0.1, workflow_id="wf-same")
    control = [_run("control", 0.5), _run("control", 0.6)]
    verdict = evaluate(_test(), [*control, first, again, _run("candidate", 0.7)])
    assert verdict.n_candidate == 2
    assert verdict.mean_candidate == pytest.approx(0.8)
    assert verdict.recorded == 4


def test_an_outcome_of_another_test_is_refused() -> None:
    with pytest.raises(PromptError, match="A/B test 2 was given to evaluate test 1"):
        evaluate(_test(), [_run("control", 0.5, test_id=2)])


def _skewed_runs(rng: random.Random, n: int, share: float) -> list[AbOutcome]:
    """``n`` runs of a prompt that makes no difference, Q as it is spread in practice: most
    answers near the top, a long tail below, and 5% failed runs (Q 0)."""
    runs = []
    for i in range(n):
        failed = rng.random() < 0.05
        runs.append(
            AbOutcome.model_construct(
                test_id=1,
                workflow_id=f"wf-{i}",
                arm="candidate" if rng.random() < share else "control",
                quality=None if failed else min(1.0, max(0.0, rng.gauss(0.85, 0.12))),
                success=not failed,
                tokens=100,
                latency_s=1.0,
            )
        )
    return runs


def test_without_a_difference_each_wrong_decision_stays_near_half_of_alpha() -> None:
    """Simulated tests of a candidate no better than the control, with a fifth of the runs:
    it is activated, or rejected, about 2.5% of the time each over four looks. (Welch's test
    of all the control's outcomes against the candidate's fewer activates it about 8% of the
    time on Q this skewed: the reason the looks compare equal samples.)"""
    rng = random.Random(2024)
    test = _test(min_per_arm=20, looks=4)
    experiments = 800
    decisions = Counter(evaluate(test, _skewed_runs(rng, 560, 0.2)).decision
                        for _ in range(experiments))  # fmt: skip
    assert decisions["continue"] == 0  # 560 runs reach the last look
    # 0.025 + 3.5 standard errors (0.0055) of 800 experiments, each way.
    assert decisions["activate"] / experiments <= 0.045
    assert decisions["reject"] / experiments <= 0.045
    assert (decisions["activate"] + decisions["reject"]) / experiments >= 0.02
