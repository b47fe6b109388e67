"""Queued execution (issue 15): workloads (a) and (c) of ``benchmarks/scheduling.py`` through
Redis, with one and then two ``automatos worker`` processes.

  a. 1,000 independent subtasks x 50 ms  -> makespan: wall time of ``Engine.run``, seconds
  c. 10,000 independent subtasks x 0 ms  -> us per job: wall time of ``Engine.run`` / 10,000

The orchestrator is the engine's real pipeline (recipes, so no decomposition call; scoring
off; no store), as in ``scheduling.py``, with ``runner.kind = "queued"`` on a queue named
afresh for each configuration. The workers are real ``automatos worker`` processes started
here, whose model (``benchmarks/queued_models.py``) sleeps the step latency and records
nothing; the final synthesis call runs in the orchestrator, with no latency.

Setup, the same for every configuration:
  - ``runner.max_in_flight`` = 1,000 (the default): all of (a) at once; (c) flows 1,000 at
    a time.
  - ``--concurrency`` 1,000 per worker: one worker alone can hold all of (a).
  - ``execution.max_concurrency`` = 1,000 through the queue, what it keeps in flight: a
    subtask starts when the queue can take it, rather than all 10,000 of (c) starting at
    once and 9,000 waiting for a slot in the orchestrator's memory (in-process: the number
    of subtasks, as in ``scheduling.py``).
  - the workers run at niceness 10 (``--worker-nice``), the orchestrator at 0.
For each workload the one-worker and the two-worker queues are started side by side (idle
workers block on Redis and cost nothing), each warmed up (its workers running, every one of
them having taken a job of a first small run of 200 subtasks) and given one whole run
untimed, then timed in turns, one run of each in a round, the order alternating from round
to round: on a shared machine both see the same moments. Each figure is the median of
``--repeats`` rounds (9); the fastest run of each side, and in how many rounds two workers
were faster than one, are in ``details``. Beside them, over all the timed runs and divided
by the jobs run: CPU time of the orchestrator (this process) and how long it waited, ready,
for a CPU (its run-queue delay, ``/proc/self/schedstat``), of the workers (``/proc``, summed,
and each one's share) and of Redis (``INFO cpu``: the Redis is shared, so others' commands
count too). The in-process figures (``runner.kind = "local"``, the same engine otherwise)
are measured in the same run for comparison.

Why the median: the fastest of a few runs is the run that met the quietest moment of a
shared machine (a full collection of the orchestrator's garbage collector falling outside
it, another tenant idle), and which side met it is chance: with best-of-5, either side won
(c) from one run to the next by a few percent. The median of interleaved rounds compares the
two sides at the same moments.

Why the workers are niced: here the orchestrator, two workers and Redis share two cores,
where a deployment gives the workers machines of their own. At the same priority the second
worker takes CPU from the orchestrator, the one process every job goes through: in (c) the
orchestrator waited, ready, 20 us a job for a CPU with two workers against 7 with one
(measured here, ``--worker-nice 0``), which measures two cores shared by four processes, not
the queue. Niced, the workers run on what the orchestrator leaves, and its wait is the same
on both sides (5 to 7 us a job).

Targets: (a) <= 0.5 s; (c) <= 300 us per job; two workers never slower than one.

``--arq`` measures the same workloads through ARQ 0.28 in the same run: ARQ worker processes
(``arq queued_models.ArqWorker``: max_jobs 1,000, the queue polled every 20 ms instead of
0.5 s, job logs off, on uvloop) run an ARQ job that does what an ``automatos worker`` does
with a job (decode the wire JSON, :func:`~automatos.runners.executor.execute`, encode the
answer), and the engine runs with a TaskRunner adapter in two variants: ``arq``
(``enqueue_job``, then ``job.result(poll_delay=0.02)`` per job: ARQ's API as documented) and
``arq_batched`` (what ``enqueue_job`` writes, for every job waiting to go in one pipeline,
and one loop reading the result keys of every waiting job in one MGET every 20 ms: ARQ has
neither a batch enqueue nor a result notification). ARQ's runs take long (15 to 30 s for one
of (c)): one each by default.

Measured with ``--arq`` on the 2-core machine shared with others' test runs (load average
3.0 to 6.0 during the run; the in-process (c) took 28 us a job then, 21 us at a quieter
moment), best of 5 (ARQ: of 1), before the runner's profiling fixes (encoding without deep
copies, a FIFO slot handoff, the worker's model call under the job's own deadline); after
them, the queued rows measured 0.14 to 0.15 s for (a) and 97 to 127 us for (c) at load 2 to
3 (orchestrator 76 to 90 us of CPU a job, a worker 48 to 74):

                            (a) makespan, 1 / 2 workers    (c) us per job, 1 / 2 workers
    in-process (local)      0.068 s                        28
    queued (Redis Streams)  0.346 / 0.393 s                172 / 210
    ARQ, enqueue + result   1.59 / 2.32 s                  2,472 / 3,061
    ARQ, batched            1.39 / 3.04 s                  2,326 / 2,694

Why ARQ is this far off, from the CPU columns: an ARQ worker spends 0.65 to 1.2 ms of CPU a
job (a stream worker 0.08 to 0.11 ms): it claims each job with four round trips in turn
(WATCH, EXISTS, ZSCORE, MULTI/EXEC on the job's in-progress key), loads it with a fifth and
stores its result in a sixth transaction, jobs one after another in its polling loop; two
workers read the same ids and race for each (their CPU a job rises by half). Results are
read by polling, which costs the orchestrator 0.75 to 0.9 ms a job with ``job.result``
(0.2 to 0.4 ms batched). The stream worker takes up to 100 jobs in one XREADGROUP and
answers and acknowledges a batch of jobs in one round trip; the orchestrator wakes on one
BLPOP per batch of answers.

The last line of output is one JSON object: the four headline figures, then ``details``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from automatos import Engine, Settings, SubtaskSpec, SubtaskStatus, WorkflowRequest, aio
from automatos.errors import QueueError
from automatos.llm.base import Completion
from automatos.runners.base import AgentTask, TaskRunner
from automatos.runners.keys import GROUP, QueueKeys
from automatos.runners.wire import decode_answer, encode_job
from automatos.settings import (
    ExecutionSettings,
    PlanLimits,
    QualitySettings,
    RunnerSettings,
    StoreSettings,
)
from queued_models import LATENCY_VARIABLE, READY, model

HERE = Path(__file__).resolve().parent
REDIS_URL = os.environ.get("AUTOMATOS_RUNNER__REDIS_URL", "redis://127.0.0.1:6379/0")
IN_FLIGHT = 1000
WORKER_CONCURRENCY = 1000
WARM_UP = 200
WORKER_NICE = 10
"""The workers' niceness (``--worker-nice``): below the orchestrator's, as on machines of
their own (see the module's text)."""
ARQ_POLL_S = 0.02
WORKLOADS = {"a": (1000, 0.05), "c": (10_000, 0.0)}
"""Subtasks and step latency (seconds) of each workload."""
_TICK = os.sysconf("SC_CLK_TCK")


# -- the engine ---------------------------------------------------------------------------


def _settings(n: int, kind: str, queue: str) -> Settings:
    return Settings(
        plan=PlanLimits(max_subtasks=n, max_fanout=n, max_depth=n),
        execution=ExecutionSettings(
            max_concurrency=n if kind == "local" else min(n, IN_FLIGHT),
            subtask_timeout_s=60,
            max_attempts=1,
        ),
        store=StoreSettings(enabled=False),
        quality=QualitySettings(enabled=False),
        runner=RunnerSettings(
            kind=kind,
            redis_url=REDIS_URL,
            queue=queue,
            max_in_flight=IN_FLIGHT,
            worker_concurrency=WORKER_CONCURRENCY,
        ),
    )


def _request(n: int) -> WorkflowRequest:
    specs = tuple(SubtaskSpec(id=f"t{i}", description=f"task {i}") for i in range(n))
    return WorkflowRequest(text="benchmark", subtasks=specs)


async def _timed(engine: Engine, n: int) -> float:
    request = _request(n)
    gc.collect()
    started = time.perf_counter()
    result = await engine.run(request)
    elapsed = time.perf_counter() - started
    assert result.totals.by_status[SubtaskStatus.SUCCEEDED] == n, result.totals
    return elapsed


# -- worker processes ---------------------------------------------------------------------


@dataclass
class _Workers:
    """Worker processes of one configuration, their logs in ``logs``."""

    procs: list[subprocess.Popen[bytes]]
    logs: list[Path]

    @classmethod
    def start(cls, argv: Sequence[str], count: int, env: dict[str, str], logs: Path) -> _Workers:
        """``count`` processes of ``argv``, each at the niceness ``WORKER_NICE``."""
        search = os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")]))
        environ = {**os.environ, **env, "PYTHONPATH": search}
        environ.pop("AUTOMATOS_RUNNER__QUEUE", None)
        procs, paths = [], []
        for i in range(count):
            path = logs / f"worker-{uuid.uuid4().hex[:6]}-{i}.log"
            with path.open("wb") as out:
                procs.append(
                    subprocess.Popen(
                        argv, stdout=out, stderr=subprocess.STDOUT, env=environ, cwd=HERE
                    )
                )
            paths.append(path)
            if WORKER_NICE:
                os.setpriority(os.PRIO_PROCESS, procs[-1].pid, WORKER_NICE)
        return cls(procs, paths)

    def check(self) -> None:
        for proc, log in zip(self.procs, self.logs, strict=True):
            if proc.poll() is not None:
                raise RuntimeError(f"a worker exited ({proc.returncode}):\n{log.read_text()}")

    def cpu_s(self) -> list[float]:
        """Each worker's CPU time so far (user + system)."""
        times = []
        for proc in self.procs:
            stat = Path(f"/proc/{proc.pid}/stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            times.append((int(fields[11]) + int(fields[12])) / _TICK)
        return times

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


async def _wait_for(ready: Callable[[], Awaitable[bool]], workers: _Workers) -> None:
    """Wait until ``ready``; the workers are stopped if they never are."""
    deadline = time.monotonic() + 60
    try:
        while not await ready():
            workers.check()
            if time.monotonic() > deadline:
                raise RuntimeError("the workers did not get ready within 60 s")
            await asyncio.sleep(0.05)
    except BaseException:
        workers.stop()
        raise


async def _start_automatos(queue: str, count: int, latency: float, logs: Path) -> _Workers:
    script = Path(sys.executable).parent / "automatos"
    argv = [sys.executable, str(script), "worker", "--queue", queue, "--redis-url", REDIS_URL]
    argv += ["--concurrency", str(WORKER_CONCURRENCY), "--grace", "1"]
    argv += ["--provider", "queued_models:scripted"]
    workers = _Workers.start(argv, count, {LATENCY_VARIABLE: str(latency)}, logs)

    async def started() -> bool:  # printed just before it connects and reads
        return all(f"queue {queue!r}" in log.read_text() for log in workers.logs)

    await _wait_for(started, workers)
    return workers


async def _start_arq(queue: str, count: int, latency: float, logs: Path) -> _Workers:
    argv = [sys.executable, "-m", "arq", "queued_models.ArqWorker"]
    env = {
        LATENCY_VARIABLE: str(latency),
        "BENCH_ARQ_QUEUE": queue,
        "BENCH_ARQ_MAX_JOBS": str(WORKER_CONCURRENCY),
        "BENCH_ARQ_POLL_S": str(ARQ_POLL_S),
        "BENCH_ARQ_REDIS_URL": REDIS_URL,
    }
    workers = _Workers.start(argv, count, env, logs)

    async def started() -> bool:  # logged by its startup hook, just before its first poll
        return all(READY in log.read_text() for log in workers.logs)

    await _wait_for(started, workers)
    return workers


async def _redis_cpu_s(redis: Redis) -> float:
    info = await redis.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


async def _delete_prefix(redis: Redis, prefix: str) -> None:
    keys = [key async for key in redis.scan_iter(match=f"{prefix}*", count=1000)]
    for i in range(0, len(keys), 1000):
        await redis.delete(*keys[i : i + 1000])


# -- ARQ as a TaskRunner ------------------------------------------------------------------


class ArqTaskRunner:
    """Sends each task as an ARQ job (the queued runner's wire JSON as its one argument) and
    waits for its result; ``batched`` writes and reads for all waiting jobs at once."""

    name = "arq"

    def __init__(self, queue: str, *, batched: bool) -> None:
        self.queue = queue
        self.batched = batched
        self.job_ids: list[str] = []
        self._pool: Any = None
        self._outbox: list[tuple[str, bytes]] = []
        self._waiting: dict[str, asyncio.Future[Any]] = {}
        self._loops: list[asyncio.Task[None]] = []
        self._wake = asyncio.Event()
        self._starting = asyncio.Lock()

    async def _start(self) -> Any:
        from arq.connections import RedisSettings, create_pool

        async with self._starting:  # the first tasks of a run all arrive at once
            if self._pool is None:
                pool = await create_pool(
                    RedisSettings.from_dsn(REDIS_URL), default_queue_name=self.queue
                )
                if self.batched:
                    self._loops = [
                        asyncio.create_task(self._send()),
                        asyncio.create_task(self._poll()),
                    ]
                self._pool = pool
        return self._pool

    async def run(self, task: AgentTask) -> Completion:
        pool = self._pool or await self._start()
        payload = encode_job(task, "-", time.time() + task.timeout_s, task.agent.model_dump_json())
        if self.batched:
            answer = await self._batched(payload)
        else:
            job = await pool.enqueue_job("run_task", payload)
            self.job_ids.append(job.job_id)
            answer = await job.result(poll_delay=ARQ_POLL_S)
        _, outcome = decode_answer(answer)
        if isinstance(outcome, Completion):
            return outcome
        raise outcome

    async def _batched(self, payload: bytes) -> Any:
        from arq.jobs import serialize_job

        job_id = uuid.uuid4().hex
        self.job_ids.append(job_id)
        future = asyncio.get_running_loop().create_future()
        self._waiting[job_id] = future
        self._outbox.append((job_id, serialize_job("run_task", (payload,), {}, None, 0)))
        self._wake.set()
        return await future

    async def _send(self) -> None:
        """What ``enqueue_job`` writes (job key, then its id in the queue), for every job
        waiting to go, in one round trip."""
        from arq.constants import expires_extra_ms, job_key_prefix

        while True:
            await self._wake.wait()
            self._wake.clear()
            jobs, self._outbox = self._outbox, []
            if not jobs:
                continue
            now_ms = int(time.time() * 1000)
            try:
                async with self._pool.pipeline(transaction=False) as pipe:
                    for job_id, data in jobs:
                        pipe.psetex(job_key_prefix + job_id, expires_extra_ms, data)
                    pipe.zadd(self.queue, {job_id: now_ms for job_id, _ in jobs})
                    await pipe.execute()
            except Exception as exc:  # a benchmark: fail the jobs, loudly
                for job_id, _ in jobs:
                    future = self._waiting.pop(job_id, None)
                    if future is not None and not future.done():
                        future.set_exception(QueueError(f"ARQ jobs not sent: {exc}"))

    async def _poll(self) -> None:
        """Every ARQ_POLL_S, every waiting job's result key in one MGET."""
        from arq.constants import result_key_prefix
        from arq.jobs import deserialize_result

        while True:
            await asyncio.sleep(ARQ_POLL_S)
            ids = list(self._waiting)
            for i in range(0, len(ids), 2000):
                chunk = ids[i : i + 2000]
                found = await self._pool.mget([result_key_prefix + j for j in chunk])
                for job_id, data in zip(chunk, found, strict=True):
                    if data is not None:
                        future = self._waiting.pop(job_id)
                        if future.done():
                            continue
                        info = deserialize_result(data)
                        if info.success:
                            future.set_result(info.result)
                        else:
                            future.set_exception(QueueError(f"ARQ job failed: {info.result}"))

    async def aclose(self) -> None:
        """Stop the loops, delete this runner's result keys and close the pool."""
        from arq.constants import job_key_prefix, result_key_prefix

        for loop in self._loops:
            loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loop
        if self._pool is not None:
            for i in range(0, len(self.job_ids), 1000):
                chunk = self.job_ids[i : i + 1000]
                keys = [p + j for j in chunk for p in (result_key_prefix, job_key_prefix)]
                await self._pool.delete(*keys)
            await self._pool.delete(self.queue, f"{self.queue}:health-check")
            await self._pool.aclose()
            self._pool = None


# -- one configuration --------------------------------------------------------------------


@dataclass
class _Config:
    """One runner with its workers on its own queue, and what its timed runs took."""

    kind: str
    count: int
    queue: str
    engine: Engine
    workers: _Workers | None
    runs_s: list[float] = field(default_factory=list)
    orchestrator_s: float = 0.0
    waited_s: float = 0.0
    """Time the orchestrator was ready to run but waited for a CPU (its run-queue delay)."""
    redis_s: float = 0.0
    workers_s: list[float] = field(default_factory=list)

    @property
    def best_s(self) -> float:
        return min(self.runs_s)

    @property
    def median_s(self) -> float:
        return statistics.median(self.runs_s)

    def cpu_us_per_job(self, n: int) -> dict[str, float]:
        jobs = n * len(self.runs_s) / 1e6
        cpu = {
            "orchestrator": round(self.orchestrator_s / jobs, 1),
            "orchestrator_waited_for_cpu": round(self.waited_s / jobs, 1),
        }
        if self.workers is not None:
            cpu["workers"] = round(sum(self.workers_s) / jobs, 1)
        cpu["redis"] = round(self.redis_s / jobs, 1)
        return cpu

    def worker_shares(self) -> list[float]:
        total = sum(self.workers_s) or 1.0
        return [round(spent / total, 2) for spent in self.workers_s]


async def _open(kind: str, count: int, workload: str, redis: Redis, logs: Path) -> _Config:
    """``kind`` (``local``, ``queued``, ``arq``, ``arq_batched``) with ``count`` fresh
    workers on a fresh queue."""
    n, latency = WORKLOADS[workload]
    queue = f"bench-queued-{uuid.uuid4().hex[:10]}"
    runner: TaskRunner | None = None
    workers: _Workers | None = None
    if kind == "queued":
        workers = await _start_automatos(queue, count, latency, logs)
    elif kind.startswith("arq"):
        workers = await _start_arq(queue, count, latency, logs)
        runner = ArqTaskRunner(queue, batched=kind == "arq_batched")
    settings = _settings(n, "queued" if kind == "queued" else "local", queue)
    try:
        engine = Engine(settings, llm=model(latency if kind == "local" else 0.0), runner=runner)
    except BaseException:
        if workers is not None:
            workers.stop()
        raise
    config = _Config(kind, count, queue, engine, workers)
    config.workers_s = [0.0] * count
    return config


async def _close(config: _Config, redis: Redis) -> None:
    try:
        await config.engine.aclose()
    finally:
        if config.workers is not None:
            config.workers.stop()
        await _delete_prefix(redis, config.queue)


async def _warm_up(config: _Config, redis: Redis) -> None:
    """Small runs until every worker has taken a job: an ``automatos worker`` joins the
    consumer group with the first job it reads (Redis 7.0 does not register a consumer whose
    read waits)."""
    deadline = time.monotonic() + 60
    while True:
        await _timed(config.engine, WARM_UP)
        if config.kind != "queued" or config.workers is None:
            return
        consumers = await redis.xinfo_consumers(QueueKeys(config.queue).jobs, GROUP)
        if len(consumers) >= config.count:
            return
        config.workers.check()
        if time.monotonic() > deadline:
            raise RuntimeError(f"{len(consumers)} worker(s) of {config.count} took jobs")


def _run_queue_delay_s() -> float:
    """How long this process has waited, ready, for a CPU (``/proc/self/schedstat``)."""
    try:
        return int(Path("/proc/self/schedstat").read_text().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):  # not Linux, or no scheduler statistics
        return 0.0


async def _timed_run(config: _Config, n: int, redis: Redis) -> None:
    cpu, redis_cpu = time.process_time(), await _redis_cpu_s(redis)
    waited = _run_queue_delay_s()
    workers = config.workers.cpu_s() if config.workers else []
    config.runs_s.append(await _timed(config.engine, n))
    config.orchestrator_s += time.process_time() - cpu
    config.waited_s += _run_queue_delay_s() - waited
    config.redis_s += await _redis_cpu_s(redis) - redis_cpu
    if config.workers is not None:
        for i, (before, after) in enumerate(zip(workers, config.workers.cpu_s(), strict=True)):
            config.workers_s[i] += after - before


async def _compare(
    kind: str, workload: str, repeats: int, redis: Redis, logs: Path
) -> list[_Config]:
    """``kind`` with one worker and with two (or in-process), the timed runs alternating
    between them so that both see the same moments of a shared machine.

    The first whole run after the warm-up was the fastest of all, whichever configuration
    had it (0.65-0.70 s for (c), then 0.82-0.90: the collector's full scans come later), and
    it always went to the one-worker side: each side now has one whole run untimed first,
    and the order alternates from round to round."""
    configs: list[_Config] = []
    try:
        for count in (0,) if kind == "local" else (1, 2):
            configs.append(await _open(kind, count, workload, redis, logs))
        for config in configs:
            await _warm_up(config, redis)
        n = WORKLOADS[workload][0]
        for config in configs:  # a whole run each, untimed: see _compare's text
            await _timed(config.engine, n)
        for repeat in range(repeats):
            for config in configs if repeat % 2 == 0 else configs[::-1]:
                await _timed_run(config, n, redis)
    finally:
        closing = await asyncio.gather(*(_close(c, redis) for c in configs), return_exceptions=True)
    for error in closing:
        if isinstance(error, BaseException):
            raise error
    return configs


# -- the run ------------------------------------------------------------------------------


def _row(workload: str, config: _Config) -> str:
    n = WORKLOADS[workload][0]
    median = config.median_s
    shown = f"{median:.3f} s" if workload == "a" else f"{median / n * 1e6:,.0f} us/job"
    cpu = config.cpu_us_per_job(n)
    shares = " ".join(f"{s:.2f}" for s in config.worker_shares()) if config.count > 1 else ""
    return (
        f"{workload:<3}{config.kind:<12}{config.count or '-':>3}  {shown:>13}  "
        f"{cpu['orchestrator']:>6.0f}{cpu.get('workers', 0):>9.0f}{cpu['redis']:>7.0f}  {shares}"
    )


async def main(repeats: int, arq_repeats: int | None) -> dict[str, object]:
    """Run every configuration and return the figures."""
    load = [os.getloadavg()[0]]
    redis: Redis = Redis.from_url(REDIS_URL)
    kinds = ["local", "queued"] + (["arq", "arq_batched"] if arq_repeats else [])
    figures: dict[tuple[str, int, str], _Config] = {}
    print("   runner       w         figure  CPU us/job: orch workers redis  worker shares")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for kind in kinds:
                for workload in WORKLOADS:
                    times = arq_repeats or 1 if kind.startswith("arq") else repeats
                    for config in await _compare(kind, workload, times, redis, Path(tmp)):
                        figures[kind, config.count, workload] = config
                        print(_row(workload, config), flush=True)
                    load.append(os.getloadavg()[0])
    finally:
        await redis.aclose()

    def a_s(kind: str, count: int, best: bool = False) -> float:
        config = figures[kind, count, "a"]
        return round(config.best_s if best else config.median_s, 3)

    def c_us(kind: str, count: int, best: bool = False) -> float:
        config = figures[kind, count, "c"]
        return round((config.best_s if best else config.median_s) / WORKLOADS["c"][0] * 1e6, 1)

    details: dict[str, object] = {}
    for (kind, count, workload), config in figures.items():
        n = WORKLOADS[workload][0]
        details[f"{kind}_{workload}_{count}w" if count else f"{kind}_{workload}"] = {
            "runs_s": [round(s, 3) for s in config.runs_s],
            "cpu_us_per_job": config.cpu_us_per_job(n),
            **({"worker_cpu_shares": config.worker_shares()} if count > 1 else {}),
        }
    details["local_a_makespan_s"] = a_s("local", 0)
    details["local_c_us_per_job"] = c_us("local", 0)
    for count in (1, 2):  # the fastest run of each, beside the medians of the headline
        details[f"best_a_makespan_s_{count}w"] = a_s("queued", count, best=True)
        details[f"best_c_us_per_job_{count}w"] = c_us("queued", count, best=True)
    for workload in WORKLOADS:  # the two sides in each round, at the same moments
        one, two = figures["queued", 1, workload], figures["queued", 2, workload]
        ratios = [b / a for a, b in zip(one.runs_s, two.runs_s, strict=True)]
        details[f"{workload}_rounds_2w_faster"] = f"{sum(r < 1 for r in ratios)}/{len(ratios)}"
        details[f"{workload}_ratio_2w_to_1w_median"] = round(statistics.median(ratios), 3)
    for kind in kinds[2:]:
        for count in (1, 2):
            details[f"{kind}_a_makespan_s_{count}w"] = a_s(kind, count)
            details[f"{kind}_c_us_per_job_{count}w"] = c_us(kind, count)
    details["setup"] = {
        "loop": aio.loop_name(),
        "max_in_flight": IN_FLIGHT,
        "worker_concurrency": WORKER_CONCURRENCY,
        "arq_poll_delay_s": ARQ_POLL_S if arq_repeats else None,
        "warm_up_subtasks": WARM_UP,
        "repeats": repeats,
        "statistic": "median",
        "worker_nice": WORKER_NICE,
        "arq_repeats": arq_repeats,
        "cpus": os.cpu_count(),
        "load_average_1m": [round(one, 2) for one in load],
    }
    return {
        "a_makespan_s_1w": a_s("queued", 1),
        "a_makespan_s_2w": a_s("queued", 2),
        "c_us_per_job_1w": c_us("queued", 1),
        "c_us_per_job_2w": c_us("queued", 2),
        "details": details,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--repeats", type=int, default=9, help="timed rounds; the median is kept (default 9)"
    )
    parser.add_argument(
        "--worker-nice",
        type=int,
        default=WORKER_NICE,
        metavar="N",
        help=f"the workers' niceness (default {WORKER_NICE}; 0: the orchestrator's own)",
    )
    parser.add_argument(
        "--arq",
        nargs="?",
        type=int,
        const=1,
        metavar="REPEATS",
        help="also measure ARQ, REPEATS timed runs each (1 by default: a run of (c) takes "
        "15 s or more)",
    )
    args = parser.parse_args()
    WORKER_NICE = args.worker_nice
    figures = aio.run(main(args.repeats, args.arq))
    print(json.dumps(figures))
