"""The queued runner with real ``automatos worker`` processes and a real Redis."""

from __future__ import annotations

import asyncio
import json
import random
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from automatos import Engine, SubtaskSpec, WorkflowRequest
from automatos.domain.agent import DEFAULT_AGENT
from automatos.domain.result import SubtaskStatus, WorkflowStatus
from automatos.errors import QueueError
from automatos.graph import build_plan
from automatos.llm.base import Message
from automatos.runners.base import AgentTask
from automatos.runners.queued import QueuedTaskRunner
from automatos.runners.wire import decode_answer
from automatos.settings import RunnerSettings
from automatos.testing import ScriptedLLM
from tests.runners.conftest import REDIS_URL, OwnRedis, Workers, queued_settings
from tests.runners.worker_models import answer


async def _until(done: Callable[[], bool], within_s: float = 60.0) -> None:
    """Wait until ``done()`` (the workers' logs say so), at most ``within_s``."""
    deadline = time.monotonic() + within_s
    while not done():
        assert time.monotonic() < deadline, "waited too long"
        await asyncio.sleep(0.02)


def _engine(queue: str, n: int = 50, redis_url: str = REDIS_URL, max_attempts: int = 3) -> Engine:
    # The orchestrator's own model only writes the final answer: steps run on the workers.
    settings = queued_settings(queue, n, redis_url, max_attempts=max_attempts)
    return Engine(settings, llm=ScriptedLLM(default=answer))


def _chains(width: int, depth: int, prefix: str = "s") -> tuple[SubtaskSpec, ...]:
    """``width`` chains of ``depth`` subtasks, and one that depends on every chain's end."""
    specs = [
        SubtaskSpec(
            id=f"{prefix}{c}_{d}",
            description=f"step {d} of chain {c}",
            depends_on=(f"{prefix}{c}_{d - 1}",) if d else (),
        )
        for c in range(width)
        for d in range(depth)
    ]
    ends = tuple(f"{prefix}{c}_{depth - 1}" for c in range(width))
    specs.append(SubtaskSpec(id=f"{prefix}_join", description="join", depends_on=ends))
    return tuple(specs)


async def test_a_workflow_runs_on_workers_as_it_runs_in_process(
    workers: Workers, queue: str, caplog: pytest.LogCaptureFixture
) -> None:
    workers.start()
    workers.start()
    request = WorkflowRequest(text="chains", subtasks=_chains(4, 3))
    with caplog.at_level("WARNING", logger="automatos.runners.queued"):
        async with _engine(queue) as engine:
            queued = await engine.run(request)
            runner = engine.runner
            assert isinstance(runner, QueuedTaskRunner)
            assert await runner.workers() == 2
    assert "no automatos worker" not in caplog.text  # idle workers count as reading
    local = await Engine(
        queued_settings(queue).model_copy(
            update={"runner": queued_settings(queue).runner.model_copy(update={"kind": "local"})}
        ),
        llm=ScriptedLLM(default=answer),
    ).run(request)
    assert queued.status is WorkflowStatus.SUCCEEDED
    assert {sid: r.output for sid, r in queued.results.items()} == {
        sid: r.output for sid, r in local.results.items()
    }
    # every step ran on a worker, once
    assert sorted(workers.called()) == sorted(s.id for s in request.subtasks or ())
    assert queued.totals.tokens_in > 0


async def test_a_failing_job_is_retried_alone_by_the_dispatcher(
    workers: Workers, queue: str
) -> None:
    # the worker's model wrapper does not retry: each failure fails an attempt
    workers.start(WORKER_TEST_FAIL="s1_1:2", AUTOMATOS_LLM__MAX_RETRIES="0")
    request = WorkflowRequest(text="chains", subtasks=_chains(3, 2))
    async with _engine(queue, max_attempts=3) as engine:
        result = await engine.run(request)
    assert result.status is WorkflowStatus.SUCCEEDED
    attempts = {sid: r.attempts for sid, r in result.results.items()}
    assert attempts.pop("s1_1") == 3
    assert set(attempts.values()) == {1}
    assert workers.called().count("s1_1") == 3


async def test_the_deadline_crosses_to_the_worker(workers: Workers, queue: str) -> None:
    workers.start(WORKER_TEST_LATENCY="5")
    request = WorkflowRequest(
        text="two slow steps",
        subtasks=tuple(SubtaskSpec(id=f"slow{i}", description=f"slow step {i}") for i in range(2)),
    )
    settings = queued_settings(queue)
    execution = settings.execution.model_copy(update={"subtask_timeout_s": 0.5, "max_attempts": 1})
    async with Engine(
        settings.model_copy(update={"execution": execution}), llm=ScriptedLLM(default=answer)
    ) as engine:
        started = time.monotonic()
        result = await engine.run(request)
    assert time.monotonic() - started < 4
    for one in result.results.values():
        assert one.status is SubtaskStatus.FAILED
        assert one.error is not None
        assert one.error.type == "SubtaskTimeoutError"
    # the worker stopped both jobs (at their deadline, or when the orchestrator withdrew
    # them at its own: whichever came first), well before their 5 s
    await asyncio.sleep(1.0)
    workers.processes[0].send_signal(signal.SIGTERM)
    stopping = time.monotonic()
    await asyncio.to_thread(workers.processes[0].wait, 30)
    assert time.monotonic() - stopping < 3
    last = workers.log(0).splitlines()[-1]
    errors = int(last.split(" with an error")[0].rsplit(" ", 1)[1])
    withdrawn = int(last.split(" withdrawn")[0].rsplit(" ", 1)[1])
    assert errors + withdrawn == 2, last
    assert last.endswith("0 handed back"), last


async def test_200_jobs_run_at_once_across_workers(workers: Workers, queue: str) -> None:
    workers.start(concurrency=150, WORKER_TEST_LATENCY="1.5")
    workers.start(concurrency=150, WORKER_TEST_LATENCY="1.5")
    n = 260
    request = WorkflowRequest(
        text="wide", subtasks=tuple(SubtaskSpec(id=f"w{i}", description=f"w {i}") for i in range(n))
    )
    async with _engine(queue, n) as engine:
        result = await engine.run(request)
    assert result.status is WorkflowStatus.SUCCEEDED
    assert workers.most_at_once() >= 200


async def test_killed_workers_lose_nothing(workers: Workers, queue: str, tmp_path: Path) -> None:
    """20 workflows x 20 subtasks, 2 workers; one is SIGKILLed 5 times and restarted."""
    latency = "0.15"
    workers.start(concurrency=40, WORKER_TEST_LATENCY=latency)
    workers.start(concurrency=40, WORKER_TEST_LATENCY=latency)
    rng = random.Random(7)
    requests = [
        WorkflowRequest(
            text=f"workflow {w}",
            subtasks=(
                *_chains(4, 5, prefix=f"w{w}c")[:19],
                SubtaskSpec(id=f"w{w}_last", description="last", depends_on=(f"w{w}c0_4",)),
            ),
        )
        for w in range(20)
    ]
    assert all(len(r.subtasks or ()) == 20 for r in requests)

    async def chaos() -> int:
        kills = 0
        while kills < 5:
            await asyncio.sleep(rng.uniform(0.3, 1.2))
            victim = next(p for p in reversed(workers.processes) if p.poll() is None)
            victim.kill()
            await asyncio.to_thread(victim.wait)
            kills += 1
            await asyncio.to_thread(workers.start, 40, 30.0, WORKER_TEST_LATENCY=latency)
        return kills

    async with _engine(queue, 20, max_attempts=1) as engine:
        killer = asyncio.create_task(chaos())
        results = await asyncio.gather(*(engine.run(r) for r in requests))
        kills = await killer
    assert kills == 5
    for request, result in zip(requests, results, strict=True):
        assert result.status is WorkflowStatus.SUCCEEDED, result.warnings
        ids = list(result.results)
        assert sorted(ids) == sorted(s.id for s in request.subtasks or ())  # none lost, none twice
        assert {r.attempts for r in result.results.values()} == {1}  # redelivered, never retried
    runner = engine.runner
    assert isinstance(runner, QueuedTaskRunner)
    called = workers.called()
    assert len(set(called)) == 400
    # jobs of killed workers ran again: more calls than subtasks, each extra one dropped
    assert len(called) >= 400


async def test_sigterm_hands_running_jobs_back(workers: Workers, queue: str) -> None:
    first = workers.start(grace=0.2, WORKER_TEST_LATENCY="3")
    request = WorkflowRequest(
        text="handed back",
        subtasks=tuple(SubtaskSpec(id=f"h{i}", description=f"step {i}") for i in range(5)),
    )
    async with _engine(queue) as engine:
        run = asyncio.create_task(engine.run(request))
        await _until(lambda: len(workers.called()) >= 5)
        first.send_signal(signal.SIGTERM)
        await asyncio.to_thread(first.wait, 30)
        assert "5 handed back" in workers.log(0), workers.log(0)
        workers.start(WORKER_TEST_LATENCY="0.1")
        result = await asyncio.wait_for(run, 30)
    assert result.status is WorkflowStatus.SUCCEEDED
    assert {r.attempts for r in result.results.values()} == {1}


async def test_a_cancelled_workflow_withdraws_its_jobs(workers: Workers, queue: str) -> None:
    workers.start(WORKER_TEST_LATENCY="30")
    request = WorkflowRequest(
        text="cancelled",
        subtasks=tuple(SubtaskSpec(id=f"c{i}", description=f"step {i}") for i in range(4)),
    )
    async with _engine(queue) as engine:
        run = asyncio.create_task(engine.run(request))
        await _until(lambda: len(workers.called()) >= 4)
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run
    workers.processes[0].send_signal(signal.SIGTERM)
    await asyncio.to_thread(workers.processes[0].wait, 30)
    assert "4 withdrawn" in workers.log(0), workers.log(0)


async def test_redis_restarting_mid_run_costs_reruns_not_the_workflow(
    own_redis: OwnRedis, tmp_path: Path
) -> None:
    queue = "restart"
    workers = Workers(queue, tmp_path, redis_url=own_redis.url)
    try:
        workers.start(WORKER_TEST_LATENCY="0.3")
        request = WorkflowRequest(text="restart", subtasks=_chains(5, 4))
        async with _engine(queue, redis_url=own_redis.url, max_attempts=1) as engine:
            run = asyncio.create_task(engine.run(request))
            await _until(lambda: len(workers.called()) >= 8)
            own_redis.stop()  # everything in it is lost: it keeps nothing on disk
            await asyncio.sleep(1.0)
            own_redis.start()
            result = await asyncio.wait_for(run, 60)
            runner = engine.runner
            assert isinstance(runner, QueuedTaskRunner)
            resent = runner.resent
    finally:
        workers.stop_all()
    assert result.status is WorkflowStatus.SUCCEEDED, result.warnings
    assert len(result.results) == 21
    assert {r.attempts for r in result.results.values()} == {1}
    assert resent >= 1  # the jobs in flight were lost with Redis and sent again


async def test_an_unreachable_redis_fails_the_subtasks_clearly() -> None:
    request = WorkflowRequest(text="nowhere", subtasks=(SubtaskSpec(id="x", description="x"),))
    settings = queued_settings("nowhere", redis_url="redis://127.0.0.1:1/0", redis_timeout_s=0.5)
    async with Engine(settings, llm=ScriptedLLM(default=answer)) as engine:
        result = await engine.run(request)
    (only,) = result.results.values()
    assert only.status is SubtaskStatus.FAILED
    assert only.error is not None
    assert only.error.type == "QueueError"
    assert "runner.redis_url" in only.error.message
    assert "127.0.0.1:1" in only.error.message


async def test_a_closed_runner_refuses_and_fails_what_waits(queue: str) -> None:
    runner = QueuedTaskRunner(queued_settings(queue).runner)
    await runner.aclose()
    with pytest.raises(QueueError, match="closed"):
        await runner.run(_task())


async def test_hostile_entries_cost_no_worker_slot_and_no_reader(
    workers: Workers, queue: str
) -> None:
    """Garbage in the job stream or in an answer list: the worker drops it (answering when
    the job names its list), the orchestrator's reader goes on, and real work still runs."""
    import redis.asyncio as aioredis

    workers.start(concurrency=2)
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        deep = b"[" * 100_000
        for _ in range(2):  # as many as the worker has slots
            await client.xadd(f"{queue}:jobs", {"j": deep})
        await client.xadd(f"{queue}:jobs", {"j": b"not json"})
        await client.xadd(f"{queue}:jobs", {"other": b"field"})
        reply = f"{queue}:answers:probe"
        newer = json.dumps({"v": 2, "job": "wf:x:1", "reply": reply})
        await client.xadd(f"{queue}:jobs", {"j": newer})
        got = await client.blpop([reply], timeout=10)
        assert got is not None, "a job of another version was not answered"
        _, error = decode_answer(got[1])
        assert isinstance(error, QueueError)
        assert "version 2" in str(error) and not error.retryable
        hostile = json.dumps({"v": 2, "job": "wf:x:2", "reply": f"{queue}:jobs"})
        await client.xadd(f"{queue}:jobs", {"j": hostile})  # must not touch the stream's TTL

        request = WorkflowRequest(text="after garbage", subtasks=_chains(2, 2))
        async with _engine(queue) as engine:
            runner = engine.runner
            assert isinstance(runner, QueuedTaskRunner)
            first = await engine.run(request)  # the reader runs now: poison its list
            await client.rpush(runner.keys.reply(runner.id), deep, b"{}", b"garbage")
            second = await engine.run(WorkflowRequest(text="again", subtasks=_chains(2, 2)))
        assert first.status is WorkflowStatus.SUCCEEDED
        assert second.status is WorkflowStatus.SUCCEEDED
        assert await client.ttl(f"{queue}:jobs") == -1
        pending = await client.xpending(f"{queue}:jobs", "workers")
        assert pending["pending"] == 0  # every entry was acknowledged
    finally:
        await client.aclose()


async def test_a_start_cancelled_while_redis_is_silent_does_not_hang_the_runner() -> None:
    connections: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)
        await reader.read()  # accepts, never answers

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    settings = queued_settings(
        "silent", redis_url=f"redis://127.0.0.1:{port}/0", redis_timeout_s=1.0
    )
    runner = QueuedTaskRunner(settings.runner)
    task = _task()
    try:
        first = asyncio.create_task(runner.run(task))
        await asyncio.sleep(0.3)
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        started = time.monotonic()
        with pytest.raises(QueueError, match="could not be reached"):
            await runner.run(task)
        assert time.monotonic() - started < 5
    finally:
        await runner.aclose()
        for writer in connections:
            writer.close()
        server.close()
        await server.wait_closed()
        await asyncio.sleep(0.05)  # the handlers see their connections closed
    with pytest.raises(QueueError, match="closed") as closed:
        await asyncio.wait_for(runner.run(task), 2)
    assert not closed.value.retryable


def _task() -> AgentTask:
    subtask = build_plan([SubtaskSpec(id="a", description="a")]).subtasks[0]
    return AgentTask("wf", subtask, 1, DEFAULT_AGENT, (Message("user", "hi"),), 5)


def test_a_redis_url_is_checked_when_it_is_set() -> None:
    for url in ["http://host", "redis://host:port", "redis://host/db", "redis://"]:
        with pytest.raises(ValueError, match="Redis URL"):
            RunnerSettings(redis_url=url)
    for url in ["redis://h", "rediss://u:p@h:6380/2", "unix:///run/redis.sock"]:
        assert RunnerSettings(redis_url=url).redis_url == url


async def test_a_second_sigterm_hands_running_jobs_back_at_once(
    workers: Workers, queue: str
) -> None:
    first = workers.start(grace=60, WORKER_TEST_LATENCY="60")
    request = WorkflowRequest(
        text="handed back at once",
        subtasks=tuple(SubtaskSpec(id=f"q{i}", description=f"step {i}") for i in range(3)),
    )
    async with _engine(queue) as engine:
        run = asyncio.create_task(engine.run(request))
        await _until(lambda: len(workers.called()) >= 3)
        first.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.5)
        stopping = time.monotonic()
        first.send_signal(signal.SIGTERM)
        await asyncio.to_thread(first.wait, 30)
        assert time.monotonic() - stopping < 10
        assert "3 handed back" in workers.log(0), workers.log(0)
        workers.start(WORKER_TEST_LATENCY="0.05")
        result = await asyncio.wait_for(run, 30)
    assert result.status is WorkflowStatus.SUCCEEDED


async def test_an_orchestrator_says_when_no_worker_reads_its_queue(
    workers: Workers, queue: str, caplog: pytest.LogCaptureFixture
) -> None:
    request = WorkflowRequest(
        text="nobody home",
        subtasks=tuple(SubtaskSpec(id=f"n{i}", description=f"step {i}") for i in range(2)),
    )
    with caplog.at_level("WARNING", logger="automatos.runners.queued"):
        async with _engine(queue) as engine:
            run = asyncio.create_task(engine.run(request))
            await asyncio.sleep(1.0)
            assert f"no automatos worker reads the queue '{queue}'" in caplog.text
            assert not run.done()  # its jobs wait for a worker
            workers.start()  # one comes: the run goes on
            result = await asyncio.wait_for(run, 30)
            runner = engine.runner
            assert isinstance(runner, QueuedTaskRunner)
            assert await runner.workers() == 1
    assert result.status is WorkflowStatus.SUCCEEDED


async def test_a_resumer_withdraws_what_a_dead_orchestrator_left_in_the_queue(
    workers: Workers, queue: str
) -> None:
    import redis.asyncio as aioredis

    worker = workers.start(grace=1, WORKER_TEST_LATENCY="60")
    settings = queued_settings(queue).runner
    dead, other, resumer = (QueuedTaskRunner(settings) for _ in range(3))
    plan = build_plan([SubtaskSpec(id=f"s{i}", description=f"step {i}") for i in range(3)])

    def task(workflow_id: str, i: int) -> AgentTask:
        return AgentTask(
            workflow_id,
            plan.subtasks[i],
            1,
            DEFAULT_AGENT,
            (Message("user", f"Your step (s{i}):\nx"),),
            60,
        )

    left = [asyncio.create_task(dead.run(task("dead-run", i))) for i in range(3)]
    kept = asyncio.create_task(other.run(task("other-run", 0)))
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        await _until(lambda: len(workers.called()) >= 4)
        assert await resumer.withdraw_workflow("dead-run") == 3
        entries = await client.xrange(f"{queue}:jobs")
        assert [e for e in entries if b"dead-run" in e[1][b"j"]] == []
        assert len(entries) == 1  # the other workflow's job is untouched
        worker.send_signal(signal.SIGTERM)
        await asyncio.to_thread(worker.wait, 30)
        last = workers.log(0).splitlines()[-1]
        assert "3 withdrawn" in last and "1 handed back" in last, last
    finally:
        for waiting in [*left, kept]:
            waiting.cancel()
        await asyncio.gather(*left, kept, return_exceptions=True)
        for runner in (dead, other, resumer):
            await runner.aclose()
        await client.aclose()
