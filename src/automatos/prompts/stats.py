"""The statistics of A/B tests: Welch's two-sided t-test with its interval, and the nominal
levels of Pocock's group-sequential design.

Pure functions of numbers; :mod:`automatos.prompts.ab` applies them to recorded outcomes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

# The t distribution from scipy.special rather than scipy.stats: a third of the import time.
from scipy.special import stdtr, stdtrit  # type: ignore[import-untyped]

from automatos.errors import PromptError

__all__ = ["POCOCK_LEVELS", "Welch", "pocock_level", "welch"]

POCOCK_LEVELS: Mapping[int, float] = MappingProxyType(
    {1: 0.05, 2: 0.0294, 3: 0.0221, 4: 0.0182, 5: 0.0158}
)
"""Pocock's nominal two-sided level at every look, by number of looks, for an overall α of
0.05 (critical |z| of 1.960, 2.178, 2.289, 2.361 and 2.413: Pocock 1977; Jennison and
Turnbull, *Group Sequential Methods*, table 2.1). Testing at this level at each of K equally
spaced looks keeps the chance of any false decision at 0.05; testing at 0.05 at each look
would not (0.126 over four looks)."""


def pocock_level(looks: int) -> float:
    """The nominal two-sided level at each look of a test with ``looks`` looks (α = 0.05).

    Raises:
        PromptError: ``looks`` is outside 1-5, the range the table covers.
    """
    try:
        return POCOCK_LEVELS[looks]
    except KeyError:
        raise PromptError(
            f"an A/B test looks 1 to 5 times (Pocock's levels are tabled for those); "
            f"it was given {looks}"
        ) from None


@dataclass(frozen=True, slots=True)
class Welch:
    """Welch's comparison of two samples: ``b`` against ``a``."""

    n_a: int
    n_b: int
    mean_a: float
    mean_b: float
    effect: float
    """``mean_b - mean_a``."""
    se: float
    """Standard error of the effect (unequal variances)."""
    df: float
    """Welch-Satterthwaite degrees of freedom."""
    p_value: float
    """Two-sided."""
    low: float
    high: float
    """The effect's confidence interval (95% unless asked otherwise)."""


def _mean_var(xs: Sequence[float]) -> tuple[float, float]:
    mean = math.fsum(xs) / len(xs)
    return mean, math.fsum((x - mean) ** 2 for x in xs) / (len(xs) - 1)


def welch(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> Welch | None:
    """Welch's two-sided t-test of ``mean(b) - mean(a)`` and its confidence interval.

    The same test as ``scipy.stats.ttest_ind(a, b, equal_var=False)``, computed here so that
    samples without spread are answered without a warning: when neither sample varies the
    effect is known exactly, and its p-value is 1 if it is zero and 0 otherwise.

    Returns:
        ``None`` when a sample has fewer than two values (no variance to estimate).
    """
    if len(a) < 2 or len(b) < 2:
        return None
    mean_a, var_a = _mean_var(a)
    mean_b, var_b = _mean_var(b)
    effect = mean_b - mean_a
    va, vb = var_a / len(a), var_b / len(b)
    se = math.sqrt(va + vb)
    if se == 0.0:
        return Welch(
            len(a), len(b), mean_a, mean_b, effect, 0.0, float(len(a) + len(b) - 2),
            1.0 if effect == 0.0 else 0.0, effect, effect,
        )  # fmt: skip
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    p_value = min(1.0, 2.0 * float(stdtr(df, -abs(effect) / se)))
    half = float(stdtrit(df, 0.5 + confidence / 2.0)) * se
    return Welch(
        len(a), len(b), mean_a, mean_b, effect, se, df, p_value, effect - half, effect + half
    )
