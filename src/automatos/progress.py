"""The live progress display of the CLI: one line per subtask (status, agent, elapsed).

A subtask is ``running`` from its start, or ``queued`` while its call waits for a model that
serves one call at a time (the in-process model), until the model starts on it. An agent's
tool calls show in its subtask's note as they are reported (the tool, how it ended, how long
it took), and their count once it ends.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from types import TracebackType

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from automatos.domain.event import (
    ContextSelected,
    Event,
    FindingShared,
    ProposalDecided,
    StageStarted,
    SubtaskFinished,
    SubtaskQueued,
    SubtaskRetried,
    SubtaskSkipped,
    SubtaskStarted,
    ToolCalled,
    WorkflowFinished,
    WorkflowResumed,
)

__all__ = ["ProgressDisplay"]

_STYLE = {
    "waiting": "dim",
    "queued": "cyan",
    "running": "yellow",
    "retrying": "magenta",
    "succeeded": "green",
    "failed": "bold red",
    "skipped": "dim red",
    "cancelled": "red",
}
_MAX_ROWS = 40
_ACTIVE = frozenset({"queued", "running", "retrying"})


@dataclass
class _Row:
    status: str = "waiting"
    agent: str = ""
    attempt: int = 0
    started: float | None = None
    elapsed: float | None = None
    note: str = ""
    tools: int = 0
    """Tool calls reported so far, of every attempt."""


class ProgressDisplay:
    """Feed it events (``display.on_event``); it redraws a table on the console.

    Long plans show the running and most recent subtasks, with a count of the rest. Every
    string of the workflow (ids, agents, errors) is shown as :class:`~rich.text.Text`, never
    read as rich markup: a subtask named ``[/bold]`` is a name, not a broken tag.
    """

    def __init__(self, console: Console) -> None:
        self.console = console
        self.stage = "starting"
        self._stage_started = time.monotonic()
        self.rows: dict[str, _Row] = {}
        self._decided = 0
        self._shared = 0
        self._live = Live(console=console, refresh_per_second=8, transient=False)
        self._live.get_renderable = self._render  # type: ignore[method-assign]

    def __enter__(self) -> ProgressDisplay:
        self._live.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._live.__exit__(exc_type, exc, tb)

    def on_event(self, event: Event) -> None:
        """Update the rows from one event."""
        if isinstance(event, StageStarted):
            self.stage, self._stage_started = event.stage, time.monotonic()
        elif isinstance(event, WorkflowFinished):
            self.stage = f"finished: {event.status}"
        elif isinstance(event, WorkflowResumed):
            for sid, status in event.carried.items():
                row = self.rows.setdefault(sid, _Row())
                row.status, row.note = status, "kept from the earlier run"
        elif isinstance(event, SubtaskStarted):
            row = self.rows.setdefault(event.subtask_id, _Row())
            row.status, row.agent, row.attempt = "running", event.agent, event.attempt
            if row.started is None:
                row.started = time.monotonic()
        elif isinstance(event, SubtaskQueued):
            row = self.rows.setdefault(event.subtask_id, _Row())
            if row.status in _ACTIVE:  # a late report must not reopen a finished subtask
                row.status = "queued" if event.ahead else "running"
                row.note = f"{event.ahead} ahead for the model" if event.ahead else ""
        elif isinstance(event, SubtaskRetried):
            row = self.rows.setdefault(event.subtask_id, _Row())
            row.status, row.note = "retrying", event.error[:60]
        elif isinstance(event, ToolCalled):
            row = self.rows.setdefault(event.subtask_id, _Row())
            row.tools += 1
            if row.status in _ACTIVE | {"waiting"}:
                failed = "" if event.outcome == "ok" else f" {event.outcome}"
                row.note = (
                    f"tool {event.tool[:30]}{failed} ({event.latency_s:.2f}s); "
                    f"{_calls(row.tools)} so far"
                )
        elif isinstance(event, SubtaskFinished):
            row = self.rows.setdefault(event.subtask_id, _Row())
            row.status, row.elapsed = event.status, event.elapsed_s
            row.note = (event.error or "")[:60] or (_calls(row.tools) if row.tools else "")
        elif isinstance(event, SubtaskSkipped):
            row = self.rows.setdefault(event.subtask_id, _Row())
            row.status, row.note = "skipped", event.reason[:60]
        elif isinstance(event, ProposalDecided):
            self._decided += 1
            self.stage = f"negotiate (round {event.round}: {self._decided} proposal(s) decided)"
        elif isinstance(event, FindingShared):
            self._shared += 1
            self.stage = f"execute ({self._shared} finding(s) shared)"
        elif isinstance(event, ContextSelected):
            row = self.rows.setdefault(event.subtask_id, _Row())
            if event.items and row.status in _ACTIVE | {"waiting"}:
                row.note = f"context: {len(event.items)} item(s), {event.tokens} tokens"

    def _render(self) -> Table:
        title = f"stage: {self.stage}"
        if not self.stage.startswith("finished"):
            title += f" ({time.monotonic() - self._stage_started:.1f}s)"
        table = Table(title=Text(title), title_justify="left", expand=False)
        for column in ("subtask", "status", "agent", "elapsed", "note"):
            table.add_column(column, overflow="ellipsis", max_width=60)
        rows = list(self.rows.items())
        if len(rows) > _MAX_ROWS:
            active = [r for r in rows if r[1].status in _ACTIVE]
            rest = [r for r in rows if r[1].status not in _ACTIVE]
            shown = (active + rest[-(_MAX_ROWS - len(active)) :])[:_MAX_ROWS]
            table.caption = f"{len(rows) - len(shown)} more subtasks not shown"
            rows = shown
        now = time.monotonic()
        for sid, row in rows:
            if row.elapsed is not None:
                elapsed = f"{row.elapsed:.1f}s"
            elif row.started is not None:
                elapsed = f"{now - row.started:.1f}s"
            else:
                elapsed = ""
            attempt = f" (try {row.attempt})" if row.attempt > 1 else ""
            table.add_row(
                Text(sid),
                Text(row.status + attempt, style=_STYLE.get(row.status, "")),
                Text(row.agent),
                elapsed,
                Text(row.note),
            )
        return table


def _calls(n: int) -> str:
    return f"{n} tool call{'s' if n != 1 else ''}"
