"""``automatos worker``: runs the queue's jobs with the same executor as the local runner.

A worker reads jobs from the queue's stream in its consumer group, up to ``concurrency`` at
once and :data:`READ_BATCH` a read, runs each with :func:`~automatos.runners.executor.execute`
until the job's deadline, pushes the answer to the list the job names and acknowledges the
entry. Answers and acknowledgements of one moment go in one round trip.

A job whose agent has tools runs its tool loop with the tools of its workflow's host on this
worker (:class:`~automatos.tools.host.WorkflowHosts`): built-ins from the worker's own
``tools.*`` settings, the MCP servers the job names, started on first use and shared by the
workflow's jobs here, stopped once its jobs stop coming and when the worker stops.

Faults:

- Every third of ``runner.claim_after_s`` the worker renews its claim on the jobs it runs
  (``XCLAIM ... JUSTID`` resets their idle time) and takes over jobs idle longer than
  ``claim_after_s`` (``XAUTOCLAIM``): those of a worker that died. A job is therefore run
  again within ``claim_after_s`` plus a third of it after its worker died (the bound), by
  whichever worker looks first. A job handed out ``runner.max_deliveries`` times is answered
  with a :class:`~automatos.errors.QueueError` instead of being run again.
- On stop (SIGTERM, Ctrl-C) the worker takes no new job, lets those it runs finish for up to
  ``grace_s``, then hands the rest back: each goes back into the stream as a new entry (and
  its old one is acknowledged), for another worker to take at once.
- A job past its deadline is not started (or is stopped), and answered with a
  :class:`~automatos.errors.SubtaskTimeoutError`; a job withdrawn by its orchestrator (its
  workflow was cancelled) is stopped and answered with nothing.
- While Redis is away the worker keeps its answers and tries again; a Redis that came back
  empty has its queue recreated.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from automatos.abandoned import abandon
from automatos.deadlines import caller_timeout
from automatos.errors import QueueError, SubtaskTimeoutError, describe_exception
from automatos.llm.base import Completion, LLMProvider
from automatos.phases.execute.tool_loop import attach_spent, spent_of
from automatos.runners.base import AgentTask
from automatos.runners.executor import execute
from automatos.runners.keys import (
    GROUP,
    RECONNECT_S,
    QueueKeys,
    is_connection_error,
    safe_url,
    text,
)
from automatos.runners.queued import connect, ensure_group
from automatos.runners.wire import (
    Job,
    decode_job,
    encode_error,
    encode_result,
    is_reply_key,
    reply_of,
)
from automatos.settings import RunnerSettings, ToolSettings

if TYPE_CHECKING:
    from collections.abc import Iterable

    from redis.asyncio import Redis

    from automatos.tools.base import Tool
    from automatos.tools.host import WorkflowHosts

__all__ = ["Worker", "WorkerStats"]

_log = logging.getLogger(__name__)

_ANSWER_TTL_S = 86_400
"""How long answers wait for an orchestrator that stopped reading them (it died)."""
OVERDUE_CHECK_S = 1.0
OVERDUE_GRACE_S = 2.0
"""How long past its deadline a job that was cancelled may go on before it is given up on."""
HAND_BACK_WAIT_S = 2.0
"""How long a stopping worker waits for the jobs it cancelled to end before it hands them
back regardless."""
READ_BATCH = 100
"""The most jobs one read takes. A burst of jobs (a thousand subtasks ready at once) is then
shared by the workers waiting on the queue, a hundred each in turn, instead of going whole
to the one whose read Redis served first; and a worker answers the first hundred before it
has started the rest."""


@dataclass
class WorkerStats:
    """What a worker did so far."""

    taken: int = 0
    answered: int = 0
    failed: int = 0
    """Jobs answered with an error."""
    withdrawn: int = 0
    """Jobs stopped because their orchestrator no longer wanted them."""
    reclaimed: int = 0
    """Jobs taken over from a worker that stopped renewing its claim."""
    handed_back: int = 0


@dataclass(slots=True)
class _Running:
    job: str
    payload: bytes
    task: asyncio.Task[None] | None = None
    withdrawn: bool = False
    decoded: Job | None = None


@dataclass
class _Outbox:
    answers: dict[str, list[bytes]] = field(default_factory=dict)
    acks: list[str] = field(default_factory=list)
    requeue: list[bytes] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.answers or self.acks or self.requeue)


class Worker:
    """Runs jobs of the queue ``settings.queue`` with ``llm`` until :meth:`run` is stopped.

    Args:
        settings: the queue's settings (the same as its orchestrators').
        llm: the model the jobs call, wrapped with the LLM settings' timeout, retries and
            prices (:func:`~automatos.llm.factory.wrap_provider`), as the engine wraps its own.
        concurrency: jobs run at once (``runner.worker_concurrency`` by default).
        grace_s: on stop, how long running jobs may take before they are handed back.
        name: this worker's consumer name (host, pid and a random part by default).
        redis: a client to use instead of one made from the settings (the caller closes it).
        tools: the worker's ``tools.*`` settings, for jobs whose agents have tools (defaults
            when not given: no ``read_file``).
        tools_idle_s: a workflow's tool host (its MCP servers) is closed once no job of the
            workflow ran on this worker for this long (by default
            :data:`~automatos.tools.host.IDLE_CLOSE_S`).
    """

    def __init__(
        self,
        settings: RunnerSettings,
        llm: LLMProvider,
        *,
        concurrency: int | None = None,
        grace_s: float = 30.0,
        name: str | None = None,
        redis: Redis | None = None,
        tools: ToolSettings | None = None,
        tools_idle_s: float | None = None,
        extra_tools: Iterable[Tool] = (),
    ) -> None:
        self.settings = settings
        self.llm = llm
        self.concurrency = concurrency or settings.worker_concurrency
        self.grace_s = grace_s
        self.name = name or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.keys = QueueKeys(settings.queue)
        self._redis = redis
        self._owns_redis = redis is None
        self._running: dict[str, _Running] = {}
        self._outbox = _Outbox()
        self._wake = asyncio.Event()
        self._room = asyncio.Event()
        self._stopping = False
        self.stats = WorkerStats()
        self.tools = tools if tools is not None else ToolSettings()
        """The ``tools.*`` settings of this worker: its built-in tools' (``read_root``), the
        secret names it redacts with, the bounds of jobs that carry none."""
        self.tools_idle_s = tools_idle_s
        self.extra_tools = tuple(extra_tools)
        """Python tools this worker offers (``automatos worker --tool``): the same as the
        orchestrator's engine was given, for the agents that name them."""
        self._hosts: WorkflowHosts | None = None
        self._claim_cursor = "0-0"
        self._sending = False
        self._hurry = asyncio.Event()
        self.ready = asyncio.Event()
        """Set once the worker reached Redis and reads jobs."""

    @property
    def redis(self) -> Redis:
        """The client of the queue's Redis."""
        if self._redis is None:
            self._redis = connect(self.settings)
        return self._redis

    async def run(self, stop: asyncio.Event) -> WorkerStats:
        """Take and run jobs until ``stop`` is set; then finish or hand back what runs.

        Raises:
            QueueError: Redis could not be reached at the start.
        """
        try:
            async with asyncio.timeout(self.settings.redis_timeout_s):
                await ensure_group(self.redis, self.keys)
        except Exception as exc:
            await self._close_redis()
            raise QueueError(
                f"the task queue's Redis ({safe_url(self.settings.redis_url)}: --redis-url, "
                "or setting runner.redis_url, AUTOMATOS_RUNNER__REDIS_URL) could not be "
                f"reached (waiting at most {self.settings.redis_timeout_s:g} s): "
                f"{describe_exception(exc, 200)}"
            ) from exc
        with contextlib.suppress(Exception):
            await self._alive()
        self.ready.set()
        loops = [
            asyncio.create_task(self._read_loop(), name="automatos-worker-reader"),
            asyncio.create_task(self._write_loop(), name="automatos-worker-writer"),
            asyncio.create_task(self._claim_loop(), name="automatos-worker-claims"),
            asyncio.create_task(self._cancel_loop(), name="automatos-worker-cancels"),
            asyncio.create_task(self._overdue_loop(), name="automatos-worker-overdue"),
        ]
        try:
            await stop.wait()
        finally:
            self._stopping = True
            reader = loops[0]
            self._room.set()
            # The read blocks for 1 s at most and then sees the worker is stopping; a cancel
            # is not always honoured by a blocked read (the client may wait on its lock).
            await asyncio.wait([reader], timeout=self.settings.redis_timeout_s + 1.0)
            reader.cancel()
            await self._finish_or_hand_back()
            if self._hosts is not None:  # the MCP servers of the workflows it ran jobs of
                await self._hosts.aclose()
            for loop in loops[2:]:
                loop.cancel()
            await asyncio.wait(loops[2:], timeout=self.settings.redis_timeout_s)
            await self._drain(loops[1])
            with contextlib.suppress(Exception):
                async with asyncio.timeout(self.settings.redis_timeout_s):
                    await self.redis.zrem(self.keys.workers, self.name)
            await self._close_redis()
        return self.stats

    async def _close_redis(self) -> None:
        if self._owns_redis and self._redis is not None:
            await self._redis.aclose()
            self._redis = None

    # -- taking jobs ----------------------------------------------------------------------

    async def _read_loop(self) -> None:
        redis, stream = self.redis, self.keys.jobs
        pause = RECONNECT_S[0]
        while not self._stopping:
            free = self.concurrency - len(self._running)
            if free <= 0:
                self._room.clear()
                await self._room.wait()
                continue
            try:
                async with asyncio.timeout(self.settings.redis_timeout_s + 1.0):
                    got = await redis.xreadgroup(
                        GROUP, self.name, {stream: ">"}, count=min(free, READ_BATCH), block=1000
                    )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if "NOGROUP" in str(exc):  # Redis came back empty
                    with contextlib.suppress(Exception):
                        await ensure_group(redis, self.keys)
                    continue
                if is_connection_error(exc):
                    _log.warning("the queue's Redis is out of reach (%s); trying again", exc)
                else:  # refused (read-only, out of memory, the key of another type): wait
                    _log.error("the queue's Redis refused to hand out jobs: %s", exc)
                await asyncio.sleep(pause)
                pause = min(pause * 2, RECONNECT_S[1])
                continue
            pause = RECONNECT_S[0]
            for _, entries in got or ():
                for entry, fields in entries:
                    self._take(text(entry), fields)  # even when stopping: it is ours now

    def _take(self, entry: str, fields: dict[bytes, bytes] | None) -> None:
        payload = (fields or {}).get(b"j")
        if payload is None:  # withdrawn before it was read (XDEL), or not a job at all
            self._ack(entry)
            return
        self.stats.taken += 1
        running = _Running("", payload)
        self._running[entry] = running
        running.task = asyncio.create_task(self._run_job(entry, running))

    async def _run_job(self, entry: str, running: _Running) -> None:
        try:
            job = decode_job(running.payload)
            if not is_reply_key(job.reply, self.keys.prefix):
                raise QueueError(
                    f"a job whose answer would go to {job.reply[:80]!r}, not "
                    "to one of the queue's answer lists",
                    transient=False,
                )
        except Exception as exc:  # whatever is in the stream must not cost a slot
            self._unreadable(entry, running.payload, exc)
            return
        running.job, running.decoded = job.job, job
        try:
            answer = await self._answer_of(job)
        except asyncio.CancelledError:
            if not running.withdrawn:
                raise  # stopping: the job is handed back
            self.stats.withdrawn += 1
            if self._running.get(entry) is running:
                self._done(entry, None, None)
            return
        except BaseException:
            if self._running.get(entry) is running:
                self._done(entry, None, None)
            raise
        if self._running.get(entry) is running:  # not given up on (_overdue_loop)
            self._done(entry, job.reply, answer)

    def _unreadable(self, entry: str, payload: bytes, exc: BaseException) -> None:
        """Drop a job that is not of the wire schema, answering its orchestrator (when the
        job says who that is) with the reason, so that it need not wait out the deadline."""
        error = (
            exc
            if isinstance(exc, QueueError)
            else QueueError(
                f"a job that could not be read: {describe_exception(exc, 200)}", transient=False
            )
        )
        _log.error("job %s dropped: %s", entry, error)
        found = reply_of(payload, self.keys.prefix)
        if found is None:
            self._done(entry, None, None)
            return
        job, reply = found
        self.stats.failed += 1
        self._done(entry, reply, encode_error(job, error))

    async def _answer_of(self, job: Job) -> bytes:
        left = job.deadline - time.time()
        sid = job.subtask.id
        if left <= 0:
            self.stats.failed += 1
            late = SubtaskTimeoutError(
                f"subtask {sid!r} reached worker {self.name} after its deadline"
            )
            return encode_error(job.job, late)
        try:
            # This task is stopped at the job's deadline: the model wrapper need not guard
            # the call in a task of its own (a task, an asyncio.wait and a timer a job).
            caller_timeout.set(left)
            task = job.task()
            async with asyncio.timeout(left):
                if task.agent.tools:
                    done = await self._run_with_tools(task)
                else:
                    done = await execute(self.llm, task)
        except TimeoutError as exc:
            self.stats.failed += 1
            late = SubtaskTimeoutError(
                f"subtask {sid!r} took over {job.timeout_s:g} s (stopped on worker {self.name})"
            )
            spent = spent_of(exc)  # a tool loop stopped midway: its orchestrator accounts it
            if spent is not None:
                attach_spent(late, spent)
            return encode_error(job.job, late)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # a plugin's, even sys.exit: the job failed, not the worker
            self.stats.failed += 1
            _log.warning(
                "subtask %r (job %s) failed: %s", sid, job.job, describe_exception(exc, 500)
            )
            return encode_error(job.job, exc)
        return encode_result(job.job, done)

    async def _run_with_tools(self, task: AgentTask) -> Completion:
        """The tool loop of ``task``, with the tools of its workflow's host on this worker."""
        hosts = self._hosts
        if hosts is None:
            from automatos.tools.host import WorkflowHosts

            idle = {} if self.tools_idle_s is None else {"idle_s": self.tools_idle_s}
            hosts = self._hosts = WorkflowHosts(self.tools, extra=self.extra_tools, **idle)
        host = hosts.acquire(task.workflow_id)
        try:
            return await execute(self.llm, task, await host.toolbox(task))
        finally:
            hosts.release(task.workflow_id)

    def _done(self, entry: str, reply: str | None, answer: bytes | None) -> None:
        self._running.pop(entry, None)
        self._room.set()
        if reply is not None and answer is not None:
            self.stats.answered += 1
            self._outbox.answers.setdefault(reply, []).append(answer)
        self._ack(entry)

    def _ack(self, entry: str) -> None:
        self._outbox.acks.append(entry)
        self._wake.set()

    # -- answering ------------------------------------------------------------------------

    async def _write_loop(self) -> None:
        pause = RECONNECT_S[0]
        while True:
            await self._wake.wait()
            self._wake.clear()
            out, self._outbox = self._outbox, _Outbox()
            if not out:
                continue
            self._sending = True
            try:
                await self._send(out)
            except asyncio.CancelledError:
                self._keep(out)
                raise
            except Exception as exc:
                if not is_connection_error(exc):
                    _log.error("answers could not be sent: %s", describe_exception(exc))
                    continue
                self._keep(out)
                _log.warning("the queue's Redis is out of reach (%s); trying again", exc)
                await asyncio.sleep(pause)
                pause = min(pause * 2, RECONNECT_S[1])
                self._wake.set()
            else:
                pause = RECONNECT_S[0]
            finally:
                self._sending = False

    def _keep(self, out: _Outbox) -> None:
        """Put back what could not be sent, before what came meanwhile."""
        for reply, answers in out.answers.items():
            self._outbox.answers.setdefault(reply, [])[:0] = answers
        self._outbox.acks[:0] = out.acks
        self._outbox.requeue[:0] = out.requeue

    async def _send(self, out: _Outbox) -> None:
        stream = self.keys.jobs
        async with self.redis.pipeline(transaction=False) as pipe:
            for payload in out.requeue:
                pipe.xadd(stream, {"j": payload})
            for reply, answers in out.answers.items():
                pipe.rpush(reply, *answers)
                pipe.expire(reply, _ANSWER_TTL_S)
            if out.acks:
                pipe.xack(stream, GROUP, *out.acks)
                pipe.xdel(stream, *out.acks)
            async with asyncio.timeout(self.settings.redis_timeout_s):
                results = await pipe.execute(raise_on_error=False)
        for result in results:
            if isinstance(result, Exception) and is_connection_error(result):
                raise result
            # Other refusals (an acknowledgement to a queue that Redis lost) change nothing.

    async def _drain(self, writer: asyncio.Task[None]) -> None:
        """Send the last answers (within the Redis timeout), then stop the writer."""
        deadline = time.monotonic() + self.settings.redis_timeout_s
        while (self._outbox or self._sending) and time.monotonic() < deadline:
            if writer.done():
                break
            self._wake.set()
            await asyncio.sleep(0.01)
        writer.cancel()
        await asyncio.wait([writer], timeout=self.settings.redis_timeout_s)
        if self._outbox:
            _log.warning("the last answers could not be sent before the worker stopped")

    # -- claims ---------------------------------------------------------------------------

    async def _claim_loop(self) -> None:
        every = self.settings.claim_after_s / 3
        while True:
            await asyncio.sleep(every)
            try:
                async with asyncio.timeout(self.settings.redis_timeout_s):
                    await self._alive()
                    await self._renew()
                    await self._take_over()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                _log.warning("claims could not be renewed: %s", describe_exception(exc))

    async def _alive(self) -> None:
        """Say this worker is alive (for orchestrators that ask whether any is), and forget
        workers silent for a day."""
        now = time.time()
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zadd(self.keys.workers, {self.name: now})
            pipe.zremrangebyscore(self.keys.workers, "-inf", now - 86_400)
            await pipe.execute()

    async def _renew(self) -> None:
        """Keep the jobs this worker runs from looking abandoned."""
        if self._running:
            await self.redis.xclaim(
                self.keys.jobs, GROUP, self.name, 0, list(self._running), justid=True
            )

    async def _take_over(self) -> None:
        """Take the jobs of workers that stopped renewing their claims."""
        free = self.concurrency - len(self._running)
        if free <= 0 or self._stopping:
            return
        idle_ms = int(self.settings.claim_after_s * 1000)
        # Redis looks at ten times ``count`` pending entries a call: the scan goes on from
        # where the last one stopped, or jobs behind live ones would never be reached.
        reply = await self.redis.xautoclaim(
            self.keys.jobs, GROUP, self.name, idle_ms, start_id=self._claim_cursor, count=free
        )
        self._claim_cursor = text(reply[0]) if reply and reply[0] else "0-0"
        entries = reply[1] if len(reply) > 1 else []
        for entry, fields in entries:
            entry = text(entry)
            if fields is None:
                self._ack(entry)
                continue
            pending = await self.redis.xpending_range(self.keys.jobs, GROUP, entry, entry, 1)
            times = int(pending[0]["times_delivered"]) if pending else 1
            self.stats.reclaimed += 1
            if times > self.settings.max_deliveries:
                self._undeliverable(entry, fields, times)
            else:
                _log.info("took over job %s (its worker stopped; delivery %d)", entry, times)
                self._take(entry, fields)

    def _undeliverable(self, entry: str, fields: dict[bytes, bytes], times: int) -> None:
        try:
            job = decode_job(fields.get(b"j", b""))
        except QueueError:
            self._ack(entry)
            return
        error = QueueError(
            f"subtask {job.subtask.id!r} was handed to workers {times} times and none "
            f"answered (setting runner.max_deliveries: {self.settings.max_deliveries})",
            transient=False,
        )
        self.stats.failed += 1
        self._done(entry, job.reply, encode_error(job.job, error))

    # -- overdue jobs ---------------------------------------------------------------------

    async def _overdue_loop(self) -> None:
        """Give up on jobs still running past their deadline and a grace: a plugin that
        ignores its cancellation keeps its task (:func:`~automatos.abandoned.abandon`), not
        the job's slot, and its orchestrator is answered, not left to wait out its own
        timeout."""
        while True:
            await asyncio.sleep(OVERDUE_CHECK_S)
            late = time.time() - OVERDUE_GRACE_S
            for entry, running in list(self._running.items()):
                job, task = running.decoded, running.task
                if job is None or task is None or job.deadline > late or task.done():
                    continue
                abandon(task)
                self.stats.failed += 1
                error = SubtaskTimeoutError(
                    f"subtask {job.subtask.id!r} took over {job.timeout_s:g} s and did not stop "
                    f"when cancelled at its deadline (a plugin that ignores cancellation), on "
                    f"worker {self.name}"
                )
                _log.warning("job %s given up on: %s", job.job, error)
                self._done(entry, job.reply, encode_error(job.job, error))

    # -- withdrawals ----------------------------------------------------------------------

    async def _cancel_loop(self) -> None:
        """Stop jobs their orchestrators withdrew (cancelled workflows)."""
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.keys.cancel)
                while True:
                    # a short wait each time: the client's socket timeout would end a long one
                    message = await pubsub.get_message(timeout=1.0)
                    if message is None or message.get("type") != "message":
                        continue
                    wanted = set(text(message["data"]).split())
                    for running in list(self._running.values()):
                        if running.job in wanted and running.task is not None:
                            running.withdrawn = True
                            running.task.cancel()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                _log.warning("withdrawals could not be read: %s", describe_exception(exc))
                await asyncio.sleep(1.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    # -- stopping -------------------------------------------------------------------------

    def hand_back_now(self) -> None:
        """While stopping: hand the running jobs back without waiting out the grace."""
        self._hurry.set()

    async def _finish_or_hand_back(self) -> None:
        tasks = [r.task for r in self._running.values() if r.task is not None]
        if tasks and not self._hurry.is_set():
            _log.info(
                "stopping: %d job(s) running, %g s to finish (Ctrl-C again hands them back now)",
                len(tasks),
                self.grace_s,
            )
            finished = asyncio.ensure_future(asyncio.wait(tasks))  # cancelling it cancels no job
            hurry = asyncio.ensure_future(self._hurry.wait())
            await asyncio.wait(
                [finished, hurry], timeout=self.grace_s, return_when=asyncio.FIRST_COMPLETED
            )
            finished.cancel()
            hurry.cancel()
        left = list(self._running.items())
        stopping = [r.task for _, r in left if r.task is not None]
        for task in stopping:
            task.cancel()
        if stopping:
            # A plugin that ignores its cancellation keeps its task: the job is handed back
            # all the same (its answer, if one comes, is a duplicate the orchestrator drops)
            _, stuck = await asyncio.wait(stopping, timeout=HAND_BACK_WAIT_S)
            for task in stuck:
                abandon(task)
            if stuck:
                _log.warning(
                    "%d job(s) did not stop within %g s of being cancelled (a plugin that "
                    "ignores cancellation); handed back all the same",
                    len(stuck),
                    HAND_BACK_WAIT_S,
                )
        left = [(entry, running) for entry, running in left if self._running.get(entry) is running]
        for entry, running in left:  # not those answered meanwhile (done, or given up on)
            self._running.pop(entry, None)
            self._outbox.requeue.append(running.payload)
            self._outbox.acks.append(entry)
            self.stats.handed_back += 1
        if left:
            _log.info("handed %d job(s) back to the queue", len(left))
