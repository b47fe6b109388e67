"""Group commit: what many workflows ask of the store at once is done in one transaction.

A busy engine runs hundreds of workflows, and each would start its record, write its rows
every flush interval, learn and finish in transactions of its own: the store's CPU goes to
checking out connections, beginning and committing, not to the rows. A :class:`Group` runs
the first request at once and gathers those that arrive while it runs; they all go into the
next transaction, and each caller still waits until its own work is committed (or failed).
Nothing waits longer than it would alone: a request is taken as soon as the previous
transaction ends.

When the transaction fails:

- transiently (a lost connection, a locked database), every request of the group fails with
  that error, retryable, as each would have alone;
- for good (a refused row, a duplicate id), each request is tried again in a transaction of
  its own, so that one refused row costs its own request only, with the error it would have
  had alone.

A read grouped this way (``alone`` not given) gives every caller the result of one read made
after it asked: what was committed before the call is always seen.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from sqlalchemy.exc import SQLAlchemyError

from automatos.store.failures import is_transient, store_error

__all__ = ["HAND_OVER", "Group"]

HAND_OVER = 16
"""Callers resumed per turn of the loop once their group is committed. A group of hundreds
(a server that started as many workflows at once) resumed all at once runs every caller
back to back before anything they woke runs: a server's event streams waited for the whole
group (100 ms and more). A few at a time, what each woke runs soon after it; what they ask
meanwhile still goes into one next group."""

T = TypeVar("T")
R = TypeVar("R")


class Group(Generic[T, R]):
    """Requests made while a transaction runs go together into the next.

    Args:
        where: the name of a request's operation, for its errors (``start_execution``).
        together: does the requests in one transaction, a result for each in order; raises
            if the transaction failed (nothing of it was committed).
        alone: does one request in a transaction of its own, raising its own error; the
            fallback when ``together`` failed for good. Without it, every request of a failed
            group gets the group's error.
        weight: how much a request weighs (rows to write); a group takes requests until
            ``max_weight`` is reached, and always at least one.
        max_weight: the most a group weighs, so that one transaction stays short.
    """

    def __init__(
        self,
        where: Callable[[T], str],
        together: Callable[[list[T]], Awaitable[Sequence[R]]],
        alone: Callable[[T], Awaitable[R]] | None = None,
        *,
        weight: Callable[[T], int] = lambda _: 1,
        max_weight: int = 5_000,
    ) -> None:
        self._where = where
        self._together = together
        self._alone = alone
        self._weight = weight
        self._max_weight = max_weight
        self._queue: deque[tuple[T, asyncio.Future[R]]] = deque()
        self._task: asyncio.Task[None] | None = None
        self.groups = 0
        """Transactions run so far (for tests and measurements)."""

    async def __call__(self, request: T) -> R:
        """Do ``request`` with whatever else is asked meanwhile; its result, or its error.

        A caller that stops waiting (cancelled, timed out) does not take its request back:
        it may still be committed.
        """
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.append((request, future))
        if self._task is None:
            self._task = asyncio.create_task(self._drain())
        return await future

    async def aclose(self) -> None:
        """Wait for what was asked to be done."""
        while self._task is not None:
            await asyncio.shield(self._task)

    async def _drain(self) -> None:
        taken: list[tuple[T, asyncio.Future[R]]] = []
        try:
            while self._queue:
                taken = self._take()
                await self._run(taken)
        except Exception as exc:  # a bug: every caller left waiting hears of it
            for _, future in [*taken, *self._queue]:
                _fail(future, exc)
        finally:
            self._task = None
            # cancelled (the loop is closing): nobody is left to do what waits
            for _, future in [*taken, *self._queue]:
                future.cancel()  # nothing for a future that has its outcome
            self._queue.clear()

    def _take(self) -> list[tuple[T, asyncio.Future[R]]]:
        taken: list[tuple[T, asyncio.Future[R]]] = []
        weight = 0
        while self._queue and (not taken or weight < self._max_weight):
            item = self._queue.popleft()
            if item[1].done():  # its caller stopped waiting before it was begun
                continue
            taken.append(item)
            weight += self._weight(item[0])
        return taken

    async def _run(self, taken: list[tuple[T, asyncio.Future[R]]]) -> None:
        if not taken:
            return
        self.groups += 1
        try:
            results = await self._together([request for request, _ in taken])
        except Exception as exc:
            if self._alone is None or is_transient(exc):
                for request, future in taken:
                    _fail(future, self._error(request, exc))
                return
            for request, future in taken:
                if future.done():
                    continue
                try:
                    result = await self._alone(request)
                except Exception as alone_exc:
                    _fail(future, self._error(request, alone_exc))
                else:
                    _resolve(future, result)
            return
        done = list(zip(taken, results, strict=True))
        for i, ((_, future), result) in enumerate(done, 1):
            _resolve(future, result)
            if i % HAND_OVER == 0 and i < len(done):
                # the rest resume at the next turn of the loop: what these woke (a server's
                # streams sending their events) runs first, not after the whole group
                try:
                    await asyncio.sleep(0)
                except asyncio.CancelledError:  # committed: every caller gets its result
                    for (_, rest), outcome in done[i:]:
                        _resolve(rest, outcome)
                    raise

    def _error(self, request: T, exc: Exception) -> Exception:
        """A database failure as each caller's own :class:`StoreError`; anything else as is."""
        if isinstance(exc, OSError | SQLAlchemyError):
            error = store_error(self._where(request), exc)
            error.__cause__ = exc
            return error
        return exc


def _resolve(future: asyncio.Future[R], result: R) -> None:
    if not future.done():  # else its caller stopped waiting
        future.set_result(result)


def _fail(future: asyncio.Future[R], error: Exception) -> None:
    if not future.done():
        future.set_exception(error)
