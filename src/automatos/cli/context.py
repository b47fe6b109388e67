"""Lines that show stage 3's choices: for each subtask, the chunks and memories it was given
(with their cosine and tokens) and how many candidates each step dropped, or why it got none.
``run`` prints them from the result, ``runs show`` from the stored record, with the dropped
items listed one by one (the same JSON shape: :class:`~automatos.domain.context.SubtaskContext`
dumped)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["context_lines"]

_SHOWN_DROPS = 20
_SHOWN_SUBTASKS = 8
_STEPS = ("entropy", "relevance", "candidates", "mmr", "knapsack")


def context_lines(
    context: Mapping[str, Mapping[str, Any]] | None, *, drops: bool = False
) -> list[str]:
    """One line per subtask and per item chosen; with ``drops``, the dropped items too."""
    lines: list[str] = []
    without: dict[str, list[str]] = {}  # subtasks without retrieval, by the reason
    for sid, record in (context or {}).items():
        items = list(record.get("items") or ())
        if not record.get("retrieved"):
            without.setdefault(str(record.get("reason", "")), []).append(sid)
            continue
        dropped_by = record.get("dropped_by") or {}
        counts = ", ".join(f"{step} {dropped_by[step]}" for step in _STEPS if dropped_by.get(step))
        head = (
            f"context of {sid}: {len(items)} of {record.get('candidates', 0)} item(s), "
            f"{record.get('tokens', 0)}/{record.get('budget', 0)} tokens"
        )
        if counts:
            head += f"; dropped by {counts}"
        if not items and record.get("reason"):
            head += f" ({record['reason']})"
        lines.append(head)
        for number, item in enumerate(items, 1):
            lines.append(
                f"  [{number}] {item.get('title')} (cos {item.get('relevance', 0):.2f}, "
                f"{item.get('tokens', 0)} tokens)"
            )
        if drops:
            listed = list(record.get("dropped") or ())
            for drop in listed[:_SHOWN_DROPS]:
                lines.append(
                    f"  dropped by {drop.get('step')}: {drop.get('title')}: {drop.get('reason')}"
                )
            if len(listed) > _SHOWN_DROPS:
                lines.append(f"  … and {len(listed) - _SHOWN_DROPS} more dropped")
    for reason, sids in without.items():
        shown = ", ".join(sids[:_SHOWN_SUBTASKS])
        if len(sids) > _SHOWN_SUBTASKS:
            shown += f" and {len(sids) - _SHOWN_SUBTASKS} more"
        lines.append(f"no context for {shown}: {reason}")
    return lines
