"""The event bus of one workflow: numbers events and hands them to subscribers."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from automatos.domain.event import Event

__all__ = ["EventBus"]

E = TypeVar("E", bound=Event)


class EventBus:
    """Emits the events of one workflow in order, numbered from 1.

    The bus keeps no events itself: a run of many subtasks emits several each, and only
    subscribers (the store's writer, a progress display, ``Engine.stream``) need them. A
    subscriber that raises is dropped and its error kept in :attr:`failures`: a broken
    display must not cost the workflow its work.
    """

    def __init__(self, workflow_id: str) -> None:
        self.workflow_id = workflow_id
        self.emitted = 0
        """How many events were emitted so far: the ``seq`` of the last one."""
        self._subscribers: list[Callable[[Event], None]] = []
        self.failures: list[str] = []
        """What went wrong in subscribers that were dropped, one line each."""

    def subscribe(self, callback: Callable[[Event], None]) -> None:
        """Call ``callback`` with every later event; it must not block."""
        self._subscribers.append(callback)

    def emit(self, kind: type[E], *args: Any, **fields: Any) -> E:
        """Build the next event of ``kind`` from its own fields and deliver it."""
        self.emitted += 1
        event = kind(self.emitted, self.workflow_id, time.time(), *args, **fields)
        for callback in self._subscribers:
            try:
                callback(event)
            except Exception as exc:
                self._drop(callback, event, exc)
        return event

    def _drop(self, callback: Callable[[Event], None], event: Event, exc: Exception) -> None:
        # A new list: the one being iterated over by emit stays as it was.
        self._subscribers = [c for c in self._subscribers if c is not callback]
        name = getattr(callback, "__qualname__", type(callback).__name__)
        self.failures.append(
            f"event subscriber {name} failed on {event.kind} #{event.seq} and was dropped: "
            f"{type(exc).__name__}: {exc}"
        )
