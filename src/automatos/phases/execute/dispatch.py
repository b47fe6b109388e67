"""Stage 4, execution: run every subtask as soon as all of its dependencies have succeeded.

Dispatch is driven by completions, not by layers: when a subtask finishes, each successor
whose last dependency that was is started at once, within a global concurrency limit. A
subtask that fails is retried alone, with backoff, while the rest go on (its slot with them:
it takes the next free one when its backoff is over); when it finally fails, everything
downstream of it is skipped with the reason, and independent branches finish. The work per
subtask is constant, so a plan of n subtasks costs O(n + edges); this is the engine's hot
path, which is why it is written with few layers and few objects.
"""

from __future__ import annotations

import asyncio
import contextvars
import heapq
import itertools
import math
import time
from collections import deque

from automatos.deadlines import DeadlineQueue, caller_timeout
from automatos.domain.agent import AgentSpec
from automatos.domain.event import SubtaskRetried, SubtaskStarted
from automatos.domain.result import ErrorInfo, SubtaskResult, SubtaskStatus
from automatos.errors import (
    BudgetExceededError,
    RateLimitedError,
    SubtaskTimeoutError,
    is_retryable,
)
from automatos.llm.base import Completion, Message
from automatos.llm.retry import backoff_delay
from automatos.phases.execute.budget import Budget
from automatos.phases.execute.commit import commit_result
from automatos.phases.execute.prompt import subtask_messages
from automatos.phases.state import WorkflowState
from automatos.runners.base import AgentTask

__all__ = ["Dispatcher", "ExecuteStage"]

_SUCCEEDED = SubtaskStatus.SUCCEEDED


class ExecuteStage:
    """Stage 4."""

    name = "execute"

    async def run(self, state: WorkflowState) -> None:
        """Run the plan's subtasks through the runtime's runner."""
        await Dispatcher(state).run()


class Dispatcher:
    """Runs one plan; create one per workflow, inside the event loop."""

    def __init__(self, state: WorkflowState) -> None:
        self.state = state
        self.plan = state.require_plan()
        self.settings = state.runtime.settings.execution
        self._subtasks = self.plan.by_id
        # Ready subtasks wait in a heap by slack, so that when the concurrency limit binds,
        # those on the critical path start first (the graph analysis put to use). Only
        # subtasks with dependencies need counting down and an order for later pushes.
        self._waiting: dict[str, int] = {}
        self._order: dict[str, int] = {}
        self._ready: list[tuple[float, int, str]] = []
        for i, s in enumerate(self.plan.subtasks):
            graph = s.graph
            if graph.predecessors:
                self._waiting[s.id] = len(graph.predecessors)
                self._order[s.id] = i
            else:
                self._ready.append((graph.slack, i, s.id))
        heapq.heapify(self._ready)
        self._loop = asyncio.get_running_loop()
        self._running: dict[str, asyncio.Task[None]] = {}
        """Subtasks holding a slot of the concurrency limit."""
        self._resting: dict[str, asyncio.Task[None]] = {}
        """Subtasks waiting to retry, or for a slot to retry in."""
        self._waiters: deque[tuple[str, asyncio.Future[None]]] = deque()
        self._open = len(self.plan.subtasks)
        self._finished = asyncio.Event()
        self._crash: Exception | None = None
        self._deadlines = DeadlineQueue(self.settings.subtask_timeout_s)
        self._keys = itertools.count()  # one deadline key per attempt
        # Subtask tasks run in a context that tells the model wrapper about the attempt
        # timeout; set once here, each task's copy of it costs nothing more.
        self._context = contextvars.copy_context()
        self._context.run(caller_timeout.set, self.settings.subtask_timeout_s)
        request = state.request
        tokens = request.budget_tokens or self.settings.budget_tokens
        usd = request.budget_usd or self.settings.budget_usd
        self._budget = Budget(tokens, usd) if tokens is not None or usd is not None else None
        self._refused = False

    async def run(self) -> None:
        """Run until every subtask has a result; on cancellation, cancel what runs.

        An error in the bookkeeping itself (a bug, a store that cannot take a result)
        cancels what runs and is raised here, rather than leaving the run waiting forever.
        """
        try:
            self._pump()
            await self._finished.wait()
        except BaseException:
            await self._cancel_all()
            raise
        if self._crash is not None:
            await self._cancel_all()
            raise self._crash

    def _pump(self) -> None:
        ready, running = self._ready, self._running
        limit = self.settings.max_concurrency
        budget, state = self._budget, self.state
        create_task, context = self._loop.create_task, self._context
        if budget is None and len(ready) <= limit - len(running):
            # Everything ready gets a slot: the heap's order would change nothing.
            self._ready = []
            for _, _, sid in ready:
                running[sid] = create_task(self._run(sid), context=context.copy())
            return
        while ready and len(running) < limit:
            sid = heapq.heappop(ready)[2]
            if budget is not None:
                # Subtasks waiting to retry will spend too: they count as running here.
                ahead = len(running) + len(self._resting)
                refusal = budget.refusal(state.spent_tokens, state.spent_usd, ahead)
                if refusal is not None:
                    self._refuse(sid, refusal)
                    continue
            running[sid] = create_task(self._run(sid), context=context.copy())

    def _refuse(self, sid: str, why: str) -> None:
        error = BudgetExceededError(f"not started: {why}")
        if not self._refused:
            self._refused = True
            self.state.warnings.append(f"budget exceeded; subtasks were not started ({why})")
        skipped = SubtaskResult(sid, SubtaskStatus.SKIPPED, error=ErrorInfo.of(error))
        if commit_result(self.state, skipped, str(error)):
            self._open -= 1
        self._skip_downstream(sid)
        if not self._open:
            self._finished.set()

    async def _run(self, sid: str) -> None:
        # One coroutine per subtask, retries included: every frame here is paid per subtask.
        state = self.state
        deadlines = self._deadlines
        started = time.perf_counter()
        try:
            agent, messages = self._prepare(sid)
        except Exception as exc:  # a bug in prompt building must not hang the workflow
            return self._finish(SubtaskResult(sid, SubtaskStatus.FAILED, error=ErrorInfo.of(exc)))
        timeout = self.settings.subtask_timeout_s
        subtask = self._subtasks[sid]
        task = self._running[sid]
        keys = self._keys
        attempt = 0
        while True:
            attempt += 1
            state.bus.emit(SubtaskStarted, sid, agent.name, attempt)
            key = next(keys)
            deadlines.arm(key, task)
            try:
                done = await state.runtime.runner.run(
                    AgentTask(state.workflow_id, subtask, attempt, agent, messages, timeout)
                )
            except asyncio.CancelledError:
                if not deadlines.disarm(key):
                    raise
                error: Exception = SubtaskTimeoutError(f"subtask {sid!r} took over {timeout:g} s")
            except Exception as exc:
                deadlines.disarm(key)
                error = exc
            else:
                deadlines.disarm(key)
                return self._finish(self._succeeded(sid, agent.name, done, attempt, started), done)
            if attempt >= self.settings.max_attempts or not is_retryable(error):
                return self._finish(
                    SubtaskResult(
                        sid,
                        SubtaskStatus.FAILED,
                        agent=agent.name,
                        latency_s=time.perf_counter() - started,
                        attempts=attempt,
                        error=ErrorInfo.of(error),
                    )
                )
            # Jittered, so that subtasks failing together (a provider outage) do not all come
            # back at once; a rate limit's Retry-After is honoured.
            retry_after = error.retry_after if isinstance(error, RateLimitedError) else None
            delay = backoff_delay(attempt, self.settings.retry_backoff_s, math.inf, retry_after)
            state.bus.emit(SubtaskRetried, sid, attempt, str(error), delay)
            # A subtask waiting to retry runs nothing: its slot goes to other work meanwhile.
            self._resting[sid] = self._running.pop(sid)
            self._fill_slots()
            await asyncio.sleep(delay)
            await self._take_slot(sid)

    def _prepare(self, sid: str) -> tuple[AgentSpec, tuple[Message, ...]]:
        state = self.state
        agent = state.agents[state.assignments[sid].agent]
        messages = subtask_messages(
            state.request.text,
            self._subtasks[sid],
            agent,
            state.results,
            self.settings.max_dependency_chars,
            self.settings.max_quoted_chars,
        )
        return agent, messages

    def _finish(self, result: SubtaskResult, call: Completion | None = None) -> None:
        try:
            del self._running[result.subtask_id]
            if call is not None:
                self.state.record_call("execute", call, result.subtask_id)
            self._settle(result)
        except Exception as exc:
            if self._crash is None:
                self._crash = exc
            self._finished.set()

    @staticmethod
    def _succeeded(
        sid: str, agent: str, done: Completion, attempts: int, started: float
    ) -> SubtaskResult:
        return SubtaskResult(
            sid,
            _SUCCEEDED,
            agent,
            done.text,
            done.tokens_in,
            done.tokens_out,
            done.cost_usd,
            time.perf_counter() - started,
            attempts,
        )

    def _settle(self, result: SubtaskResult) -> None:
        if commit_result(self.state, result):
            self._open -= 1
        if self._budget is not None:
            self._budget.record(result.tokens_in + result.tokens_out, result.cost_usd)
        sid = result.subtask_id
        if result.status is _SUCCEEDED:
            waiting, done, subtasks = self._waiting, self.state.results, self._subtasks
            for succ in subtasks[sid].graph.successors:
                waiting[succ] -= 1
                if not waiting[succ] and succ not in done:
                    heapq.heappush(
                        self._ready, (subtasks[succ].graph.slack, self._order[succ], succ)
                    )
        else:
            self._skip_downstream(sid)
        self._fill_slots()
        if not self._open:
            self._finished.set()

    def _fill_slots(self) -> None:
        """Give free slots to subtasks back from a retry's backoff first, then to ready ones."""
        waiters = self._waiters
        while waiters and len(self._running) < self.settings.max_concurrency:
            sid, wake = waiters.popleft()
            if not wake.done():  # the slot is theirs from now: held before they resume
                self._running[sid] = self._resting.pop(sid)
                wake.set_result(None)
        if self._ready:
            self._pump()

    async def _take_slot(self, sid: str) -> None:
        if not self._waiters and len(self._running) < self.settings.max_concurrency:
            self._running[sid] = self._resting.pop(sid)
            return
        wake = self._loop.create_future()
        self._waiters.append((sid, wake))
        await wake

    def _skip_downstream(self, failed: str) -> None:
        reason = f"dependency {failed!r} {self.state.results[failed].status.value}"
        queue = deque(self._subtasks[failed].graph.successors)
        while queue:
            sid = queue.popleft()
            if commit_result(self.state, SubtaskResult(sid, SubtaskStatus.SKIPPED), reason):
                self._open -= 1
                queue.extend(self._subtasks[sid].graph.successors)

    async def _cancel_all(self) -> None:
        running = [*self._running.values(), *self._resting.values()]
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        for s in self.plan.subtasks:
            if commit_result(self.state, SubtaskResult(s.id, SubtaskStatus.CANCELLED)):
                self._open -= 1
