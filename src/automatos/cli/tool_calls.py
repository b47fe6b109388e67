"""Lines that show the tools each agent called: for each subtask that called any, one line
per call with the tool, how it ended and how long it took (and, for a call that did not end
well, the error the model was given, redacted). ``run`` prints them from the result, ``runs
show`` from the stored record (the same JSON shape: a :class:`~automatos.llm.base.ToolUse`
as a dict)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from automatos.domain.result import SubtaskResult

__all__ = ["result_tool_calls", "tool_call_lines"]

_SHOWN_CALLS = 20
"""Calls listed per subtask; the rest are counted."""
_SHOWN_ERROR_CHARS = 80


def tool_call_lines(calls: Iterable[tuple[str, Iterable[Mapping[str, Any]] | None]]) -> list[str]:
    """The lines of ``(subtask id, its tool calls)`` pairs; nothing for a subtask without."""
    lines: list[str] = []
    for sid, uses in calls:
        listed = list(uses or ())
        if not listed:
            continue
        lines.append(f"tool calls of {sid}: {len(listed)}")
        for number, use in enumerate(listed[:_SHOWN_CALLS], 1):
            line = f"  {number}. {use.get('tool')} {use.get('outcome')} {_seconds(use)}"
            error = use.get("error")
            if error and use.get("outcome") != "ok":
                line += f": {_short(str(error))}"
            lines.append(line)
        if len(listed) > _SHOWN_CALLS:
            lines.append(f"  … and {len(listed) - _SHOWN_CALLS} more")
    return lines


def result_tool_calls(
    results: Mapping[str, SubtaskResult],
) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A workflow result's tool calls, by subtask, in the stored record's shape."""
    for sid, result in results.items():
        yield sid, [dataclasses.asdict(use) for use in result.tool_calls]


def _seconds(use: Mapping[str, Any]) -> str:
    latency = use.get("latency_s")
    return f"{latency:.3f}s" if isinstance(latency, int | float) else "-"


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _SHOWN_ERROR_CHARS else text[: _SHOWN_ERROR_CHARS - 1] + "…"
