"""Earlier outputs quoted into a prompt, cut to fit one budget.

A subtask's prompt quotes the outputs it depends on, and the final synthesis quotes the
outputs it combines. Each output is cut at a per-output limit, and together they must fit a
total: short outputs are kept whole and the long ones share what is left equally, so a
fan-in of fifty long answers still makes a prompt the model can take.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["CUT_MARK", "fit_quotes"]

CUT_MARK = "\n[… truncated]"


def fit_quotes(texts: Sequence[str], total: int, each: int) -> list[str]:
    """``texts`` cut so that none is over ``each`` characters and all fit ``total``."""
    sizes = [min(len(t), each) for t in texts]
    if sum(sizes) > total:
        # Water-filling: the largest share such that the outputs under it, kept whole, and
        # the others cut to it, add up to the total.
        remaining, left = total, len(sizes)
        share = 0
        for size in sorted(sizes):
            share = remaining // left
            if size > share:
                break
            remaining -= size
            left -= 1
        sizes = [min(size, share) for size in sizes]
    return [
        t if len(t) <= size else t[:size] + CUT_MARK for t, size in zip(texts, sizes, strict=True)
    ]
