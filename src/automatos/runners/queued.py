"""QueuedTaskRunner: agent tasks run on ``automatos worker`` processes, fed through Redis.

Why Redis Streams with a consumer group (through redis-py) rather than ARQ: ARQ polls its
queue (0.5 s by default) and writes several keys per job; measured on the same workloads
(``benchmarks/queued.py --arq``) it is several times over the targets of issue 15 even tuned.
A stream gives what a job queue needs in one structure: a worker blocks on it (no polling),
takes a batch of jobs in one read, and an entry read but not acknowledged stays pending
under the worker that took it, so a job whose worker died is found and taken over
(``XAUTOCLAIM``) by another.

How a job goes:

1. :meth:`QueuedTaskRunner.run` encodes the task (:mod:`automatos.runners.wire`) with its
   absolute deadline and the list its answer goes to (one per runner), and puts it in an
   outbox; one writer sends everything waiting in the outbox in one round trip (one script
   that adds every job), so a thousand subtasks becoming ready at once cost one exchange.
2. A worker takes it (``XREADGROUP``, at most a hundred at a time: the workers waiting share
   a burst), runs it with :func:`~automatos.runners.executor.execute`
   (the local runner's code), pushes the answer and acknowledges the entry.
3. One reader per runner takes the answers (``BLPOP`` and ``LPOP`` in batches) and resolves
   each waiting attempt by its job id. An answer for a job that no longer waits (a job run
   twice, after a worker was presumed dead) is dropped: an attempt has one answer, and the
   dispatcher commits one result per subtask.

Retries happen in one place, the orchestrator's dispatcher (``execution.max_attempts``, each
attempt a new job with its own id); within an attempt the worker's model wrapper retries a
model call's transient errors (``llm.max_retries``), as it does in-process. The queue itself
never retries a job that answered, even with an error: it only hands a job whose worker
vanished to another worker (the same attempt, the same id), at most ``runner.max_deliveries``
times.

When Redis goes away (a restart), jobs not yet sent wait in the outbox and are sent once it is
back; after the reader reconnects, every waiting job whose entry is no longer in the stream
(a Redis that keeps nothing on disk lost it) is sent again. A lost Redis therefore costs
re-runs of the jobs in flight, never the workflow: an attempt that cannot be answered by its
deadline times out in the dispatcher and is retried there.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import json
import logging
import time
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from automatos.domain.agent import AgentSpec
from automatos.errors import QueueError, describe_exception
from automatos.llm.base import Completion
from automatos.runners.base import AgentTask
from automatos.runners.keys import (
    GROUP,
    RECONNECT_S,
    QueueKeys,
    is_connection_error,
    safe_url,
    text,
)
from automatos.runners.wire import decode_answer, encode_job, field_of, json_bytes
from automatos.settings import RunnerSettings

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.commands.core import AsyncScript

    from automatos.field.base import SharedContext

__all__ = ["QueuedTaskRunner", "connect", "ensure_group"]

_log = logging.getLogger(__name__)

_ANSWERS_PER_READ = 1000
_ADD_JOBS = """
local ids = {}
for i = 1, #ARGV do ids[i] = redis.call('XADD', KEYS[1], '*', 'j', ARGV[i]) end
return ids
"""


def connect(settings: RunnerSettings) -> Redis:
    """A client of the queue's Redis; it connects on its first command."""
    from redis.asyncio import Redis

    timeout = settings.redis_timeout_s
    # A blocking read waits up to 1 s on the server: the socket must wait longer than that.
    client: Redis = Redis.from_url(
        settings.redis_url,
        socket_timeout=timeout + 1.0,
        socket_connect_timeout=timeout,
        health_check_interval=0,
        max_connections=64,
    )
    return client


async def ensure_group(redis: Redis, keys: QueueKeys) -> None:
    """Create the job stream and its consumer group unless they exist (from the stream's
    start: jobs sent before the first worker came are not skipped)."""
    from redis.exceptions import ResponseError

    try:
        await redis.xgroup_create(keys.jobs, GROUP, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


class _Slots:
    """The bound on jobs in flight: a FIFO of waiters, each freed slot handed to the first
    one directly. ``asyncio.Semaphore`` (3.11) wakes the next waiter by scanning past the
    waiters it woke already whose tasks have not run yet: when a batch of answers frees a
    thousand slots at once, that is half a million steps."""

    __slots__ = ("free", "waiters")

    def __init__(self, size: int) -> None:
        self.free = size
        self.waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    async def __aenter__(self) -> None:
        if self.free > 0:
            self.free -= 1
            return
        future = asyncio.get_running_loop().create_future()
        self.waiters.append(future)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self._release()  # handed a slot while being cancelled: pass it on
            else:
                with contextlib.suppress(ValueError):
                    self.waiters.remove(future)
            raise

    async def __aexit__(self, *exc_info: object) -> None:
        self._release()

    def _release(self) -> None:
        waiters = self.waiters
        while waiters:
            future = waiters.popleft()
            if not future.done():
                future.set_result(None)
                return
        self.free += 1


@dataclass(slots=True)
class _Waiting:
    """An attempt sent (or about to be) and not yet answered."""

    future: asyncio.Future[Completion]
    payload: bytes
    entry: str | None = None
    """Its stream entry's id, once sent."""


async def _with_tool_fields(task: AgentTask) -> AgentTask:
    """``task`` with what its worker's tool loop needs from this run, unless it carries it
    already: the MCP servers its agent's tools name (the workspace's are known here only) and
    this run's tool bounds (the settings of the run's tool host; with none current, the
    worker's own apply)."""
    from automatos.tools.host import current_host

    host = current_host.get()
    if host is None or (task.mcp_servers and task.tool_limits is not None):
        return task
    servers = task.mcp_servers or await host.servers_for(task.agent)
    return dataclasses.replace(
        task, mcp_servers=servers, tool_limits=task.tool_limits or host.limits
    )


class QueuedTaskRunner:
    """Sends agent tasks to workers through Redis; see the module's text for how.

    Args:
        settings: the queue (``runner.*``): Redis URL, key prefix, timeouts, how many jobs
            this orchestrator keeps in flight.
        redis: a client to use instead of one made from ``settings.redis_url`` (it is then
            the caller's to close).
    """

    name = "queued"

    def __init__(self, settings: RunnerSettings, *, redis: Redis | None = None) -> None:
        self.settings = settings
        self.keys = QueueKeys(settings.queue)
        self.id = uuid.uuid4().hex[:16]
        self._reply = self.keys.reply(self.id)
        self._redis = redis
        self._owns_redis = redis is None
        self._waiting: dict[str, _Waiting] = {}
        self._outbox: list[str] = []
        self._unwanted: list[tuple[str, str | None]] = []
        self._wake: asyncio.Event | None = None
        self._slots: _Slots | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._started: asyncio.Future[None] | None = None
        self._agents: dict[int, tuple[AgentSpec, bytes]] = {}
        self._script: AsyncScript | None = None
        self._closed = False
        self.duplicates = 0
        """Answers dropped because their job no longer waited (it ran twice)."""
        self.resent = 0
        """Jobs sent again because Redis lost them."""

    @property
    def redis(self) -> Redis:
        """The client of the queue's Redis."""
        if self._redis is None:
            self._redis = connect(self.settings)
        return self._redis

    def shared_context(self, workflow_id: str) -> SharedContext:
        """The workflow's shared findings, in Redis beside its jobs (stage 4b)."""
        from automatos.field.redis_context import RedisSharedContext

        settings = self.settings
        context: SharedContext = RedisSharedContext(
            self.redis,
            workflow_id,
            prefix=settings.queue,
            ttl_s=settings.shared_ttl_s,
            io_timeout_s=settings.redis_timeout_s,
        )
        return context

    async def run(self, task: AgentTask) -> Completion:
        """Send one attempt to the workers and wait for its answer.

        Raises:
            QueueError: Redis could not be reached to start with, or the answer came back
                unreadable.
            AutomatosError: the error the attempt failed with on its worker (its type and
                ``retryable`` kept).
        """
        if self._closed:
            raise QueueError("the queued runner is closed", transient=False)
        if task.agent.tools:
            task = await _with_tool_fields(task)
        if self._started is None or not self._started.done():
            await self._start()
        assert self._slots is not None
        assert self._wake is not None
        async with self._slots:
            loop = asyncio.get_running_loop()
            job = task.task_id
            deadline = time.time() + task.timeout_s
            waiting = _Waiting(
                loop.create_future(),
                encode_job(task, self._reply, deadline, self._agent_json(task.agent)),
            )
            previous = self._waiting.get(job)
            if previous is not None and not previous.future.done():
                previous.future.set_exception(QueueError(f"job {job} was sent again"))
            self._waiting[job] = waiting
            self._outbox.append(job)
            self._wake.set()
            try:
                return await waiting.future
            finally:
                if self._waiting.get(job) is waiting:
                    del self._waiting[job]
                    future = waiting.future
                    # cancelled (the await cancels the future too): the workers may let it go
                    if not future.done() or future.cancelled():
                        future.cancel()
                        self._unwanted.append((job, waiting.entry))
                        self._wake.set()

    def _agent_json(self, agent: AgentSpec) -> bytes:
        """The agent's JSON, made once per agent object (a workflow sends one agent often)."""
        found = self._agents.get(id(agent))
        if found is not None and found[0] is agent:
            return found[1]
        if len(self._agents) > 1000:
            self._agents.clear()
        encoded = agent.model_dump_json().encode()
        self._agents[id(agent)] = (agent, encoded)
        return encoded

    async def _start(self) -> None:
        """Reach Redis, make sure the queue exists, and start the writer and the reader."""
        if self._closed:
            raise QueueError("the queued runner is closed", transient=False)
        if self._started is None:
            started = self._started = asyncio.get_running_loop().create_future()
            try:
                async with asyncio.timeout(self.settings.redis_timeout_s):
                    await ensure_group(self.redis, self.keys)
            except BaseException as exc:  # a cancel too: the tasks waiting on it must not hang
                self._started = None  # the next task tries again
                error = QueueError(self._unreachable(exc))
                started.set_exception(error)  # for the tasks that waited on this start
                started.exception()  # retrieved: no "never retrieved" warning
                if not isinstance(exc, Exception):
                    raise
                raise error from exc
            await self._warn_if_no_worker()
            self._script = self.redis.register_script(_ADD_JOBS)
            self._wake = asyncio.Event()
            self._slots = _Slots(self.settings.max_in_flight)
            self._tasks = [
                asyncio.create_task(self._write_loop(), name="automatos-queue-writer"),
                asyncio.create_task(self._read_loop(), name="automatos-queue-reader"),
            ]
            self._started.set_result(None)
        else:
            await asyncio.shield(self._started)

    async def withdraw_workflow(self, workflow_id: str) -> int:
        """Withdraw every job of ``workflow_id`` in the queue, sent by any orchestrator (a
        dead one, whose run is being resumed: its jobs would otherwise run for nobody, ahead
        of the resumed run's); returns how many. Call it before the workflow sends any job of
        its own."""
        # As this release writes the id, and as earlier ones did (json.dumps: non-ASCII
        # escaped): the dead orchestrator may have been of either.
        markers = {b'"workflow_id":' + json_bytes(workflow_id)}
        markers.add(b'"workflow_id":' + json.dumps(workflow_id).encode())
        entries: list[str] = []
        jobs: list[str] = []
        start = "-"
        async with asyncio.timeout(self.settings.redis_timeout_s * 4):
            while True:
                chunk = await self.redis.xrange(self.keys.jobs, start, "+", count=1000)
                for entry, fields in chunk:
                    payload = (fields or {}).get(b"j", b"")
                    if any(marker in payload for marker in markers):
                        entries.append(text(entry))
                        job = field_of(payload, "job")
                        if isinstance(job, str):
                            jobs.append(job)
                if len(chunk) < 1000:
                    break
                start = "(" + text(chunk[-1][0])
            if entries:
                async with self.redis.pipeline(transaction=False) as pipe:
                    pipe.xdel(self.keys.jobs, *entries)
                    if jobs:
                        pipe.publish(self.keys.cancel, " ".join(jobs))
                    await pipe.execute()
        if entries:
            _log.info(
                "withdrew %d job(s) of workflow %s left in the queue", len(entries), workflow_id
            )
        return len(entries)

    async def workers(self) -> int:
        """How many workers read this queue now: those that said they were alive within
        twice ``runner.claim_after_s`` (a worker says so every third of it)."""
        recent = max(5.0, 2 * self.settings.claim_after_s)
        async with asyncio.timeout(self.settings.redis_timeout_s):
            found = await self.redis.zcount(self.keys.workers, time.time() - recent, "+inf")
        return int(found)

    async def _warn_if_no_worker(self) -> None:
        """Say so when no worker reads the queue: its jobs would wait, looking as if they
        ran, until one starts or their attempts time out."""
        try:
            live = await self.workers()
        except Exception:  # a courtesy: the first task finds out whether Redis works
            return
        if not live:
            settings = self.settings
            _log.warning(
                "no automatos worker reads the queue %r on %s: its jobs wait until one "
                "starts (automatos worker --queue %s --redis-url ...)",
                settings.queue,
                safe_url(settings.redis_url),
                settings.queue,
            )

    def _unreachable(self, exc: BaseException) -> str:
        return (
            f"the task queue's Redis ({safe_url(self.settings.redis_url)}, setting "
            f"runner.redis_url, AUTOMATOS_RUNNER__REDIS_URL) could not be reached (waiting at "
            f"most {self.settings.redis_timeout_s:g} s): {describe_exception(exc, 200)}"
        )

    async def _write_loop(self) -> None:
        """Withdraw the jobs no longer wanted, then send what waits in the outbox, a round
        trip each; while Redis is away, keep what was not done and try again."""
        assert self._wake is not None
        pause = RECONNECT_S[0]
        while True:
            await self._wake.wait()
            self._wake.clear()
            jobs, self._outbox = self._outbox, []
            unwanted, self._unwanted = self._unwanted, []
            sending = [(job, w) for job in jobs if (w := self._waiting.get(job)) is not None]
            if not sending and not unwanted:
                continue
            # Withdrawals first: they can be done twice, adding jobs cannot. Once the jobs
            # are in, nothing of this pass is done again.
            lost: Exception | None = None
            if unwanted:
                try:
                    await self._withdraw(unwanted)
                except Exception as exc:  # a cancel is not one: it stops the writer
                    if is_connection_error(exc):
                        lost = exc  # kept, and tried again with the jobs
                    else:  # refused (an ACL): they run for nobody, their answers dropped
                        _log.error("jobs no longer wanted could not be withdrawn: %s", exc)
                        unwanted = []
                else:
                    unwanted = []
            if lost is None and sending:
                try:
                    await self._add_jobs(sending)
                except Exception as exc:
                    if is_connection_error(exc):
                        lost = exc
                    else:
                        self._fail(sending, QueueError(f"Redis refused the jobs: {exc}"))
            if lost is None:
                pause = RECONNECT_S[0]
                continue
            _log.warning("%s; trying again in %.2g s", self._unreachable(lost), pause)
            self._outbox[:0] = jobs
            self._unwanted[:0] = unwanted
            await asyncio.sleep(pause)
            pause = min(pause * 2, RECONNECT_S[1])
            self._wake.set()

    async def _withdraw(self, unwanted: list[tuple[str, str | None]]) -> None:
        """Delete the entries of jobs no longer wanted and tell the workers to stop them."""
        async with self.redis.pipeline(transaction=False) as pipe:
            entries = [entry for _, entry in unwanted if entry is not None]
            if entries:
                pipe.xdel(self.keys.jobs, *entries)
            pipe.publish(self.keys.cancel, " ".join(job for job, _ in unwanted))
            async with asyncio.timeout(self.settings.redis_timeout_s):
                await pipe.execute()

    async def _add_jobs(self, sending: list[tuple[str, _Waiting]]) -> None:
        async with asyncio.timeout(self.settings.redis_timeout_s):
            ids = await self._add([waiting.payload for _, waiting in sending])
        late = False
        for (job, waiting), entry in zip(sending, ids, strict=False):
            waiting.entry = entry.decode() if isinstance(entry, bytes) else str(entry)
            if waiting.future.cancelled():  # withdrawn while it was being sent: its entry
                self._unwanted.append((job, waiting.entry))  # was not known then
                late = True
        if late and self._wake is not None:
            self._wake.set()

    async def _add(self, payloads: list[bytes]) -> list[bytes]:
        """Put the jobs in the stream in one command; their entries' ids, in order.

        One script rather than an ``XADD`` a job: Redis serves a blocked ``XREADGROUP`` after
        the whole batch is in, not after its first job (a worker takes a share of the batch
        in one read, not one job then the rest), and the orchestrator packs one command and
        parses one reply instead of two a job (``MULTI``'s ``QUEUED`` and ``EXEC``'s). A Redis
        that runs no scripts (an ACL, a server without Lua) gets the same in ``MULTI``."""
        from redis.exceptions import ResponseError

        stream = self.keys.jobs
        refused: ResponseError | None = None
        if self._script is not None:
            try:
                return cast("list[bytes]", await self._script(keys=[stream], args=payloads))
            except ResponseError as exc:
                refused = exc
        async with self.redis.pipeline(transaction=True) as pipe:
            for payload in payloads:
                pipe.xadd(stream, {"j": payload})
            ids = cast("list[bytes]", await pipe.execute())
        if refused is not None:  # the script was refused and XADD was not: scripts are out
            _log.warning("jobs are sent with MULTI: this Redis runs no scripts (%s)", refused)
            self._script = None
        return ids

    @staticmethod
    def _fail(sending: list[tuple[str, _Waiting]], error: Exception) -> None:
        for _, waiting in sending:
            if not waiting.future.done():
                waiting.future.set_exception(error)

    async def _read_loop(self) -> None:
        """Take answers as they come and hand each to its waiting attempt."""
        redis, reply = self.redis, self._reply
        pause = RECONNECT_S[0]
        lost = False
        while not self._closed:
            try:
                if lost:
                    async with asyncio.timeout(self.settings.redis_timeout_s):
                        await self._recover()
                    lost = False
                async with asyncio.timeout(self.settings.redis_timeout_s + 1.0):
                    got = await cast(
                        "Awaitable[list[bytes] | None]", redis.blpop([reply], timeout=1)
                    )
                if got is None:
                    continue
                answers = [got[1]]
                async with asyncio.timeout(self.settings.redis_timeout_s):
                    more = await cast(
                        "Awaitable[list[bytes] | None]", redis.lpop(reply, _ANSWERS_PER_READ)
                    )
                if more:
                    answers += more
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not is_connection_error(exc):
                    _log.error("the queue's answers could not be read: %s", exc)
                else:
                    _log.warning("%s; trying again in %.2g s", self._unreachable(exc), pause)
                lost = True
                await asyncio.sleep(pause)
                pause = min(pause * 2, RECONNECT_S[1])
                continue
            pause = RECONNECT_S[0]
            for answer in answers:
                if answer:  # an empty one only wakes the reader (to stop)
                    try:
                        self._answer(answer)
                    except Exception as exc:  # one bad answer must not stop the reader
                        _log.error("an answer was dropped: %s", describe_exception(exc))

    def _answer(self, data: bytes) -> None:
        try:
            job, outcome = decode_answer(data)
        except QueueError as exc:
            _log.error("%s", exc)
            return
        waiting = self._waiting.pop(job, None)
        if waiting is None or waiting.future.done():
            self.duplicates += 1
            return
        if isinstance(outcome, Completion):
            waiting.future.set_result(outcome)
        else:
            waiting.future.set_exception(outcome)

    async def _recover(self) -> None:
        """After Redis came back: recreate the queue if it was lost, and send again every
        waiting job whose entry is no longer in the stream."""
        await ensure_group(self.redis, self.keys)
        sent = [(job, w.entry) for job, w in self._waiting.items() if w.entry is not None]
        if not sent:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for _, entry in sent:
                pipe.xrange(self.keys.jobs, entry, entry)
            found = await pipe.execute()
        lost = [job for (job, _), entries in zip(sent, found, strict=True) if not entries]
        if lost:
            _log.warning("Redis lost %d job(s) in flight; sending them again", len(lost))
            assert self._wake is not None
            lost = [job for job in lost if job in self._waiting]  # not cancelled meanwhile
            for job in lost:
                self._waiting[job].entry = None
            self.resent += len(lost)
            self._outbox += lost
            self._wake.set()

    async def aclose(self) -> None:
        """Stop sending and reading; attempts still waiting fail with a :class:`QueueError`.
        Idempotent."""
        self._closed = True
        if self._tasks:
            writer, reader = self._tasks
            writer.cancel()
            await asyncio.wait([writer], timeout=self.settings.redis_timeout_s)
            # What still waits is withdrawn too: the workers need not run it for nobody.
            unwanted = self._unwanted + [(job, w.entry) for job, w in self._waiting.items()]
            self._unwanted = []
            if unwanted:
                with contextlib.suppress(Exception):
                    await self._withdraw(unwanted)
            # A blocked read does not always give way to a cancel (the client may wait on
            # its connection's lock): an empty answer wakes it, and it sees it is closed.
            with contextlib.suppress(Exception):
                async with asyncio.timeout(self.settings.redis_timeout_s):
                    await cast("Awaitable[int]", self.redis.rpush(self._reply, b""))
            await asyncio.wait([reader], timeout=self.settings.redis_timeout_s)
            for task in self._tasks:
                task.cancel()
            await asyncio.wait(self._tasks, timeout=self.settings.redis_timeout_s)
        self._tasks = []
        for waiting in self._waiting.values():
            if not waiting.future.done():
                waiting.future.set_exception(
                    QueueError("the queued runner was closed", transient=False)
                )
        self._waiting.clear()
        if self._owns_redis and self._redis is not None:
            with contextlib.suppress(Exception):
                await self._redis.delete(self._reply)
            await self._redis.aclose()
            self._redis = None
