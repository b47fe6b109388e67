import math

import pytest

from automatos.phases.evaluate.heuristics import Dimensions
from automatos.phases.evaluate.quality import auc, combine, weighted


def test_q_is_the_weighted_sum_over_measured_dimensions() -> None:
    d = Dimensions(1.0, 0.5, 0.0, 1.0, 0.5)
    weights = {
        "completeness": 0.3,
        "accuracy": 0.25,
        "efficiency": 0.1,
        "reliability": 0.1,
        "coherence": 0.25,
    }
    assert weighted(d, weights) == pytest.approx(0.3 + 0.125 + 0.0 + 0.1 + 0.125)
    alone = Dimensions(1.0, 0.5, None, None, 0.5)
    assert weighted(alone, weights) == pytest.approx((0.3 + 0.125 + 0.125) / 0.8)


def test_the_interval_is_196_sigma_over_root_n() -> None:
    result = combine([0.2, 0.4, 0.6, 0.8])
    sd = math.sqrt(sum((x - 0.5) ** 2 for x in [0.2, 0.4, 0.6, 0.8]) / 3)
    assert result.q == pytest.approx(0.5)
    assert result.low == pytest.approx(0.5 - 1.96 * sd / 2)
    assert result.high == pytest.approx(0.5 + 1.96 * sd / 2)
    one = combine([0.7])
    assert (one.q, one.low, one.high, one.n) == (0.7, 0.7, 0.7, 1)
    assert combine([]).n == 0


def test_auc() -> None:
    assert auc([1, 1, 0, 0], [0.9, 0.8, 0.2, 0.1]) == 1.0
    assert auc([1, 1, 0, 0], [0.1, 0.2, 0.8, 0.9]) == 0.0
    assert auc([1, 0], [0.5, 0.5]) == 0.5
    assert auc([1, 1, 0], [0.9, 0.3, 0.5]) == pytest.approx(0.5)
    assert math.isnan(auc([1, 1], [0.1, 0.2]))
