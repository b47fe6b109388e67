"""The workflows a server is running: started from requests, their events kept while they run
(what a live event stream reads), cancelled on request or when the server stops.

A finished workflow leaves the registry once its record is complete in the store, from which
its events replay; a stream that was following it reads the rest from what it kept.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from automatos.domain.event import Event, event_to_dict
from automatos.domain.request import WorkflowRequest
from automatos.engine import Engine
from automatos.errors import InvalidRequestError, ServerStoppingError
from automatos.server.metrics import ServerMetrics

__all__ = ["LiveRun", "RunRegistry"]


@dataclass(eq=False)
class LiveRun:
    """One running workflow and the events it emitted so far (``events[i]`` has seq i+1)."""

    workflow_id: str
    events: list[dict[str, Any]] = field(default_factory=list)
    done: bool = False
    task: asyncio.Task[Any] | None = None
    cancel_on_start: bool = False
    """Cancelled before its record existed: cancelled once it does, so that it has one."""
    error: dict[str, str] | None = None
    """Why it failed before its record existed (a level or stage selector that failed, the
    store refusing the record, an unpriced model under a dollar budget): the only trace of
    it, kept by the registry for a while."""
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def ended(self) -> str | None:
        """Its status once ``workflow_finished`` was emitted."""
        last = self.events[-1] if self.events else None
        return last["status"] if last is not None and last["kind"] == "workflow_finished" else None

    def add(self, event: Event) -> None:
        self.events.append(event_to_dict(event))
        if self.cancel_on_start and self.task is not None:
            self.cancel_on_start = False
            self.task.cancel()
        self.wake()

    def finish(self) -> None:
        self.done = True
        self.wake()

    async def changed(self, wait_s: float) -> None:
        """Wait until an event comes or the run ends, at most ``wait_s`` seconds."""
        signal = self._changed
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait_s):
                await signal.wait()

    def wake(self) -> None:
        """Wake what waits in :meth:`changed`."""
        signal, self._changed = self._changed, asyncio.Event()
        signal.set()


class RunRegistry:
    """The server's running workflows, and the workflow each idempotency key started."""

    def __init__(
        self, engine: Engine, max_keys: int = 10_000, metrics: ServerMetrics | None = None
    ) -> None:
        self.engine = engine
        self.metrics = metrics
        self._runs: dict[str, LiveRun] = {}
        self._keys: OrderedDict[str, tuple[str, tuple[object, ...]]] = OrderedDict()
        """Each key's workflow, and the request (text, level) that started it."""
        self._max_keys = max_keys
        self._failed: OrderedDict[str, LiveRun] = OrderedDict()
        self.stopping = False
        """Shutting down: no workflow starts any more."""

    def start(
        self, request: WorkflowRequest, idempotency_key: str | None = None
    ) -> tuple[str, bool]:
        """Start ``request`` (or find the workflow its key already started); its id, and
        whether it was started now. No await between the look-up and the start: concurrent
        requests with one key start one workflow.

        Raises:
            ServerStoppingError: the server is shutting down (and the key is new).
        """
        asked = (request.text, request.level)
        if idempotency_key is not None:
            known = self._keys.get(idempotency_key)
            if known is not None:
                workflow_id, first = known
                if first != asked:
                    raise InvalidRequestError(
                        f"the Idempotency-Key {idempotency_key!r} started workflow "
                        f"{workflow_id} with another request: use a new key for a new request"
                    )
                self._keys.move_to_end(idempotency_key)
                return workflow_id, False
        if self.stopping:
            raise ServerStoppingError("the server is shutting down: start the workflow elsewhere")
        live = LiveRun(request.workflow_id)
        self._runs[live.workflow_id] = live
        live.task = asyncio.create_task(
            self._run(live, request), name=f"workflow {live.workflow_id}"
        )
        if idempotency_key is not None:
            self._keys[idempotency_key] = (live.workflow_id, asked)
            while len(self._keys) > self._max_keys:
                self._keys.popitem(last=False)
        return live.workflow_id, True

    def live(self, workflow_id: str) -> LiveRun | None:
        """The running workflow of this id, if it is running here, or the one that failed
        here before it had a record."""
        return self._runs.get(workflow_id) or self._failed.get(workflow_id)

    def cancel(self, workflow_id: str) -> bool:
        """Cancel a running workflow; whether it was running."""
        live = self._runs.get(workflow_id)
        if live is None or live.task is None or live.done or live.ended is not None:
            return False  # a workflow that emitted its end is only writing its record
        if live.events:
            live.task.cancel()
        else:  # its record is not written yet: the first event says it is
            live.cancel_on_start = True
        return True

    def wake_all(self) -> None:
        """Wake whatever waits on a running workflow's events (the server is stopping)."""
        for live in self._runs.values():
            live.wake()

    @property
    def running(self) -> int:
        """How many workflows are running."""
        return len(self._runs)

    async def aclose(self, grace_s: float) -> None:
        """Start nothing more, let running workflows finish within ``grace_s``, then stop
        the rest (their records say ``interrupted``)."""
        self.stopping = True
        tasks = [r.task for r in self._runs.values() if r.task is not None]
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=grace_s) if grace_s > 0 else ((), tasks)
        if not pending:
            return
        self.engine.begin_shutdown()
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def _run(self, live: LiveRun, request: WorkflowRequest) -> None:
        metrics = self.metrics

        def on_event(event: Event) -> None:
            live.add(event)
            if metrics is not None:
                metrics.observe(live.events[-1])

        try:
            result = await self.engine.run(request, on_event=on_event)
            if metrics is not None:
                totals = result.totals
                metrics.finished(totals.tokens_in, totals.tokens_out, totals.cost_usd)
        except asyncio.CancelledError:
            pass  # cancelled on request or at shutdown: the record says so
        except Exception as exc:  # the run's typed error is in its record and its events
            if not live.events:  # no record: the registry is all that knows of it
                live.error = {"type": type(exc).__name__, "message": str(exc)}
                self._failed[live.workflow_id] = live
                while len(self._failed) > self._max_keys:
                    self._failed.popitem(last=False)
        finally:
            live.finish()
            self._runs.pop(live.workflow_id, None)
