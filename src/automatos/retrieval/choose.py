"""One subtask's context from the pool: the optimiser's four steps, or plain top-k.

Every eligible item of the pool has one fate. The two cheap filters run here on the whole
matrix at once (entropy, precomputed; relevance, one matrix product); only the items past both,
nearest first and at most ``context.max_candidates``, become the optimiser's candidates, whose
MMR and knapsack decide the rest. Items dropped by the first two steps are counted; those
dropped later are listed with the optimiser's reason.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from automatos.domain.context import ContextDrop, ContextItem, SubtaskContext, item_header
from automatos.retrieval.base import Vectors
from automatos.retrieval.optimizer import (
    Candidate,
    OptimizerSettings,
    entropy_reason,
    optimize,
    relevance_cut,
    relevance_reason,
    uninformative,
)
from automatos.retrieval.pool import Pool
from automatos.settings import ContextSettings

__all__ = ["choose", "optimizer_settings"]


def optimizer_settings(settings: ContextSettings) -> OptimizerSettings:
    """The optimiser's thresholds from the ``context.*`` settings."""
    return OptimizerSettings(
        min_entropy=settings.min_entropy,
        min_evenness=settings.min_evenness,
        min_relevance=settings.min_relevance,
        relevance_margin=settings.relevance_margin,
        mmr_lambda=settings.mmr_lambda,
        duplicate_cosine=settings.duplicate_cosine,
    )


def choose(
    pool: Pool,
    query: Vectors,
    *,
    subtask_id: str,
    agent: str,
    budget: int,
    settings: ContextSettings,
    tokenizer: str,
    count_tokens: Callable[[str], int],
    min_memory_quality: float | None = None,
) -> SubtaskContext:
    """The context of one subtask whose embedding is ``query`` (a unit vector).

    ``agent`` is the subtask's agent: another agent's memories are not its candidates, nor
    are memories recorded with a quality below ``min_memory_quality`` (an answer that scored
    badly is no context for the next).
    Token counts made by another tokenizer than ``tokenizer`` are recounted with
    ``count_tokens`` for the items that reach the knapsack.
    """
    eligible = np.fromiter(
        (
            kind != "agent" or owner == agent
            for kind, owner in zip(pool.kinds, pool.agents, strict=True)
        ),
        dtype=bool,
        count=len(pool),
    )
    if min_memory_quality is not None:
        eligible &= ~(pool.qualities < min_memory_quality)  # NaN (no score) stays eligible
    cosine = pool.matrix @ query.astype(np.float32, copy=False)
    _one_of_each(pool, cosine, eligible)
    if not eligible.any():
        return SubtaskContext(
            subtask_id=subtask_id, retrieved=True, budget=budget, reason="nothing to choose from"
        )
    if not settings.optimize:
        return _top_k(pool, cosine, eligible, subtask_id, budget, settings, tokenizer, count_tokens)
    thresholds = optimizer_settings(settings)
    low = eligible & uninformative(pool.entropy.copy(), pool.texts, thresholds)
    cut = relevance_cut(cosine[eligible & ~low], thresholds)
    off = eligible & ~low & (cosine <= cut)
    past = np.flatnonzero(eligible & ~low & ~off)
    order = past[np.argsort(-cosine[past], kind="stable")]
    taken, beyond = order[: settings.max_candidates], order[settings.max_candidates :]
    candidates = [
        Candidate(
            id=pool.ids[row],
            text=pool.texts[row],
            tokens=_tokens(pool, row, tokenizer, count_tokens) + _header(pool, row, count_tokens),
            embedding=pool.matrix[row],
            entropy=float(pool.entropy[row]),
        )
        for row in taken
    ]
    selection = optimize(query, candidates, budget, thresholds)
    row_of = {pool.ids[row]: row for row in taken}
    items = tuple(
        ContextItem(
            id=p.candidate.id,
            kind=pool.kinds[row_of[p.candidate.id]],
            title=pool.titles[row_of[p.candidate.id]],
            source=pool.sources[row_of[p.candidate.id]],
            text=p.candidate.text,
            tokens=p.candidate.tokens,
            relevance=round(p.relevance, 4),
            value=round(p.value, 4),
        )
        for p in selection.chosen
    )
    # Items the entropy step dropped that the relevance step would have kept are listed: they
    # are the ones a user asks about ("why was the passage that answers it not used?").
    dropped = [
        ContextDrop(
            id=pool.ids[row],
            title=pool.titles[row],
            step="entropy",
            reason=f"{entropy_reason(float(pool.entropy[row]), thresholds)}, cos {cosine[row]:.3f}",
        )
        for row in np.flatnonzero(low & (cosine > cut))
    ]
    # The nearest items below the relevance cut, with their cosine: "why was it not used?"
    below = np.flatnonzero(off)
    for row in below[np.argsort(-cosine[below], kind="stable")][:_LISTED_BELOW_CUT]:
        dropped.append(
            ContextDrop(
                id=pool.ids[row],
                title=pool.titles[row],
                step="relevance",
                reason=relevance_reason(float(cosine[row]), cut, thresholds),
            )
        )
    dropped += [
        ContextDrop(
            id=d.id,
            title=pool.titles[row_of[d.id]],
            step=d.step.value,
            reason=_titled(d.reason, row_of, pool),
        )
        for d in selection.dropped
    ]
    limit = settings.max_candidates
    dropped += [
        ContextDrop(
            id=pool.ids[row],
            title=pool.titles[row],
            step="candidates",
            reason=f"cos {cosine[row]:.3f}, past the relevance cut but not among the {limit} "
            "nearest (context.max_candidates)",
        )
        for row in beyond
    ]
    counts = {
        "entropy": int(low.sum()),
        "relevance": int(off.sum()),
        "candidates": len(beyond),
        "mmr": 0,
        "knapsack": 0,
    }
    for d in selection.dropped:
        counts[d.step.value] += 1
    return SubtaskContext(
        subtask_id=subtask_id,
        retrieved=True,
        reason=_why_empty(counts, int((low & (cosine > cut)).sum()), settings) if not items else "",
        budget=budget,
        tokens=selection.tokens,
        candidates=int(eligible.sum()),
        items=items,
        dropped_by={k: v for k, v in counts.items() if v},
        dropped=tuple(dropped),
        exact=selection.exact,
    )


def _top_k(
    pool: Pool,
    cosine: Vectors,
    eligible: np.ndarray,
    subtask_id: str,
    budget: int,
    settings: ContextSettings,
    tokenizer: str,
    count_tokens: Callable[[str], int],
) -> SubtaskContext:
    """``context.optimize`` off: the ``naive_k`` nearest items, each taken if it still fits."""
    rows = np.flatnonzero(eligible)
    order = rows[np.argsort(-cosine[rows], kind="stable")][: settings.naive_k]
    items: list[ContextItem] = []
    dropped: list[ContextDrop] = []
    used = 0
    for row in order:
        tokens = _tokens(pool, row, tokenizer, count_tokens) + _header(pool, row, count_tokens)
        if used + tokens > budget:
            reason = f"{tokens} tokens; {budget - used} of the budget of {budget} were left"
            dropped.append(
                ContextDrop(
                    id=pool.ids[row], title=pool.titles[row], step="knapsack", reason=reason
                )
            )
            continue
        used += tokens
        relevance = round(float(cosine[row]), 4)
        items.append(
            ContextItem(
                id=pool.ids[row],
                kind=pool.kinds[row],
                title=pool.titles[row],
                source=pool.sources[row],
                text=pool.texts[row],
                tokens=tokens,
                relevance=relevance,
                value=relevance,
            )
        )
    rest = int(eligible.sum()) - len(order)
    counts = {"candidates": rest, "knapsack": len(dropped)}
    return SubtaskContext(
        subtask_id=subtask_id,
        retrieved=True,
        budget=budget,
        tokens=used,
        candidates=int(eligible.sum()),
        items=tuple(items),
        dropped_by={k: v for k, v in counts.items() if v},
        dropped=tuple(dropped),
        reason="" if items else "no item fits the budget",
    )


_LISTED_BELOW_CUT = 10
"""Items below the relevance cut listed (the nearest): the rest are counted."""
_RECALLED_PER_KIND = ("episodic", "agent")
"""Memory kinds of which a subtask is offered only the nearest one: several earlier answers
to one question would crowd out the knowledge base."""


def _one_of_each(pool: Pool, cosine: Vectors, eligible: np.ndarray) -> None:
    """Keep eligible only the nearest memory of each kind of :data:`_RECALLED_PER_KIND`."""
    for kind in _RECALLED_PER_KIND:
        rows = [r for r in np.flatnonzero(eligible).tolist() if pool.kinds[r] == kind]
        if len(rows) > 1:
            best = max(rows, key=lambda r: float(cosine[r]))
            for r in rows:
                eligible[r] = r == best


def _header(pool: Pool, row: int, count_tokens: Callable[[str], int]) -> int:
    """Tokens of the line the prompt puts before the item (its number and source)."""
    return count_tokens(item_header(10, pool.sources[row]))


def _tokens(pool: Pool, row: int, tokenizer: str, count_tokens: Callable[[str], int]) -> int:
    if pool.tokenizers[row] == tokenizer:
        return int(pool.tokens[row])
    return count_tokens(pool.texts[row])


def _titled(reason: str, row_of: dict[str, int], pool: Pool) -> str:
    """``reason`` with the ids it names (a near-duplicate's original) replaced by titles."""
    for word in reason.split():
        row = row_of.get(word.rstrip(":,;"))
        if row is not None:
            reason = reason.replace(word.rstrip(":,;"), pool.titles[row])
    return reason


def _why_empty(counts: dict[str, int], relevant_low: int, settings: ContextSettings) -> str:
    if relevant_low:
        return (
            f"the relevant items say too little: entropy at most {settings.min_entropy:g} bits "
            "and too short or repetitive (settings context.min_entropy, context.min_evenness)"
        )
    if counts["knapsack"]:
        return "no relevant item fits the budget"
    return (
        f"no item is relevant enough: none has a cosine above {settings.min_relevance:g} "
        "(setting context.min_relevance)"
    )
