"""The event bus of one workflow: numbers events and hands them to subscribers."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from automatos.domain.event import Event

__all__ = ["EventBus"]

E = TypeVar("E", bound=Event)


class EventBus:
    """Emits the events of one workflow in order, keeping them in :attr:`history`."""

    def __init__(self, workflow_id: str) -> None:
        self.workflow_id = workflow_id
        self.history: list[Event] = []
        self._subscribers: list[Callable[[Event], None]] = []

    def subscribe(self, callback: Callable[[Event], None]) -> None:
        """Call ``callback`` with every later event; it must not block."""
        self._subscribers.append(callback)

    def emit(self, kind: type[E], *args: Any, **fields: Any) -> E:
        """Build the next event of ``kind`` from its own fields and deliver it."""
        history = self.history
        event = kind(len(history) + 1, self.workflow_id, time.time(), *args, **fields)
        history.append(event)
        for callback in self._subscribers:
            callback(event)
        return event
