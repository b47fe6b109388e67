"""Timeouts for many concurrent attempts of the same duration, on one timer.

``asyncio.timeout`` schedules and cancels a timer per use, which is a measurable part of a
subtask's overhead when thousands run. Attempts of one workflow all have the same timeout,
so their deadlines fall in the order they were armed: a FIFO of deadlines and a single timer
for the earliest one do the same job in O(1) per attempt.

A task whose caller cancels it within a known time says so in :data:`caller_timeout`, so
that what it calls can skip timers of its own that could only fire later (deadline
propagation, as in gRPC): the model wrapper's per-call timeout, under the dispatcher's
per-attempt one.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Callable, Hashable
from contextvars import ContextVar
from typing import Any

__all__ = ["DeadlineQueue", "being_cancelled", "caller_timeout"]

caller_timeout: ContextVar[float] = ContextVar("automatos_caller_timeout", default=math.inf)
"""Seconds within which the current task's caller cancels it, from any moment of the work
it was given (for a subtask's task: the dispatcher's per-attempt timeout)."""


def being_cancelled() -> bool:
    """Whether the current task is being cancelled by its caller, as opposed to running
    code that raised a ``CancelledError`` on its own (outside any task: assumed so)."""
    task = asyncio.current_task()
    return task is None or task.cancelling() > 0


Stuck = Callable[[Hashable, "asyncio.Task[Any]"], None]


class DeadlineQueue:
    """Cancels the task that armed a token when ``timeout`` seconds pass before it disarms.

    With ``on_stuck``, a task that has still not disarmed ``grace`` seconds after it was
    cancelled (third-party code that swallowed the cancellation) is reported to it, so the
    owner can stop waiting for it.
    """

    def __init__(
        self, timeout: float, *, grace: float = 5.0, on_stuck: Stuck | None = None
    ) -> None:
        self.timeout = timeout
        self.grace = grace
        self.on_stuck = on_stuck
        self._loop = asyncio.get_running_loop()
        self._queue: deque[tuple[float, Hashable]] = deque()
        self._live: dict[Hashable, asyncio.Task[Any]] = {}
        self._expired: set[Hashable] = set()
        self._timer: asyncio.TimerHandle | None = None

    def is_current(self) -> bool:
        """Whether this queue belongs to the running event loop."""
        try:
            return asyncio.get_running_loop() is self._loop
        except RuntimeError:
            return False

    def arm(self, token: Hashable, task: asyncio.Task[Any] | None = None) -> None:
        """Start the clock for ``token`` (unique per attempt) on ``task``, by default the
        current one."""
        if task is None:
            task = asyncio.current_task()
            if task is None:
                raise RuntimeError("DeadlineQueue.arm needs a task: pass one or call it in one")
        deadline = self._loop.time() + self.timeout
        self._queue.append((deadline, token))
        self._live[token] = task
        if self._timer is None:
            self._timer = self._loop.call_at(deadline, self._fire)

    def disarm(self, token: Hashable) -> bool:
        """Stop the clock; ``True`` if the deadline had passed and the task was cancelled.

        When it returns ``True`` the cancellation it caused is withdrawn from the task
        (``Task.uncancel``), so the caller may go on, e.g. to retry.
        """
        self._live.pop(token, None)
        expired = token in self._expired
        if expired:
            self._expired.discard(token)
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
        # Drop finished attempts from the head so the queue stays short. The timer is left
        # to fire even when nothing waits any more: re-creating it per attempt costs more.
        queue = self._queue
        while queue and queue[0][1] not in self._live:
            queue.popleft()
        return expired

    def _fire(self) -> None:
        self._timer = None
        now = self._loop.time()
        queue = self._queue
        while queue:
            deadline, token = queue[0]
            task = self._live.get(token)
            if task is None:
                queue.popleft()
            elif deadline > now:
                self._timer = self._loop.call_at(deadline, self._fire)
                return
            else:
                queue.popleft()
                del self._live[token]
                self._expired.add(token)
                task.cancel()
                if self.on_stuck is not None:
                    self._loop.call_later(self.grace, self._check_stuck, token, task)

    def close(self) -> None:
        """Stop the timer and forget every deadline: the owner is done. (A timer left armed
        would keep whatever ``on_stuck`` belongs to alive until it fires.)"""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._queue.clear()
        self._live.clear()
        self._expired.clear()
        self.on_stuck = None

    def _check_stuck(self, token: Hashable, task: asyncio.Task[Any]) -> None:
        if token in self._expired and not task.done() and self.on_stuck is not None:
            self._expired.discard(token)
            self.on_stuck(token, task)
