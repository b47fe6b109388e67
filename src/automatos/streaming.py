"""``Engine.stream``: a workflow's events as they happen, then its result.

The events are buffered between the workflow and its reader. The buffer is bounded: while
it is full, the workflow starts no new work (no new subtask attempt, no new stage), so a slow
reader slows the workflow rather than growing memory; events of work already under way still
arrive, at most a few per running subtask beyond the bound.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

from automatos.abandoned import abandon
from automatos.domain.event import Event
from automatos.domain.result import WorkflowResult

__all__ = ["WorkflowStream"]

RunWith = Callable[[Callable[[Event], None], asyncio.Event], Coroutine[Any, Any, WorkflowResult]]
"""Starts the workflow with an event callback and the gate that holds new work back."""


class WorkflowStream:
    """The events of one workflow, and its :attr:`result` once they end.

    Iterate with ``async for``: the events come in order, numbered from 1, ending with
    ``workflow_finished``. When the workflow fails, the iteration ends by raising its typed
    error (an :class:`~automatos.errors.AutomatosError`), also when it failed before its first
    event (an invalid request, a store that cannot be opened). Leaving the loop early, or
    :meth:`aclose`, cancels the workflow. Use ``async with`` to make sure of that::

        async with engine.stream("compare A and B") as stream:
            async for event in stream:
                print(event.seq, event.kind)
        print(stream.result.final_answer)
    """

    def __init__(self, start: RunWith, max_buffered: int = 1000, stop_within_s: float = 60) -> None:
        if max_buffered < 1:
            raise ValueError(f"max_buffered must be 1 or more, not {max_buffered}")
        self._start = start
        self._max = max_buffered
        self._stop_within_s = stop_within_s
        self._buffer: deque[Event] = deque()
        self._gate = asyncio.Event()
        self._gate.set()
        self._waiter: asyncio.Future[None] | None = None
        self._task: asyncio.Task[WorkflowResult] | None = None
        self._result: WorkflowResult | None = None
        self._iterating = False

    @property
    def result(self) -> WorkflowResult:
        """The workflow's result, once the iteration has ended without an error.

        Raises:
            RuntimeError: the stream has not ended yet, or ended with an error (which the
                iteration raised).
        """
        if self._result is None:
            raise RuntimeError("the workflow's result is known once its stream has ended")
        return self._result

    def __aiter__(self) -> AsyncIterator[Event]:
        if self._iterating:
            raise RuntimeError("a workflow stream can be iterated once")
        self._iterating = True
        return self._events()

    async def __aenter__(self) -> WorkflowStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Cancel the workflow if it still runs, and wait until it has stopped (at most
        ``stop_within_s``: the engine's cancellation grace and store timeout)."""
        task = self._task
        if task is None:
            return
        if not task.done():
            task.cancel()
            await asyncio.wait([task], timeout=self._stop_within_s)
        abandon(task)  # its outcome read (the caller left: the error is not theirs to see)

    def _put(self, event: Event) -> None:
        self._buffer.append(event)
        if len(self._buffer) >= self._max:
            self._gate.clear()
        self._wake()

    def _wake(self, _task: object = None) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _events(self) -> AsyncIterator[Event]:
        loop = asyncio.get_running_loop()
        task = self._task = loop.create_task(self._start(self._put, self._gate))
        task.add_done_callback(self._wake)
        buffer = self._buffer
        try:
            while True:
                if buffer:
                    event = buffer.popleft()
                    if len(buffer) < self._max // 2 + 1:
                        self._gate.set()
                    yield event
                elif task.done():
                    break
                else:
                    self._waiter = loop.create_future()
                    await self._waiter
            self._result = task.result()  # raises what stopped the workflow
        finally:
            await self.aclose()
