"""A workflow's budget: no new subtask is dispatched once it would overrun.

The next subtask is expected to cost what the finished ones cost on average, and so is each
one still running; a subtask that would take the projected spend over the budget is not
started. Spend counts every model call of the workflow, planning included.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

__all__ = ["Budget"]


@dataclass
class Budget:
    """Limits in tokens and dollars (either may be ``None``), and what finished subtasks cost."""

    tokens: int | None
    usd: float | None
    finished: int = 0
    finished_tokens: int = 0
    finished_usd: float = 0.0

    def record(self, tokens: int, usd: float) -> None:
        """Count one finished subtask's spend."""
        self.finished += 1
        self.finished_tokens += tokens
        self.finished_usd += usd

    def refusal(
        self,
        spent_tokens: int,
        spent_usd: float,
        running: int,
        unpriced: Collection[str] = (),
    ) -> str | None:
        """Why one more subtask may not start now, or ``None`` if it may. ``unpriced``:
        models called without a known price, which a dollar budget cannot be kept with."""
        unknown = self._unknown_cost(unpriced)
        if unknown is not None:
            return unknown
        n = max(1, self.finished)
        ahead = running + 1
        if self.tokens is not None:
            projected = spent_tokens + ahead * self.finished_tokens / n
            if projected > self.tokens or spent_tokens >= self.tokens:
                return (
                    f"token budget {self.tokens}: {spent_tokens} spent, about "
                    f"{projected:.0f} with this subtask"
                )
        if self.usd is not None:
            projected_usd = spent_usd + ahead * self.finished_usd / n
            if projected_usd > self.usd or spent_usd >= self.usd:
                return (
                    f"dollar budget {self.usd:g}: {spent_usd:.4f} spent, about "
                    f"{projected_usd:.4f} with this subtask"
                )
        return None

    def call_refusal(
        self,
        spent_tokens: int,
        spent_usd: float,
        estimated: int,
        unpriced: Collection[str] = (),
    ) -> str | None:
        """Why one more call of about ``estimated`` tokens may not be made, or ``None``."""
        unknown = self._unknown_cost(unpriced)
        if unknown is not None:
            return unknown
        if self.tokens is not None and spent_tokens + estimated > self.tokens:
            return (
                f"token budget {self.tokens}: {spent_tokens} spent, about "
                f"{spent_tokens + estimated} with this call"
            )
        if self.usd is not None and spent_usd >= self.usd:
            return f"dollar budget {self.usd:g}: {spent_usd:.4f} spent"
        return None

    def _unknown_cost(self, unpriced: Collection[str]) -> str | None:
        if self.usd is None or not unpriced:
            return None
        return (
            f"dollar budget {self.usd:g}: the cost of {', '.join(sorted(unpriced))} is unknown "
            "(setting llm.prices)"
        )
