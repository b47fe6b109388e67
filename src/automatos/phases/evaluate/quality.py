"""The weighted quality score Q with its 95% interval, and AUC for labelled sets."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from automatos.phases.evaluate.heuristics import Dimensions

__all__ = ["DEFAULT_WEIGHTS", "QualityScore", "auc", "combine", "weighted"]

DEFAULT_WEIGHTS: dict[str, float] = {
    "completeness": 0.3,
    "accuracy": 0.25,
    "efficiency": 0.1,
    "reliability": 0.1,
    "coherence": 0.25,
}


def weighted(d: Dimensions, weights: Mapping[str, float] = DEFAULT_WEIGHTS) -> float:
    """``Q = Σ w_d·s_d`` over the measured dimensions, weights normalised to sum to 1."""
    measured = {n: w for n, w in weights.items() if getattr(d, n) is not None}
    total = sum(measured.values()) or 1.0
    return sum(float(getattr(d, n)) * w for n, w in measured.items()) / total


@dataclass(frozen=True)
class QualityScore:
    """Q with its 95% interval ``Q ± 1.96·σ/√n`` over ``n`` scores (subtasks or judges)."""

    q: float
    low: float
    high: float
    n: int


def combine(scores: Sequence[float]) -> QualityScore:
    """The mean of ``scores`` with its 95% interval (zero width for one score)."""
    n = len(scores)
    if n == 0:
        return QualityScore(0.0, 0.0, 0.0, 0)
    mean = sum(scores) / n
    sd = math.sqrt(sum((s - mean) ** 2 for s in scores) / (n - 1)) if n > 1 else 0.0
    half = 1.96 * sd / math.sqrt(n)
    return QualityScore(mean, max(0.0, mean - half), min(1.0, mean + half), n)


def auc(labels: Sequence[int], scores: Sequence[float]) -> float:
    """Area under the ROC curve: the chance a good item outscores a bad one (ties half)."""
    pairs = sorted(zip(scores, labels, strict=True))
    ranks = [0.0] * len(pairs)
    i = 0
    while i < len(pairs):
        j = i
        while j + 1 < len(pairs) and pairs[j + 1][0] == pairs[i][0]:
            j += 1
        for k in range(i, j + 1):
            ranks[k] = (i + j) / 2 + 1
        i = j + 1
    positives = sum(1 for _, label in pairs if label == 1)
    negatives = len(pairs) - positives
    if not positives or not negatives:
        return float("nan")
    rank_sum = sum(r for r, (_, label) in zip(ranks, pairs, strict=True) if label == 1)
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)
