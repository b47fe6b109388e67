"""How jobs travel in batches: a burst is shared by the workers waiting on the queue, and a
Redis that runs no scripts still gets every job. In-process workers on the real Redis."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoPermissionError

from automatos import Engine, SubtaskSpec, WorkflowRequest
from automatos.domain.agent import DEFAULT_AGENT
from automatos.domain.result import WorkflowStatus
from automatos.graph import build_plan
from automatos.llm.base import Message
from automatos.runners.base import AgentTask
from automatos.runners.keys import QueueKeys
from automatos.runners.queued import QueuedTaskRunner
from automatos.runners.wire import encode_job
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


def _task(sid: str, workflow_id: str = "wf") -> AgentTask:
    subtask = build_plan([SubtaskSpec(id=sid, description=sid)]).subtasks[0]
    return AgentTask(workflow_id, subtask, 1, DEFAULT_AGENT, (Message("user", "hi"),), 30)


async def _entries_of(redis: Redis, queue: str, job: str) -> int:
    """How many entries of the queue's stream carry the job ``job``."""
    found = await redis.xrange(QueueKeys(queue).jobs, "-", "+")
    marker = f'"job":{json.dumps(job)}'.encode()
    return sum(marker in fields.get(b"j", b"") for _, fields in found)


async def _until(done: Any, within_s: float = 5.0) -> None:
    deadline = time.monotonic() + within_s
    while not await done():
        assert time.monotonic() < deadline, "waited too long"
        await asyncio.sleep(0.02)


@pytest.fixture
async def runner(queue: str) -> AsyncIterator[QueuedTaskRunner]:
    """An orchestrator's runner of ``queue``, with no worker: what it sends stays in the
    stream, where a test can count it."""
    made = QueuedTaskRunner(queued_settings(queue).runner)
    yield made
    await made.aclose()


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    client = Redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


@pytest.mark.parametrize(
    "failure",
    [RedisConnectionError("Redis went away"), NoPermissionError("NOPERM no PUBLISH here")],
)
async def test_a_failed_withdrawal_neither_sends_a_job_twice_nor_fails_it(
    queue: str,
    runner: QueuedTaskRunner,
    redis: Redis,
    failure: Exception,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a, b = _task("a"), _task("b")
    first = asyncio.create_task(runner.run(a))
    await _until(lambda: _has(redis, queue, a.task_id))
    withdraw = runner._withdraw
    failures = [failure]

    async def failing(unwanted: list[tuple[str, str | None]]) -> None:
        if failures:
            raise failures.pop()
        await withdraw(unwanted)

    monkeypatch.setattr(runner, "_withdraw", failing)
    first.cancel()  # in the same pass of the writer: a's withdrawal, b sent
    second = asyncio.create_task(runner.run(b))
    await _until(lambda: _has(redis, queue, b.task_id))
    await asyncio.sleep(0.5)  # a retry (after a lost connection) would come by now
    assert await _entries_of(redis, queue, b.task_id) == 1
    assert not second.done()  # sent, and waiting for its answer: not failed
    if isinstance(failure, RedisConnectionError):  # tried again: a's entry is gone
        await _until(lambda: _gone(redis, queue, a.task_id))
    second.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await second


async def test_a_job_withdrawn_while_it_is_being_sent_has_its_entry_deleted(
    queue: str, runner: QueuedTaskRunner, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    add, sending, go_on, added = runner._add, asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def held(payloads: list[bytes]) -> list[bytes]:
        sending.set()
        await go_on.wait()
        ids = await add(payloads)
        added.set()
        return ids

    monkeypatch.setattr(runner, "_add", held)
    task = _task("a")
    running = asyncio.create_task(runner.run(task))
    await asyncio.wait_for(sending.wait(), 5)
    running.cancel()  # its entry is not known yet
    with contextlib.suppress(asyncio.CancelledError):
        await running
    go_on.set()
    await asyncio.wait_for(added.wait(), 5)  # it is in the stream now
    await _until(lambda: _gone(redis, queue, task.task_id))


async def test_a_resumer_withdraws_jobs_written_by_this_release_and_earlier_ones(
    queue: str, runner: QueuedTaskRunner, redis: Redis
) -> None:
    # earlier releases wrote jobs with json.dumps, which escapes what is not ASCII
    workflow_id = "caf\u00e9-run \u2603"
    task = _task("a", workflow_id)
    ours = encode_job(task, f"{queue}:answers:x", time.time() + 60, DEFAULT_AGENT.model_dump_json())
    theirs = json.dumps(json.loads(ours), separators=(",", ":")).encode()
    assert ours != theirs
    for payload in (ours, theirs, encode_job(_task("b", "another"), "r", 0.0, b"{}")):
        await redis.xadd(QueueKeys(queue).jobs, {"j": payload})
    assert await runner.withdraw_workflow(workflow_id) == 2
    assert await redis.xlen(QueueKeys(queue).jobs) == 1


async def _has(redis: Redis, queue: str, job: str) -> bool:
    return await _entries_of(redis, queue, job) > 0


async def _gone(redis: Redis, queue: str, job: str) -> bool:
    return await _entries_of(redis, queue, job) == 0
