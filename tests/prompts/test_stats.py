"""Welch's test and Pocock's levels."""

from __future__ import annotations

import random

import numpy as np
import pytest
from scipy import stats

from automatos.errors import PromptError
from automatos.prompts.stats import POCOCK_LEVELS, pocock_level, welch


@pytest.mark.parametrize(
    ("n_a", "n_b", "mu_b", "sigma_b", "seed"),
    [(120, 30, 0.75, 0.2, 1), (30, 30, 0.7, 0.15, 2), (5, 400, 0.4, 0.05, 3), (2, 2, 0.9, 0.3, 4)],
)
def test_welch_is_scipys_test_and_interval(
    n_a: int, n_b: int, mu_b: float, sigma_b: float, seed: int
) -> None:
    rng = random.Random(seed)
    a = [rng.gauss(0.7, 0.15) for _ in range(n_a)]
    b = [rng.gauss(mu_b, sigma_b) for _ in range(n_b)]
    ours = welch(a, b)
    theirs = stats.ttest_ind(b, a, equal_var=False)
    interval = theirs.confidence_interval(0.95)
    assert ours is not None
    assert ours.effect == pytest.approx(np.mean(b) - np.mean(a), abs=1e-12)
    assert ours.p_value == pytest.approx(theirs.pvalue, rel=1e-9)
    assert ours.df == pytest.approx(theirs.df, rel=1e-9)
    assert (ours.low, ours.high) == pytest.approx((interval.low, interval.high), rel=1e-9)
    assert ours.low < ours.effect < ours.high


def test_welch_needs_two_values_in_each_sample() -> None:
    assert welch([0.5], [0.4, 0.6]) is None
    assert welch([0.5, 0.6], []) is None
    assert welch([0.5, 0.6], [0.4, 0.7]) is not None


def test_samples_without_spread_are_answered_without_a_warning() -> None:
    same = welch([0.7] * 30, [0.7] * 30)
    assert same is not None
    assert (same.effect, same.p_value, same.low, same.high) == (0.0, 1.0, 0.0, 0.0)
    apart = welch([0.5] * 30, [0.8] * 30)
    assert apart is not None
    assert apart.p_value == 0.0
    assert apart.low == apart.high == pytest.approx(0.3)


def test_a_larger_effect_has_a_smaller_p_value() -> None:
    rng = random.Random(7)
    a = [rng.gauss(0.7, 0.15) for _ in range(60)]
    noise = [rng.gauss(0.0, 0.15) for _ in range(60)]
    p_values = []
    for effect in (0.0, 0.05, 0.1, 0.2):
        result = welch(a, [0.7 + effect + e for e in noise])
        assert result is not None
        p_values.append(result.p_value)
    assert p_values == sorted(p_values, reverse=True)
    assert p_values[-1] < 1e-6


def _false_decision_rate(looks: int, level: float) -> float:
    """Chance that a z-statistic crosses ±z(level) at any of ``looks`` equally spaced looks
    when there is no effect: the correlation of looks i and j is sqrt(i/j)."""
    k = np.arange(1, looks + 1)
    cov = np.sqrt(np.minimum.outer(k, k) / np.maximum.outer(k, k))
    z = stats.norm.isf(level / 2)
    mvn = stats.multivariate_normal(np.zeros(looks), cov, seed=12)
    return float(1.0 - mvn.cdf(np.full(looks, z), lower_limit=np.full(looks, -z)))


@pytest.mark.parametrize("looks", sorted(POCOCK_LEVELS))
def test_pococks_levels_keep_the_whole_test_at_alpha_0_05(looks: int) -> None:
    assert _false_decision_rate(looks, pocock_level(looks)) == pytest.approx(0.05, abs=5e-4)
    if looks > 1:  # where looking at 0.05 each time would not
        assert _false_decision_rate(looks, 0.05) > 0.08


@pytest.mark.parametrize("looks", [0, 6])
def test_looks_outside_the_table_are_refused(looks: int) -> None:
    with pytest.raises(PromptError, match=f"given {looks}"):
        pocock_level(looks)
