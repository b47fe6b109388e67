"""The event bus of one workflow: numbers events and hands them to subscribers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, TypeVar

from automatos.domain.event import Event
from automatos.errors import describe_exception

__all__ = ["EventBus"]

E = TypeVar("E", bound=Event)


class EventBus:
    """Emits the events of one workflow in order, numbered from 1 (a resumed workflow's from
    ``after + 1``: its events go on from those its first process stored).

    The bus keeps no events itself: a run of many subtasks emits several each, and only
    subscribers (the store's writer, a progress display, ``Engine.stream``) need them. A
    subscriber that raises (anything, ``BaseException`` included) or returns a coroutine (an
    ``async def`` callback, which would never run) is dropped and its error kept in
    :attr:`failures`: a broken display must not cost the workflow its work.

    A subscriber that buffers events for a slower reader (``Engine.stream``) adds a *gate*,
    an :class:`asyncio.Event` it clears while its buffer is full: the engine starts no new
    work until every gate is open again (:meth:`ready`), so a slow reader slows the workflow
    instead of growing the buffer.
    """

    def __init__(self, workflow_id: str, after: int = 0) -> None:
        self.workflow_id = workflow_id
        self.emitted = after
        """How many events were emitted so far: the ``seq`` of the last one."""
        self._subscribers: list[Callable[[Event], object]] = []
        self.failures: list[str] = []
        """What went wrong in subscribers that were dropped, one line each."""
        self.gates: tuple[asyncio.Event, ...] = ()
        """Open (set) while the readers they belong to keep up; see :meth:`ready`."""

    def subscribe(self, callback: Callable[[Event], object]) -> None:
        """Call ``callback`` with every later event; it must not block."""
        self._subscribers.append(callback)

    def add_gate(self, gate: asyncio.Event) -> None:
        """Hold new work back while ``gate`` is clear."""
        self.gates = (*self.gates, gate)

    async def ready(self) -> None:
        """Return once every gate is open (at once when there are none)."""
        for gate in self.gates:
            if not gate.is_set():
                await gate.wait()

    def emit(self, kind: type[E], *args: Any, **fields: Any) -> E:
        """Build the next event of ``kind`` from its own fields and deliver it."""
        self.emitted += 1
        event = kind(self.emitted, self.workflow_id, time.time(), *args, **fields)
        for callback in self._subscribers:
            try:
                returned = callback(event)
            except BaseException as exc:  # emit is synchronous: there is nothing to cancel
                self._drop(callback, event, describe_exception(exc, 1000))
            else:
                if returned is not None and asyncio.iscoroutine(returned):
                    returned.close()
                    self._drop(callback, event, "it returned a coroutine (use a plain function)")
        return event

    def _drop(self, callback: Callable[[Event], object], event: Event, why: str) -> None:
        # A new list: the one being iterated over by emit stays as it was.
        self._subscribers = [c for c in self._subscribers if c is not callback]
        name = getattr(callback, "__qualname__", None)
        if not isinstance(name, str):
            name = type(callback).__name__
        self.failures.append(
            f"event subscriber {name} failed on {event.kind} #{event.seq} and was dropped: {why}"[
                :1000
            ]
        )
