"""Writes a running workflow's results, events and calls in batches, off the hot path.

A finished subtask's result is buffered and written within ``flush_interval_s`` (or as soon as
``batch_size`` rows wait), in one transaction with whatever else waits (the store may write the
batches of several workflows in that transaction: see :mod:`automatos.store.group`). A writer
with nothing to write sleeps: it wakes for a row, a full batch or its lease. A crash therefore loses
at most the rows of the last interval; everything written before stays, and ``automatos runs
show`` lists it.

What cannot be written is kept within bounds and said:

- A transient failure (a lost connection, a locked database) keeps the rows for the next
  flush; at most ``max_pending_rows`` wait (besides the batch being written), and past that the
  oldest events are dropped first (then the oldest calls, then the oldest results), counted in
  :attr:`BatchWriter.warnings`.
- A row the database refuses (a duplicate key, a value too long) would fail its whole batch
  every time: the batch is halved until the row is alone, the row is dropped and named in
  :attr:`BatchWriter.warnings`, and every other row is written.

The writer also renews the workflow's lease in the store (``store.lease_s``), so that a run
whose process died can be told from one that is still running (a write that names the run's
owner renews it too: the next renewal waits a lease from then).

A writer that holds the run by an owner token stops for good when the store says the run is
no longer its own (:class:`~automatos.errors.RunTakenOverError`: this process was stalled
past its lease and another resumed the run): what waits is dropped, nothing more is written,
:attr:`BatchWriter.taken_over` says why and ``on_taken_over`` is called, once, so that the
workflow is stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence

from automatos.domain.event import Event
from automatos.domain.result import LLMCall, SubtaskResult
from automatos.errors import RunTakenOverError, is_retryable
from automatos.store.base import Store, WriteBatch

__all__ = ["BatchWriter"]

_Row = SubtaskResult | Event | LLMCall
_NAMED = 10
"""Rows named one by one in a warning; more are counted."""


class BatchWriter:
    """One per workflow: ``add_*`` from the engine, ``aclose`` at the end.

    Args:
        store: where the rows go.
        workflow_id: the workflow whose rows these are.
        batch_size: rows that wake the writer before its interval is up.
        interval_s: longest a row waits before a write is tried (``store.flush_interval_s``).
        lease_s: the workflow's lease is renewed at least this often (``store.lease_s``).
        max_pending_rows: most rows kept waiting while the database cannot take them
            (``store.max_pending_rows``).
        owner: the token the process holds the run's record by (``None``: not checked).
    """

    def __init__(
        self,
        store: Store,
        workflow_id: str,
        batch_size: int,
        interval_s: float,
        *,
        lease_s: float = 30.0,
        max_pending_rows: int = 50_000,
        owner: str | None = None,
    ) -> None:
        self.store = store
        self.owner = owner
        self.batch_size = batch_size
        self.interval_s = interval_s
        self.lease_s = lease_s
        self.max_pending_rows = max_pending_rows
        self.error: Exception | None = None
        """The last transient failure, while (or if, after :meth:`aclose`) its rows wait."""
        self.taken_over: RunTakenOverError | None = None
        """Set when the store refused a write: another process resumed the run."""
        self.on_taken_over: Callable[[RunTakenOverError], object] | None = None
        """Called once when :attr:`taken_over` is set (the pipeline stops the workflow)."""
        self._batch = WriteBatch(workflow_id, owner=owner)
        self._pending = 0
        self._dropped = {"events": 0, "calls": 0, "results": 0}
        self._dropped_seqs: list[int] = []  # of the first and the last event dropped
        self._dropped_ids: list[str] = []  # of the results dropped
        self._rejected: list[str] = []
        self._rejected_count = 0
        self._lost: str | None = None
        self._wake = asyncio.Event()
        self._idle = False
        self._closing = False
        self._task = asyncio.create_task(self._run())

    def add_result(self, result: SubtaskResult) -> None:
        """Buffer a committed result (nothing once the run was taken over)."""
        if self.taken_over is None:
            self._batch.results.append(result)
            self._added()

    def add_event(self, event: Event) -> None:
        """Buffer an event (nothing once the run was taken over)."""
        if self.taken_over is None:
            self._batch.events.append(event)
            self._added()

    def add_call(self, call: LLMCall) -> None:
        """Buffer a model call (nothing once the run was taken over)."""
        if self.taken_over is None:
            self._batch.calls.append(call)
            self._added()

    @property
    def warnings(self) -> list[str]:
        """What could not be stored, one line each: rows dropped to stay within
        ``max_pending_rows``, rows the database refused, rows left when the writer closed."""
        lines = []
        named = {
            "events": "events (seq {} to {})".format(*self._dropped_seqs or (0, 0)),
            "calls": "model calls",
            "results": f"results (subtasks {', '.join(self._dropped_ids)}"
            + (", …)" if self._dropped["results"] > len(self._dropped_ids) else ")"),
        }
        dropped = [f"{count} {named[kind]}" for kind, count in self._dropped.items() if count]
        if dropped:
            lines.append(
                "the store could not keep up: dropped the oldest "
                f"{', '.join(dropped)} to keep at most store.max_pending_rows = "
                f"{self.max_pending_rows} rows waiting"
            )
        lines += self._rejected
        if self._rejected_count > len(self._rejected):
            lines.append(
                f"the database refused {self._rejected_count - len(self._rejected)} more rows"
            )
        if self._lost is not None:
            lines.append(self._lost)
        return lines

    def _added(self) -> None:
        self._pending += 1
        if self._idle or self._pending >= self.batch_size:
            self._wake.set()
        if self._pending > self.max_pending_rows:
            self._shed()

    def _shed(self) -> None:
        """Drop the oldest rows past ``max_pending_rows``: events first, results last."""
        batch, excess = self._batch, self._pending - self.max_pending_rows
        events = batch.events[:excess]
        del batch.events[: len(events)]
        if events:
            first = self._dropped_seqs[0] if self._dropped_seqs else events[0].seq
            self._dropped_seqs = [first, events[-1].seq]
        excess -= len(events)
        calls = batch.calls[: max(excess, 0)]
        del batch.calls[: len(calls)]
        excess -= len(calls)
        results = batch.results[: max(excess, 0)]
        del batch.results[: len(results)]
        self._dropped_ids += [r.subtask_id for r in results[: _NAMED - len(self._dropped_ids)]]
        for kind, gone in (("events", events), ("calls", calls), ("results", results)):
            self._dropped[kind] += len(gone)
            self._pending -= len(gone)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        renew_at = loop.time() + self.lease_s / 2  # half the lease: renewed well in time
        while not self._closing:
            # Asleep until a row comes (or the lease is due): a workflow that waits on its
            # model costs no wake-ups. Then the row waits at most the interval for others:
            # until the interval's next tick of the loop's clock, the same for every writer,
            # so that the rows of all the workflows running go in one transaction a tick
            # (the store groups writes that arrive together) rather than one each.
            if not self._pending:
                self._idle = True
                await self._sleep(renew_at - loop.time())
                self._idle = False
            if self._pending and not self._closing:
                now = loop.time()
                tick = self.interval_s - now % self.interval_s
                await self._sleep(min(tick, renew_at - now))
            if await self._flush() and self.owner is not None:
                renew_at = loop.time() + self.lease_s / 2  # the write renewed the lease
            elif loop.time() >= renew_at and not self._closing:
                # a renewal that failed is tried again after the interval: the lease has
                # room for a miss
                renewed = await self._renew()
                renew_at = loop.time() + (self.lease_s / 2 if renewed else self.interval_s)

    async def _sleep(self, seconds: float) -> None:
        """Until :attr:`_wake` is set (a full batch, the first row when idle, closing), at
        most ``seconds``."""
        if seconds > 0 and not self._wake.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(seconds):
                    await self._wake.wait()
        self._wake.clear()

    async def _renew(self) -> bool:
        workflow_id = self._batch.workflow_id
        try:
            if self.owner is None:
                await self.store.heartbeat(workflow_id)
            else:
                await self.store.heartbeat(workflow_id, owner=self.owner)
        except RunTakenOverError as exc:
            self._lose(exc)
        except Exception:
            return False
        return True

    def _lose(self, exc: RunTakenOverError) -> None:
        """The run is another process's now: drop what waits, write nothing more, say so."""
        if self.taken_over is not None:
            return
        self.taken_over = exc
        self._closing = True
        self._batch, self._pending = WriteBatch(self._batch.workflow_id, owner=self.owner), 0
        if self.on_taken_over is not None:
            self.on_taken_over(exc)

    async def _flush(self) -> bool:
        """Write what waits; whether all of it was written."""
        if not self._pending or self.taken_over is not None:
            return False
        batch = self._batch
        self._batch, self._pending = WriteBatch(batch.workflow_id, owner=batch.owner), 0
        left = await self._write(batch)
        if self.taken_over is not None:
            return False
        if left is None:
            self.error = None
            return True
        # kept for the next flush, before what was added meanwhile
        self._batch.results[:0] = left.results
        self._batch.events[:0] = left.events
        self._batch.calls[:0] = left.calls
        self._pending += len(left)
        if self._pending > self.max_pending_rows:
            self._shed()
        return False

    async def _write(self, batch: WriteBatch) -> WriteBatch | None:
        """Write ``batch``; what a transient failure left unwritten, or ``None``.

        A batch the database refuses for good is halved until the refused row is alone."""
        try:
            await self.store.write(batch)
        except RunTakenOverError as exc:
            self._lose(exc)
            return None
        except Exception as exc:
            if is_retryable(exc) or isinstance(exc, OSError):
                self.error = exc
                return batch
            if len(batch) == 1:
                self._reject(batch, exc)
                return None
            first, second = _halves(batch)
            left = await self._write(first)
            if left is not None:
                return _joined(left, second)
            if self.taken_over is not None:
                return None
            return await self._write(second)
        return None

    def _reject(self, batch: WriteBatch, exc: Exception) -> None:
        self._rejected_count += 1
        if len(self._rejected) < _NAMED:
            reason = str(exc).split("\n", 1)[0]
            self._rejected.append(f"the database refused {_name(batch)}: {reason}")

    async def aclose(self) -> None:
        """Write what is left; :attr:`warnings` say what could not be stored (nothing is
        written once the run was taken over)."""
        self._closing = True
        self._wake.set()
        await self._task
        await self._flush()
        if self._pending and self.taken_over is None:
            self._lost = f"{self._pending} rows could not be stored: {self.error}"

    def cancel(self) -> None:
        """Stop writing at once (the database does not answer): what waits is not stored."""
        self._closing = True
        self._task.cancel()


def _halves(batch: WriteBatch) -> tuple[WriteBatch, WriteBatch]:
    rows: list[_Row] = [*batch.results, *batch.events, *batch.calls]
    half = len(rows) // 2
    return _gathered(batch, rows[:half]), _gathered(batch, rows[half:])


def _gathered(whose: WriteBatch, rows: Sequence[_Row]) -> WriteBatch:
    batch = WriteBatch(whose.workflow_id, owner=whose.owner)
    for row in rows:
        if isinstance(row, SubtaskResult):
            batch.results.append(row)
        elif isinstance(row, LLMCall):
            batch.calls.append(row)
        else:
            batch.events.append(row)
    return batch


def _joined(first: WriteBatch, second: WriteBatch) -> WriteBatch:
    return WriteBatch(
        first.workflow_id,
        [*first.results, *second.results],
        [*first.events, *second.events],
        [*first.calls, *second.calls],
        first.owner,
    )


def _name(batch: WriteBatch) -> str:
    """The one row of ``batch``: its table and what identifies it."""
    if batch.results:
        return f"the subtask_results row of subtask {batch.results[0].subtask_id!r}"
    if batch.events:
        event = batch.events[0]
        return f"the events row seq {event.seq} ({event.kind})"
    call = batch.calls[0]
    of = f" of subtask {call.subtask_id!r}" if call.subtask_id else ""
    return f"the llm_calls row of a {call.stage} call{of}"
