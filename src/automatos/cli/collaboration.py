"""Lines that show what the agents did together: the negotiation, the prompt versions, the
findings. ``run`` prints them from the result, ``runs show`` from the stored record (the same
JSON shapes: :mod:`automatos.domain.collaboration` dumped)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["collaboration_lines"]

_SHOWN_PROPOSALS = 20
_SHOWN_FINDINGS = 20


def collaboration_lines(
    negotiation: Mapping[str, Any] | None,
    prompts: Mapping[str, Mapping[str, Any]] | None,
    findings: list[Mapping[str, Any]] | None,
    *,
    all_prompts: bool = True,
) -> list[str]:
    """One line per fact worth showing, plain text (the caller styles it); without
    ``all_prompts``, the prompt versions only when one is not the first or is in a test."""
    lines: list[str] = []
    if negotiation and negotiation.get("skipped"):
        lines.append(f"negotiation: none ({negotiation['skipped']})")
    elif negotiation:
        proposals = list(negotiation.get("proposals") or ())
        applied = sum(p.get("status") == "applied" for p in proposals)
        before = len(negotiation.get("plan_before") or ())
        lines.append(
            f"negotiation: {negotiation.get('rounds', 0)} round(s), {len(proposals)} "
            f"proposal(s), {applied} applied; the plan had {before} step(s) before"
        )
        for p in proposals[:_SHOWN_PROPOSALS]:
            agents = ", ".join(p.get("agents") or ()) or "?"
            lines.append(
                f"  round {p.get('round')}: {p.get('kind')} by {agents}: "
                f"{p.get('status')} ({p.get('reason')})"
            )
        if len(proposals) > _SHOWN_PROPOSALS:
            lines.append(f"  … and {len(proposals) - _SHOWN_PROPOSALS} more")
    if prompts and not all_prompts:
        special = any(
            (u.get("version") or 1) != 1 or u.get("test_id") is not None for u in prompts.values()
        )
        prompts = prompts if special else None
    if prompts:
        shown = []
        for slug, use in prompts.items():
            version = use.get("version")
            text = f"{slug} v{version}" if version else f"{slug} (built-in)"
            if use.get("test_id") is not None:
                text += f" [A/B test {use['test_id']}: {use.get('arm')}]"
            shown.append(text)
        lines.append("prompts: " + ", ".join(shown))
    if findings:
        lines.append(f"findings shared: {len(findings)}")
        for f in findings[:_SHOWN_FINDINGS]:
            against = f.get("contradicts") or ()
            note = f" (contradicts {', '.join(f'F{i}' for i in against)})" if against else ""
            lines.append(
                f"  F{f.get('id')} {f.get('kind')} from {f.get('subtask_id')} by "
                f"{f.get('agent')}{note}: {f.get('text')}"
            )
        if len(findings) > _SHOWN_FINDINGS:
            lines.append(f"  … and {len(findings) - _SHOWN_FINDINGS} more")
    return lines
