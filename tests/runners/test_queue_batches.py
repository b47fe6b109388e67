"""How jobs travel in batches: a burst is shared by the workers waiting on the queue, and a
Redis that runs no scripts still gets every job. In-process workers on the real Redis."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from automatos import Engine, SubtaskSpec, WorkflowRequest
from automatos.domain.result import WorkflowStatus
from automatos.runners.queued import QueuedTaskRunner
from automatos.runners.worker import READ_BATCH, Worker
from automatos.testing import ScriptedLLM
from tests.runners.conftest import REDIS_URL, queued_settings


def _request(n: int) -> WorkflowRequest:
    return WorkflowRequest(
        text="wide",
        subtasks=tuple(SubtaskSpec(id=f"w{i}", description=f"step {i}") for i in range(n)),
    )


async def _reading(workers: list[Worker], stop: asyncio.Event) -> list[asyncio.Task[Any]]:
    """The workers started, each one's first read waiting on the stream."""
    tasks = [asyncio.create_task(worker.run(stop)) for worker in workers]
    for worker in workers:
        await asyncio.wait_for(worker.ready.wait(), 10)
    await asyncio.sleep(0.3)  # each one's read is sent and blocks on the server
    return tasks


async def _stopped(tasks: list[asyncio.Task[Any]], stop: asyncio.Event) -> None:
    stop.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 15)


async def test_a_burst_of_jobs_is_shared_by_the_waiting_workers(queue: str) -> None:
    n = 3 * READ_BATCH
    settings = queued_settings(queue, n, max_attempts=1)
    # each job takes long enough that no worker comes back for more before the others read
    workers = [
        Worker(settings.runner, ScriptedLLM(default="done", latency=0.5), concurrency=n)
        for _ in range(2)
    ]
    stop = asyncio.Event()
    tasks = await _reading(workers, stop)
    try:
        async with Engine(settings, llm=ScriptedLLM(default="done")) as engine:
            result = await engine.run(_request(n))
    finally:
        await _stopped(tasks, stop)
    assert result.status is WorkflowStatus.SUCCEEDED
    taken = [worker.stats.taken for worker in workers]
    assert sum(taken) == n
    # all n went in one batch (one script): each worker took at least one read's worth
    assert min(taken) >= READ_BATCH, taken


@pytest.fixture
async def no_scripts() -> AsyncIterator[str]:
    """A Redis URL whose user may do anything but run scripts (an ACL, as some hosted Redis
    services set)."""
    admin = Redis.from_url(REDIS_URL)
    user = f"automatos-test-noscript-{uuid.uuid4().hex[:8]}"
    await admin.execute_command(
        "ACL", "SETUSER", user, "on", "nopass", "~*", "&*", "+@all", "-@scripting"
    )
    try:
        yield REDIS_URL.replace("redis://", f"redis://{user}:x@")
    finally:
        await admin.execute_command("ACL", "DELUSER", user)
        await admin.aclose()


async def test_a_redis_that_runs_no_scripts_gets_the_jobs_all_the_same(
    queue: str, no_scripts: str, caplog: pytest.LogCaptureFixture
) -> None:
    n = 20
    settings = queued_settings(queue, n, max_attempts=1)
    worker = Worker(settings.runner, ScriptedLLM(default="done"))
    stop = asyncio.Event()
    tasks = await _reading([worker], stop)
    orchestrator = queued_settings(queue, n, no_scripts, max_attempts=1)
    try:
        with caplog.at_level("INFO", logger="automatos.runners.queued"):
            async with Engine(orchestrator, llm=ScriptedLLM(default="done")) as engine:
                first = await engine.run(_request(n))
                second = await engine.run(_request(n))
                runner = engine.runner
                assert isinstance(runner, QueuedTaskRunner)
                assert runner._script is None  # found out once, then MULTI only
    finally:
        await _stopped(tasks, stop)
    assert first.status is WorkflowStatus.SUCCEEDED
    assert second.status is WorkflowStatus.SUCCEEDED
    assert worker.stats.answered == 2 * n
    assert caplog.text.count("this Redis runs no scripts") == 1
