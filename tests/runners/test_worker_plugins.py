"""A worker whose model plugin misbehaves: it ignores its cancellation, or raises what is
not an ``Exception``. The job fails, the worker's slot comes back, the worker stops when
told; the orchestrator is answered instead of waiting out its own timeout. In-process
workers on the real Redis."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from automatos import Engine, SubtaskSpec, WorkflowRequest
from automatos.llm.base import Completion, Message
from automatos.runners import worker as worker_module
from automatos.runners.worker import Worker
from automatos.testing import ScriptedLLM
from tests.runners.conftest import queued_settings


class Stubborn:
    """A provider whose calls ignore their cancellation, for ``seconds``."""

    name = "stubborn"

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.ended = 0
        self.released = False
        """Set by the test when it is done: the call ends then (its task was abandoned)."""

    async def complete(self, messages: Sequence[Message], **_: Any) -> Completion:
        until = time.monotonic() + self.seconds
        while time.monotonic() < until and not self.released:
            try:
                await asyncio.sleep(0.05)
            except asyncio.CancelledError:
                continue
        self.ended += 1
        return Completion(text="late", model="m", tokens_in=1, tokens_out=1, latency_s=0.0)


class Custom(BaseException):
    """A BaseException of a library's own."""


class RaisesItsOwn:
    name = "raises"

    async def complete(self, messages: Sequence[Message], **_: Any) -> Completion:
        raise Custom("the plugin's own")


def _request(*ids: str) -> WorkflowRequest:
    return WorkflowRequest(
        text="Do the steps.", subtasks=tuple(SubtaskSpec(id=i, description=f"do {i}") for i in ids)
    )


async def _started(worker: Worker, stop: asyncio.Event) -> asyncio.Task[Any]:
    task = asyncio.create_task(worker.run(stop))
    await asyncio.wait_for(worker.ready.wait(), 10)
    return task


async def _job_taken(worker: Worker) -> None:
    """Until the worker runs a job."""
    async with asyncio.timeout(5):
        while not worker._running:  # noqa: ASYNC110 - the worker has no event for it
            await asyncio.sleep(0.02)


async def test_a_job_whose_provider_ignores_cancellation_is_given_up_at_its_deadline(
    queue: str, monkeypatch: Any
) -> None:
    monkeypatch.setattr(worker_module, "OVERDUE_GRACE_S", 0.3)
    monkeypatch.setattr(worker_module, "OVERDUE_CHECK_S", 0.1)
    settings = queued_settings(queue, max_attempts=1)
    settings.execution.subtask_timeout_s = 0.5
    provider = Stubborn(seconds=4.0)
    worker = Worker(settings.runner, provider, concurrency=1, grace_s=1)
    stop = asyncio.Event()
    running = await _started(worker, stop)
    try:
        async with Engine(settings, llm=ScriptedLLM(default="done")) as engine:
            started = time.monotonic()
            result = await engine.run(_request("a"))
            assert time.monotonic() - started < 3
            assert result.results["a"].status.value == "failed"
        for _ in range(40):  # the slot comes back within the grace, not when the call ends
            if not worker._running:
                break
            await asyncio.sleep(0.05)
        assert not worker._running
        assert worker.stats.failed == 1 and provider.ended == 0
    finally:
        provider.released = True
        stop.set()
        await asyncio.wait_for(running, 10)


async def test_a_worker_stops_when_told_though_a_job_ignores_its_cancellation(
    queue: str, monkeypatch: Any
) -> None:
    monkeypatch.setattr(worker_module, "HAND_BACK_WAIT_S", 0.2)
    settings = queued_settings(queue, max_attempts=1)
    provider = Stubborn(seconds=30.0)
    worker = Worker(settings.runner, provider, concurrency=2, grace_s=0.3)
    stop = asyncio.Event()
    running = await _started(worker, stop)
    async with Engine(settings, llm=ScriptedLLM(default="done")) as engine:
        workflow = asyncio.create_task(engine.run(_request("a")))
        await _job_taken(worker)
        stop.set()
        started = time.monotonic()
        await asyncio.wait_for(running, 10)
        assert time.monotonic() - started < 3  # the grace, then the hand-back's wait
        assert worker.stats.handed_back == 1
        provider.released = True
        workflow.cancel()
        await asyncio.gather(workflow, return_exceptions=True)


async def test_a_provider_raising_a_base_exception_of_its_own_fails_the_job_at_once(
    queue: str,
) -> None:
    settings = queued_settings(queue, max_attempts=1)
    worker = Worker(settings.runner, RaisesItsOwn(), concurrency=1, grace_s=1)
    stop = asyncio.Event()
    running = await _started(worker, stop)
    try:
        async with Engine(settings, llm=ScriptedLLM(default="done")) as engine:
            started = time.monotonic()
            result = await engine.run(_request("a"))
            assert time.monotonic() - started < 10  # not the subtask's 60 s timeout
        error = result.results["a"].error
        assert error is not None and "Custom" in error.message, error
        assert worker.stats.failed == 1
    finally:
        stop.set()
        await asyncio.wait_for(running, 10)


async def test_a_job_given_up_on_while_the_worker_stops_is_not_handed_back_too(
    queue: str, monkeypatch: Any
) -> None:
    monkeypatch.setattr(worker_module, "OVERDUE_GRACE_S", 0.1)
    monkeypatch.setattr(worker_module, "OVERDUE_CHECK_S", 0.05)
    monkeypatch.setattr(worker_module, "HAND_BACK_WAIT_S", 1.5)
    settings = queued_settings(queue, max_attempts=1)
    settings.execution.subtask_timeout_s = 0.4
    provider = Stubborn(seconds=30.0)
    worker = Worker(settings.runner, provider, concurrency=1, grace_s=0.05)
    stop = asyncio.Event()
    running = await _started(worker, stop)
    async with Engine(settings, llm=ScriptedLLM(default="done")) as engine:
        workflow = asyncio.create_task(engine.run(_request("a")))
        await _job_taken(worker)
        stop.set()  # the hand-back waits 1.5 s; the job's deadline passes meanwhile
        await asyncio.wait_for(running, 10)
        provider.released = True
        await asyncio.wait_for(workflow, 10)
    # answered (given up on) or handed back, never both
    assert (worker.stats.failed, worker.stats.handed_back) == (1, 0), worker.stats
