"""The context optimiser of stage 3: which candidate items a subtask sees within a token budget.

A pure function of its inputs (no embedder, no store): :func:`optimize` takes the subtask's query
vector, the candidate items (each with its text, its token count from the model's tokenizer and
its embedding) and a token budget, and runs four steps in order. Every candidate that is not
chosen is dropped exactly once, by the first step that rejects it, and its :class:`Dropped`
record says why with the number that decided.

1. **Entropy.** ``H(X) = −Σ p(x)·log2 p(x)`` over the item's word tokens (maximal runs of Unicode
   word characters, case-folded); kept when ``H > min_entropy``. H is at most log2 of the number
   of distinct words, so an item needs at least 17 distinct words to pass 4.0 bits: with
   ``min_evenness`` set, a shorter item passes too when it is not repetitive, that is when it
   has at least :data:`MIN_WORDS` words and ``H ≥ min_evenness × log2(words)`` (a short
   answer is not boilerplate; "Home | Home | Home" is).
2. **Relevance.** Cosine of item and query (vectors normalised here; a zero vector has cosine 0
   with everything); kept when ``cos > min_relevance`` and, with ``relevance_margin`` set,
   ``cos > best − relevance_margin``, best being the highest cosine among the items the
   entropy step kept: how near is near enough depends on the embedder and on the query, and
   an item far behind the best match adds tokens more than answers.
3. **MMR.** The survivors are ordered by picking next
   ``argmax_d λ·cos(d,q) − (1−λ)·max_{s∈S} cos(d,s)`` (the first pick is the most relevant; ties
   go to the earlier candidate). When ``duplicate_cosine`` is set, an item whose cosine to an
   item already ordered is at least that is dropped as a near-duplicate of it: it would spend
   tokens on what the earlier item already says. Otherwise MMR only orders.
4. **Knapsack.** 0/1 knapsack to the budget maximising ``Σ value``, with
   ``value = cos(c,q) × density`` and ``density = (H / tokens) / max over the step's items of
   (H / tokens)``: entropy per token scaled so that the densest item has 1 and every item is in
   (0, 1]. See :func:`pack` for the exact and the approximate solver.

The chosen items come back in MMR order; their tokens never exceed the budget.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
import numpy.typing as npt

__all__ = [
    "MAX_EXACT_CELLS",
    "MIN_WORDS",
    "Candidate",
    "Dropped",
    "OptimizerSettings",
    "Packing",
    "Picked",
    "Selection",
    "Step",
    "entropy_reason",
    "optimize",
    "pack",
    "relevance_cut",
    "relevance_reason",
    "uninformative",
    "word_entropy",
]

MAX_EXACT_CELLS = 1_000_000
"""The exact knapsack fills an items × (budget + 1) table; above this many cells it would cost
more than the rest of the selection, so :func:`pack` switches to the greedy approximation."""

_IDEOGRAPHS = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
# Chinese and Japanese write words without spaces: each ideograph or kana counts as a word,
# else a whole sentence would be one word of zero entropy.
_WORD = re.compile(f"[{_IDEOGRAPHS}]|[^\\W{_IDEOGRAPHS}]+")


def word_entropy(text: str) -> float:
    """Shannon entropy, in bits, of the distribution of the word tokens of ``text``.

    Words are maximal runs of Unicode word characters, case-folded; in Chinese and Japanese
    script, each ideograph or kana. Computed as
    ``log2 n − Σ c·log2 c / n`` over the word counts c (n words in all), which equals
    ``−Σ p·log2 p`` and is exact for n equally frequent words (``log2 n``). Empty text has 0 bits.
    """
    counts = Counter(_WORD.findall(text.casefold()))
    n = sum(counts.values())
    if n == 0:
        return 0.0
    spread = sum(c * math.log2(c) for c in counts.values() if c > 1)
    return max(0.0, math.log2(n) - spread / n)


@dataclass(frozen=True, slots=True)
class OptimizerSettings:
    """The optimiser's thresholds; the token budget is an argument of :func:`optimize`."""

    min_entropy: float = 4.0
    """Items with word entropy at or below this many bits are dropped."""
    min_relevance: float = 0.7
    """Items whose cosine with the query is at or below this are dropped; in [-1, 1)."""
    mmr_lambda: float = 0.7
    """MMR's weight of relevance against redundancy; in [0, 1] (1 orders by relevance only)."""
    duplicate_cosine: float | None = 0.95
    """An item this similar (cosine) to one ordered before it is dropped as a near-duplicate;
    in (0, 1], or None to let MMR only order."""
    min_evenness: float | None = None
    """With it, an item below ``min_entropy`` is kept all the same when it has at least
    :data:`MIN_WORDS` words and its entropy is at least this share of the most its words
    could have (log2 of their number); in (0, 1], or None for the absolute rule alone."""
    relevance_margin: float | None = None
    """Items more than this below the best item's cosine are dropped too; in (0, 2], or None
    for the absolute cut alone."""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.min_entropy) and self.min_entropy >= 0):
            raise ValueError(f"min_entropy must be a finite number ≥ 0, got {self.min_entropy}")
        if not -1.0 <= self.min_relevance < 1.0:
            raise ValueError(f"min_relevance must be in [-1, 1), got {self.min_relevance}")
        if self.min_evenness is not None and not 0.0 < self.min_evenness <= 1.0:
            raise ValueError(f"min_evenness must be in (0, 1] or None, got {self.min_evenness}")
        if self.relevance_margin is not None and not 0.0 < self.relevance_margin <= 2.0:
            raise ValueError(
                f"relevance_margin must be in (0, 2] or None, got {self.relevance_margin}"
            )
        if not 0.0 <= self.mmr_lambda <= 1.0:
            raise ValueError(f"mmr_lambda must be in [0, 1], got {self.mmr_lambda}")
        if self.duplicate_cosine is not None and not 0.0 < self.duplicate_cosine <= 1.0:
            raise ValueError(
                f"duplicate_cosine must be in (0, 1] or None, got {self.duplicate_cosine}"
            )


@dataclass(frozen=True, slots=True, eq=False)
class Candidate:
    """One item that could go into a subtask's context.

    Attributes:
        id: Unique among the candidates of one call.
        text: The item's text; its word entropy is computed from it unless ``entropy`` is given.
        tokens: Its length counted with the model's tokenizer, ≥ 0.
        embedding: A finite vector of the query's dimension (normalised by the optimiser).
        entropy: Its :func:`word_entropy`, when the caller keeps it beside the vector (it is a
            property of the text, so a store can compute it once at ingest).
    """

    id: str
    text: str
    tokens: int
    embedding: npt.NDArray[np.float32]
    entropy: float | None = None


class Step(StrEnum):
    """The step of the optimiser that dropped an item."""

    ENTROPY = "entropy"
    RELEVANCE = "relevance"
    MMR = "mmr"
    KNAPSACK = "knapsack"


@dataclass(frozen=True, slots=True)
class Dropped:
    """Why one candidate was not chosen: the first step that rejected it, with its numbers."""

    id: str
    step: Step
    reason: str


@dataclass(frozen=True, slots=True, eq=False)
class Picked:
    """A chosen candidate with the numbers that got it chosen."""

    candidate: Candidate
    entropy: float
    relevance: float
    value: float


@dataclass(frozen=True, slots=True)
class Packing:
    """The knapsack's answer: item indices (ascending), their value and how far from the best.

    ``upper_bound`` is at least the best possible value: equal to ``value`` when ``exact``, and
    the fractional-knapsack (Dantzig) bound otherwise, with ``value ≥ upper_bound / 2``.
    """

    chosen: tuple[int, ...]
    value: float
    upper_bound: float
    exact: bool


@dataclass(frozen=True, slots=True, eq=False)
class Selection:
    """The optimiser's answer.

    Attributes:
        chosen: The chosen items in MMR order.
        tokens: Their total tokens, never more than ``budget``.
        budget: The token budget it was given.
        value: Σ value of the chosen items.
        upper_bound: An upper bound on the best Σ value (see :class:`Packing`).
        exact: Whether the knapsack was solved exactly.
        explain: Builds the drop records (see :attr:`dropped`).
    """

    chosen: tuple[Picked, ...]
    tokens: int
    budget: int
    value: float
    upper_bound: float
    exact: bool
    explain: Callable[[], tuple[Dropped, ...]] = field(repr=False)
    _dropped: list[tuple[Dropped, ...]] = field(default_factory=list, repr=False, init=False)

    @property
    def dropped(self) -> tuple[Dropped, ...]:
        """One record for every candidate not chosen, in input order.

        Built on first read: formatting thousands of reasons would cost more than the
        selection itself, and a caller that only needs the chosen items should not pay for it.
        """
        if not self._dropped:
            self._dropped.append(self.explain())
        return self._dropped[0]


MIN_WORDS = 5
"""The fewest words an item below ``min_entropy`` needs to be kept for its evenness."""


def uninformative(
    entropy: npt.NDArray[np.float64], texts: Sequence[str], settings: OptimizerSettings
) -> npt.NDArray[np.bool_]:
    """Which items the entropy step drops (``texts`` are read only for those below
    ``min_entropy``, to judge their evenness)."""
    low = entropy <= settings.min_entropy
    evenness = settings.min_evenness
    if evenness is None:
        return low
    for i in np.flatnonzero(low).tolist():
        words = len(_WORD.findall(texts[i].casefold()))
        if words >= MIN_WORDS and entropy[i] >= evenness * math.log2(words):
            low[i] = False
    return low


def entropy_reason(entropy: float, settings: OptimizerSettings) -> str:
    """Why an item of this entropy was dropped by the entropy step."""
    reason = f"entropy {entropy:.2f} bits ≤ {settings.min_entropy}"
    if settings.min_evenness is not None:
        reason += f", and too short or too repetitive (evenness below {settings.min_evenness:g})"
    return reason


def relevance_cut(cosines: npt.NDArray[np.floating], settings: OptimizerSettings) -> float:
    """The cosine an item must exceed to pass the relevance step, given the cosines of the
    items that reached it."""
    cut = settings.min_relevance
    if settings.relevance_margin is not None and cosines.size:
        cut = max(cut, float(cosines.max()) - settings.relevance_margin)
    return cut


def relevance_reason(cosine: float, cut: float, settings: OptimizerSettings) -> str:
    """Why an item of this cosine was dropped by the relevance step whose cut was ``cut``."""
    if cut > settings.min_relevance:
        best = cut + (settings.relevance_margin or 0.0)
        return (
            f"cosine {cosine:.3f}, more than {settings.relevance_margin:g} below the best "
            f"match's {best:.3f}"
        )
    return f"cosine {cosine:.3f} ≤ {settings.min_relevance}"


def pack(
    values: npt.ArrayLike,
    tokens: npt.ArrayLike,
    budget: int,
    *,
    max_exact_cells: int = MAX_EXACT_CELLS,
) -> Packing:
    """Choose items maximising Σ values with Σ tokens ≤ budget (0/1 knapsack).

    Items of value ≤ 0 or of more tokens than the budget are never chosen; free items (0 tokens,
    positive value) always are. If the rest fit together, they are all chosen. Otherwise an exact
    dynamic programme over token counts runs when items × (budget + 1) ≤ ``max_exact_cells``.
    Above that the answer is the better of (a) greedy by value per token, taking every item that
    still fits, and (b) the single most valuable item. Guarantee: let U be the fractional
    optimum (the greedy prefix up to the first item that does not fit, plus that item's
    fitting fraction); then U ≥ OPT and U ≤ prefix + that item's value ≤ (a) + (b), so the
    answer is ≥ U/2 ≥ OPT/2. U is returned as ``upper_bound``, a per-instance certificate.
    """
    v = np.asarray(values, dtype=np.float64)
    w = np.asarray(tokens, dtype=np.int64)
    if v.shape != w.shape or v.ndim != 1:
        raise ValueError(f"values and tokens must be 1-D of one length, got {v.shape}, {w.shape}")
    if budget < 0:
        raise ValueError(f"budget must be ≥ 0, got {budget}")
    eligible = (v > 0) & (w <= budget)
    free = np.flatnonzero(eligible & (w == 0))
    paid = np.flatnonzero(eligible & (w > 0))
    base = float(v[free].sum())
    if paid.size == 0 or int(w[paid].sum()) <= budget:
        every = np.sort(np.concatenate([free, paid]))
        total = base + float(v[paid].sum())
        return Packing(tuple(int(i) for i in every), total, total, exact=True)
    if paid.size * (budget + 1) <= max_exact_cells:
        picked = _exact(v[paid], w[paid], budget)
        value = base + float(v[paid][picked].sum())
        bound, exact = value, True
    else:
        picked, bound = _greedy(v[paid], w[paid], budget)
        value = base + float(v[paid][picked].sum())
        bound, exact = base + bound, False
    chosen = np.sort(np.concatenate([free, paid[picked]]))
    return Packing(tuple(int(i) for i in chosen), value, bound, exact)


def _exact(v: npt.NDArray[np.float64], w: npt.NDArray[np.int64], cap: int) -> list[int]:
    """Exact 0/1 knapsack: best[c] is the best value within c tokens, one row per item."""
    best = np.zeros(cap + 1)
    took = np.zeros((v.size, cap + 1), dtype=bool)
    for k in range(v.size):
        wk = int(w[k])
        with_k = best[: cap + 1 - wk] + v[k]
        take = with_k > best[wk:]
        took[k, wk:] = take
        best[wk:] = np.where(take, with_k, best[wk:])
    chosen, c = [], cap
    for k in range(v.size - 1, -1, -1):
        if took[k, c]:
            chosen.append(k)
            c -= int(w[k])
    return chosen[::-1]


def _greedy(
    v: npt.NDArray[np.float64], w: npt.NDArray[np.int64], cap: int
) -> tuple[list[int], float]:
    """Greedy by value per token vs the best single item; returns (chosen, Dantzig bound)."""
    order = np.argsort(-(v / w), kind="stable")
    filled = np.cumsum(w[order])
    fits = int(np.searchsorted(filled, cap, side="right"))  # items in the full prefix
    room = cap - (int(filled[fits - 1]) if fits else 0)
    critical = int(order[fits])  # exists: all the items together do not fit
    bound = float(v[order[:fits]].sum()) + room / int(w[critical]) * float(v[critical])
    chosen, left = [int(i) for i in order[:fits]], room
    for i in order[fits:].tolist():
        if w[i] <= left:
            chosen.append(i)
            left -= int(w[i])
    best = int(np.argmax(v))
    if v[best] > v[chosen].sum():
        chosen = [best]
    return sorted(chosen), bound


def optimize(
    query: npt.NDArray[np.float32],
    candidates: Sequence[Candidate],
    budget: int,
    settings: OptimizerSettings | None = None,
) -> Selection:
    """Choose the candidates a subtask sees: entropy filter, relevance cut, MMR, knapsack.

    Args:
        query: The subtask's embedding.
        candidates: The items to choose from, ids unique.
        budget: Tokens the chosen items may take in all, ≥ 0.
        settings: Thresholds; the defaults of :class:`OptimizerSettings` when None.

    Raises:
        ValueError: naming the item (or the query) whose vector is not finite or has another
            dimension, a repeated id, a negative token count, or a negative budget.
    """
    settings = settings or OptimizerSettings()
    if budget < 0:
        raise ValueError(f"budget must be ≥ 0, got {budget}")
    q = _query_direction(query)
    if not candidates:
        return Selection((), 0, budget, 0.0, 0.0, exact=True, explain=tuple)
    entropy, tokens, matrix = _checked(candidates, q.shape[0])
    cosine, norms = _cosines(q, matrix, candidates)

    low = uninformative(entropy, [c.text for c in candidates], settings)
    cut = relevance_cut(cosine[~low], settings)
    off = ~low & (cosine <= cut)
    kept = np.flatnonzero(~low & ~off)
    # Only the survivors need unit rows, for their cosines with each other.
    unit = matrix[kept] / norms[kept, None]
    order, duplicates = _mmr(unit, cosine[kept], settings)
    ranked = kept[order]

    density = entropy[ranked] / np.maximum(tokens[ranked], 1)
    if ranked.size:
        density = density / density.max()
    value = cosine[ranked] * density
    packing = pack(value, tokens[ranked], budget)
    taken = set(packing.chosen)
    used = int(tokens[ranked[list(packing.chosen)]].sum()) if taken else 0

    def explain() -> tuple[Dropped, ...]:
        drops: dict[int, Dropped] = {}
        for i in np.flatnonzero(low).tolist():
            reason = entropy_reason(float(entropy[i]), settings)
            drops[i] = Dropped(candidates[i].id, Step.ENTROPY, reason)
        for i in np.flatnonzero(off).tolist():
            reason = relevance_reason(float(cosine[i]), cut, settings)
            drops[i] = Dropped(candidates[i].id, Step.RELEVANCE, reason)
        for k, (other, cos) in duplicates.items():
            i = int(kept[k])
            reason = f"near-duplicate of {candidates[int(kept[other])].id}: cosine {cos:.3f}"
            reason += f" ≥ {settings.duplicate_cosine}"
            drops[i] = Dropped(candidates[i].id, Step.MMR, reason)
        for r, i in enumerate(ranked.tolist()):
            if r not in taken:
                reason = _unpacked(float(value[r]), int(tokens[i]), budget, used)
                drops[i] = Dropped(candidates[i].id, Step.KNAPSACK, reason)
        return tuple(drops[i] for i in sorted(drops))

    chosen = tuple(
        Picked(candidates[i], float(entropy[i]), float(cosine[i]), float(value[r]))
        for r, i in enumerate(ranked.tolist())
        if r in taken
    )
    return Selection(
        chosen=chosen,
        tokens=used,
        budget=budget,
        value=packing.value,
        upper_bound=packing.upper_bound,
        exact=packing.exact,
        explain=explain,
    )


def _unpacked(value: float, tokens: int, budget: int, used: int) -> str:
    if tokens > budget:
        return f"{tokens} tokens > budget {budget}"
    if value <= 0:
        return f"value {value:.3f} ≤ 0"
    return f"not in the best packing: value {value:.3f} for {tokens} tokens ({used}/{budget} used)"


def _query_direction(query: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    q = np.asarray(query, dtype=np.float64)
    if q.ndim != 1 or q.size == 0:
        raise ValueError(f"query must be a non-empty 1-D vector, got shape {q.shape}")
    if not np.isfinite(q).all():
        raise ValueError("query vector has NaN or infinite components")
    norm = float(np.linalg.norm(q))
    # A zero query points nowhere: every cosine is 0 and the relevance cut decides.
    return (q / norm if norm > 0 else q).astype(np.float32)


def _checked(
    candidates: Sequence[Candidate], dim: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    """Refuses repeated ids, negative tokens and wrong shapes; returns entropies, tokens and
    the embeddings stacked into one matrix."""
    seen: set[str] = set()
    entropy: list[float] = []
    rows: list[npt.NDArray[np.float32]] = []
    for c in candidates:
        if c.id in seen:
            raise ValueError(f"candidate id {c.id!r} appears more than once")
        seen.add(c.id)
        if c.tokens < 0:
            raise ValueError(f"candidate {c.id!r} has a negative token count {c.tokens}")
        row = np.asarray(c.embedding, dtype=np.float32)
        if row.shape != (dim,):
            raise ValueError(
                f"candidate {c.id!r} has an embedding of shape {row.shape}, the query has ({dim},)"
            )
        rows.append(row)
        entropy.append(word_entropy(c.text) if c.entropy is None else c.entropy)
    tokens = np.fromiter((c.tokens for c in candidates), dtype=np.int64, count=len(candidates))
    return np.asarray(entropy, dtype=np.float64), tokens, np.stack(rows)


def _cosines(
    q: npt.NDArray[np.float32], matrix: npt.NDArray[np.float32], candidates: Sequence[Candidate]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float32]]:
    """Cosine of every row with the unit query (one matrix product), and the rows' norms."""
    norms = np.sqrt(np.einsum("ij,ij->i", matrix, matrix))
    for i in np.flatnonzero(~np.isfinite(norms)).tolist():
        row = matrix[i]
        if not np.isfinite(row).all():
            raise ValueError(f"candidate {candidates[i].id!r} has NaN or infinite components")
        # Finite but so large that the squares overflow float32: scale the row down first.
        matrix[i] = row / np.abs(row).max()
        norms[i] = np.linalg.norm(matrix[i])
    # A zero vector keeps norm 1 here, so it stays zero: cosine 0 with everything.
    safe = np.where(norms > 0, norms, 1.0).astype(np.float32)
    cosine = np.clip(((matrix @ q) / safe).astype(np.float64), -1.0, 1.0)
    return cosine, safe


def _mmr(
    unit: npt.NDArray[np.float32], relevance: npt.NDArray[np.float64], settings: OptimizerSettings
) -> tuple[list[int], dict[int, tuple[int, float]]]:
    """MMR order over the rows; near-duplicates as {row: (row it repeats, cosine)}."""
    n = relevance.size
    lam, limit = settings.mmr_lambda, settings.duplicate_cosine
    order: list[int] = []
    duplicates: dict[int, tuple[int, float]] = {}
    open_ = np.ones(n, dtype=bool)
    redundancy = np.zeros(n)  # max cosine to the ordered items; its value is unused while S = ∅
    while open_.any():
        score = lam * relevance - (1 - lam) * redundancy if order else relevance.copy()
        score[~open_] = -np.inf
        pick = int(np.argmax(score))
        order.append(pick)
        open_[pick] = False
        similarity = (unit @ unit[pick]).astype(np.float64)
        redundancy = similarity if len(order) == 1 else np.maximum(redundancy, similarity)
        if limit is not None:
            for k in np.flatnonzero(open_ & (similarity >= limit)).tolist():
                duplicates[k] = (pick, float(similarity[k]))
                open_[k] = False
    return order, duplicates
