"""Writes a running workflow's results, events and calls in batches, off the hot path.

A finished subtask's result is buffered and written within ``flush_interval_s`` (or as soon as
``batch_size`` rows wait), in one transaction with whatever else waits. A crash therefore loses
at most the rows of the last interval; everything written before stays, and ``automatos runs
show`` lists it. A failed write keeps its rows for the next attempt.
"""

from __future__ import annotations

import asyncio
import contextlib

from automatos.domain.event import Event
from automatos.domain.result import LLMCall, SubtaskResult
from automatos.store.base import Store, WriteBatch

__all__ = ["BatchWriter"]


class BatchWriter:
    """One per workflow: ``add_*`` from the engine, ``aclose`` at the end."""

    def __init__(self, store: Store, workflow_id: str, batch_size: int, interval_s: float) -> None:
        self.store = store
        self.batch_size = batch_size
        self.interval_s = interval_s
        self.error: Exception | None = None
        self._batch = WriteBatch(workflow_id)
        self._pending = 0
        self._wake = asyncio.Event()
        self._closing = False
        self._task = asyncio.create_task(self._run())

    def add_result(self, result: SubtaskResult) -> None:
        """Buffer a committed result."""
        self._batch.results.append(result)
        self._added()

    def add_event(self, event: Event) -> None:
        """Buffer an event."""
        self._batch.events.append(event)
        self._added()

    def add_call(self, call: LLMCall) -> None:
        """Buffer a model call."""
        self._batch.calls.append(call)
        self._added()

    def _added(self) -> None:
        self._pending += 1
        if self._pending >= self.batch_size:
            self._wake.set()

    async def _run(self) -> None:
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval_s):
                    await self._wake.wait()
            self._wake.clear()
            await self._flush()

    async def _flush(self) -> None:
        batch = self._batch
        if not self._pending:
            return
        self._batch, self._pending = WriteBatch(batch.workflow_id), 0
        try:
            await self.store.write(batch)
        except Exception as exc:  # keep the rows; the next flush tries again
            self.error = exc
            self._batch.results[:0] = batch.results
            self._batch.events[:0] = batch.events
            self._batch.calls[:0] = batch.calls
            self._pending += len(batch)
        else:
            self.error = None

    async def aclose(self) -> None:
        """Write what is left; :attr:`error` says if the last write failed."""
        self._closing = True
        self._wake.set()
        await self._task
        await self._flush()
