"""Stage 4, execution: run every subtask as soon as all of its dependencies have succeeded.

Dispatch is driven by completions, not by layers: when a subtask finishes, each successor
whose last dependency that was is started at once, within a global concurrency limit. A
subtask that fails is retried alone, with backoff, while the rest go on (its slot with them:
it takes the next free one when its backoff is over); when it finally fails, everything
downstream of it is skipped with the reason, and independent branches finish. The work per
subtask is constant, so a plan of n subtasks costs O(n + edges); this is the engine's hot
path, which is why it is written with few layers and few objects.

With stage 4b (the workflow has a shared context), a :class:`~automatos.phases.execute.
coordinate.Coordinator` adds the findings to each prompt and shares those of each answer
before its result is committed; without it, the dispatcher pays one ``None`` test per subtask
for it.

A resumed workflow (:mod:`automatos.phases.resume`) comes with the results its first process
kept: those subtasks are not started again, their successors wait only for the others, and
what depends on one that failed is skipped.

An agent with tools answers through a tool loop (its runner's): the answer's
:attr:`~automatos.llm.Completion.rounds` are recorded as the model calls they were, and each
of its :attr:`~automatos.llm.Completion.tool_uses` is announced (a
:class:`~automatos.domain.event.ToolCalled` event) as the attempt returns, before the
subtask's result. A loop stopped by its bounds raises with what it spent
(:class:`~automatos.errors.ToolLoopError`'s ``spent``), as does one that failed otherwise
after a model call: that is recorded and counted the same way. An attempt is told the tokens
the workflow's budget leaves, which bound its loop. An answer without tools pays two
attribute tests for all this.
"""

from __future__ import annotations

import asyncio
import contextvars
import heapq
import itertools
import math
import time
from collections import deque
from collections.abc import Callable, Hashable
from typing import Any

from automatos.abandoned import abandon
from automatos.deadlines import DeadlineQueue, caller_timeout
from automatos.domain.agent import AgentSpec
from automatos.domain.context import ContextItem
from automatos.domain.event import SubtaskRetried, SubtaskStarted, ToolCalled
from automatos.domain.level import Phase
from automatos.domain.plan import Subtask
from automatos.domain.result import ErrorInfo, SubtaskResult, SubtaskStatus
from automatos.errors import (
    AutomatosError,
    BudgetExceededError,
    EmptyAnswerError,
    ExecutionError,
    RateLimitedError,
    RunnerError,
    SubtaskTimeoutError,
    WorkflowCancelledError,
    WorkflowTimeoutError,
    describe_exception,
    is_retryable,
)
from automatos.llm.base import Completion, Message, ToolUse, completion_problem
from automatos.llm.managed import ManagedLLM
from automatos.llm.retry import backoff_delay
from automatos.phases.contracts import ASSIGNMENTS, PLAN, RESULTS
from automatos.phases.execute.answer import answer_problem
from automatos.phases.execute.commit import commit_result
from automatos.phases.execute.coordinate import Coordinator, close_shared
from automatos.phases.execute.prompt import fit_context, is_whole_request, subtask_messages
from automatos.phases.execute.tool_loop import spent_of
from automatos.phases.state import WorkflowState
from automatos.prompts.catalog import EXECUTOR
from automatos.runners.base import AgentTask
from automatos.runners.local import LocalTaskRunner, subtask_events

__all__ = ["Dispatcher", "ExecuteStage"]

_SUCCEEDED = SubtaskStatus.SUCCEEDED


class ExecuteStage:
    """Stage 4."""

    name = "execute"
    phase = Phase.EXECUTE
    reads = frozenset({PLAN, ASSIGNMENTS})
    writes = frozenset({RESULTS})

    async def run(self, state: WorkflowState) -> None:
        """Run the plan's subtasks through the runtime's runner; the workflow's shared
        context (stage 4b) is closed when they are done, however the stage ends."""
        try:
            await Dispatcher(state).run()
        finally:
            await close_shared(state)


class Dispatcher:
    """Runs one plan; create one per workflow, inside the event loop.

    Whatever the runner does, every subtask ends with one result: an answer that is not a
    :class:`~automatos.llm.Completion`, an empty answer, or any exception that is not an
    :class:`~automatos.errors.AutomatosError` (``BaseException`` included, and a
    ``CancelledError`` nobody asked for) fails the attempt with a typed error, and retries
    apply as usual. A runner that ignores its cancellation for ``execution.cancel_grace_s``
    is abandoned: its subtask fails and the workflow goes on. Only a cancellation of the
    workflow itself (or its deadline) cancels the subtasks.
    """

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
        done = state.execution.results
        self._failed_before: list[str] = []
        """Subtasks of a resumed workflow that failed before: what depends on them is
        skipped when the run starts."""
        if done:  # a resumed workflow: its results kept from before do not run again
            self._carry(done)
        heapq.heapify(self._ready)
        self._loop = asyncio.get_running_loop()
        self._running: dict[str, asyncio.Task[None]] = {}
        """Subtasks holding a slot of the concurrency limit."""
        self._resting: dict[str, asyncio.Task[None]] = {}
        """Subtasks waiting to retry, or for a slot to retry in."""
        self._waiters: deque[tuple[str, asyncio.Future[None]]] = deque()
        self._tries: dict[str, int] = {}
        """The attempt each running subtask is on."""
        self._started: dict[str, float] = {}
        """When each subtask started."""
        self._spent: dict[str, list[Completion]] = {}
        """What the rejected answers of each subtask cost (only those that had one), and
        what its tool loops spent before they were stopped."""
        self._tool_uses: dict[str, tuple[int, tuple[ToolUse, ...]]] = {}
        """The last attempt of each subtask that called tools, and its tool calls."""
        self._abandoned: set[str] = set()
        self._open = len(self.plan.subtasks) - len(done)
        self._finished = asyncio.Event()
        self._crash: Exception | None = None
        self._deadlines = DeadlineQueue(
            self.settings.subtask_timeout_s,
            grace=self.settings.cancel_grace_s,
            on_stuck=self._abandon,
        )
        self._keys = itertools.count()  # one deadline key per attempt
        # Subtask tasks run in a context that tells the model wrapper about the attempt
        # timeout; set once here, each task's copy of it costs nothing more.
        self._context = contextvars.copy_context()
        self._context.run(caller_timeout.set, self.settings.subtask_timeout_s)
        self._context.run(subtask_events.set, state.bus.emit)  # "queued" for a one-at-a-time model
        self._executor_prompt = EXECUTOR
        if any(not is_whole_request(state.request.text, s) for s in self.plan.subtasks):
            # Only a run whose steps are framed by the template counts as using it (its
            # A/B outcomes are the template's to answer for).
            self._executor_prompt = state.preparation.prompts.choice("executor").text
        self._budget = state.budget
        self._refused = False
        self._stopping = False
        runner = state.runtime.runner
        self._runner_name = getattr(runner, "name", None) or type(runner).__name__
        # The engine's own runner hands back what the model wrapper checked already.
        self._checked = isinstance(runner, LocalTaskRunner) and isinstance(runner.llm, ManagedLLM)
        shared = state.execution.shared
        self._coordinator = Coordinator(state, shared) if shared is not None else None

    async def run(self) -> None:
        """Run until every subtask has a result; on cancellation, cancel what runs.

        A cancellation (of the workflow, or by its deadline) cancels what runs and commits
        every subtask still open as ``cancelled``. An error in the bookkeeping itself (a bug,
        a store that cannot take a result) does the same and is raised here, rather than
        leaving the run waiting forever.
        """
        if self.state.deadline is not None and not self.state.time_left():
            await self._cancel_all()  # reached after the deadline: account, start nothing
            return
        try:
            for sid in self._failed_before:
                self._skip_downstream(sid)
            self._pump()
            if self._open:
                await self._finished.wait()
        except BaseException:
            await self._cancel_all()
            raise
        finally:
            self._deadlines.close()
        if self._crash is not None:
            await self._cancel_all()
            raise self._crash

    def _carry(self, done: dict[str, SubtaskResult]) -> None:
        """Count the results a resumed workflow kept (each of a subtask of this plan) as
        done: they are not started again, and their successors wait only for the others."""
        subtasks, waiting = self._subtasks, self._waiting
        self._ready = [item for item in self._ready if item[2] not in done]
        for sid, result in done.items():
            if result.status is _SUCCEEDED:
                for succ in subtasks[sid].graph.successors:
                    waiting[succ] -= 1
            else:
                self._failed_before.append(sid)
        self._ready += [
            (subtasks[sid].graph.slack, self._order[sid], sid)
            for sid, left in waiting.items()
            if not left and sid not in done
        ]

    def _pump(self) -> None:
        if self._stopping:
            return
        ready, running = self._ready, self._running
        limit = self.settings.max_concurrency
        budget = self._budget
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
                refusal = self._budget_refusal(len(running) + len(self._resting))
                if refusal is not None:
                    self._refuse(sid, refusal)
                    continue
            running[sid] = create_task(self._run(sid), context=context.copy())

    def _budget_refusal(self, ahead: int) -> str | None:
        budget, state = self._budget, self.state
        if budget is None:
            return None
        return budget.refusal(state.spent_tokens, state.spent_usd, ahead, state.unpriced)

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
        try:
            state = self.state
            deadlines = self._deadlines
            started = time.perf_counter()
            subtask = self._subtasks[sid]
            # Stage 4b's coordinator, kept while this subtask is asked for findings. (One local
            # more in a frame every subtask pays for: memory is measured per subtask.)
            sharing = self._coordinator
            try:
                if sharing is None:
                    agent, messages = self._prepare(sid)
                else:
                    agent, messages = await self._prepare_coordinated(subtask, sharing)
                    if not sharing.asks(subtask):
                        sharing = None
                run = state.runtime.runner.run
            except Exception as exc:  # a bug in prompt building must not hang the workflow
                return self._finish(
                    SubtaskResult(sid, SubtaskStatus.FAILED, error=ErrorInfo.of(exc))
                )
            timeout = self.settings.subtask_timeout_s
            task = self._running[sid]
            keys, tries, bus, checked = self._keys, self._tries, state.bus, self._checked
            attempt = 0
            self._started[sid] = started
            spent = self._spent
            budget = self._budget
            while True:
                attempt += 1
                if bus.gates:  # a slow reader of the stream holds new work back
                    await bus.ready()
                if attempt > 1:  # the first is implied: a dict write less per subtask
                    tries[sid] = attempt
                bus.emit(SubtaskStarted, sid, agent.name, attempt)
                key = next(keys)
                deadlines.arm(key, task)
                try:
                    done = await run(
                        AgentTask(
                            state.workflow_id,
                            subtask,
                            attempt,
                            agent,
                            messages,
                            timeout,
                            token_budget=None if budget is None else state.tokens_left(),
                        )
                    )
                except BaseException as exc:  # a timeout, or a plugin's failure of any type
                    error: AutomatosError = self._failure(sid, attempt, key, task, exc)
                else:
                    deadlines.disarm(key)
                    broken = None if checked else completion_problem(done)
                    if broken is None:
                        if done.tool_uses:  # announced before the result they led to
                            self._tools_used(sid, attempt, done.tool_uses)
                        text = done.text
                        if sharing is not None:  # the answer without its findings is judged
                            text = sharing.take(sid, text)
                        # An answer that starts with a letter or digit has substance: most do.
                        problem = None if text[:1].isalnum() else answer_problem(text)
                        if problem is None:
                            if sharing is not None:  # before the commit: it starts dependents
                                await self._share(sharing, sid, agent.name, done, attempt, text)
                            return self._finish(
                                self._succeeded(sid, agent.name, done, attempt, started, text),
                                done,
                            )
                        spent.setdefault(sid, []).append(done)
                        self._record(sid, done)
                        error = EmptyAnswerError(f"agent {agent.name!r}: {problem}")
                    else:
                        error = RunnerError(self._runner_name, f"returned {broken}")
                if sid in self._abandoned:
                    return None  # its result was committed when it was given up on
                if task.cancelling():  # cancelled meanwhile (a blocked loop delivers both at once)
                    raise asyncio.CancelledError
                if attempt >= self.settings.max_attempts or not is_retryable(error):
                    return self._finish(self._failed(sid, agent.name, attempt, started, error))
                # Jittered, so that subtasks failing together (a provider outage) do not all come
                # back at once; a rate limit's Retry-After is honoured.
                retry_after = error.retry_after if isinstance(error, RateLimitedError) else None
                delay = backoff_delay(attempt, self.settings.retry_backoff_s, math.inf, retry_after)
                bus.emit(SubtaskRetried, sid, attempt, str(error), delay)
                # A subtask waiting to retry runs nothing: its slot goes to other work meanwhile.
                self._resting[sid] = self._running.pop(sid)
                self._fill_slots()
                await asyncio.sleep(delay)
                await self._take_slot(sid)
                refusal = self._budget_refusal(len(self._running) + len(self._resting) - 1)
                if refusal is not None:  # what the others spent meanwhile counts
                    error = BudgetExceededError(f"retry not started: {refusal}")
                    return self._finish(self._failed(sid, agent.name, attempt, started, error))
        except Exception as exc:  # a bug here must end the run, not leave it waiting
            self._crashed(exc)

    def _failure(
        self, sid: str, attempt: int, key: int, task: asyncio.Task[None], exc: BaseException
    ) -> AutomatosError:
        """The typed error of an attempt that raised ``exc``: its timeout (whatever the runner
        made of the cancellation), the runner's own engine error, or a :class:`RunnerError`.
        What a tool loop spent before it failed or was stopped (the error's ``spent``:
        :func:`~automatos.phases.execute.tool_loop.spent_of`) is recorded first, whatever the
        error becomes: those model calls were made.

        Raises:
            asyncio.CancelledError: the workflow is being cancelled; that wins over a timeout.
        """
        expired = self._deadlines.disarm(key)
        try:  # a plugin's exception may answer anything, even to getattr
            spent = spent_of(exc)
        except Exception:
            spent = None
        if spent is not None and completion_problem(spent) is None:
            self._spent.setdefault(sid, []).append(spent)
            self._record(sid, spent)
            if spent.tool_uses:
                self._tools_used(sid, attempt, spent.tool_uses)
        if task.cancelling():
            if isinstance(exc, asyncio.CancelledError):
                raise exc
            raise asyncio.CancelledError
        if expired:
            return SubtaskTimeoutError(
                f"subtask {sid!r} took over {self.settings.subtask_timeout_s:g} s"
            )
        if isinstance(exc, AutomatosError):
            return exc
        if isinstance(exc, asyncio.CancelledError):
            return RunnerError(self._runner_name, "raised CancelledError without being cancelled")
        error = RunnerError(self._runner_name, f"raised {describe_exception(exc, 2000)}")
        error.__cause__ = exc
        return error

    def _prepare(self, sid: str) -> tuple[AgentSpec, tuple[Message, ...]]:
        state = self.state
        agent = state.agents[state.planning.assignments[sid].agent]
        messages = self._fitted(
            sid,
            lambda items: subtask_messages(
                state.request.text,
                self._subtasks[sid],
                agent,
                state.execution.results,
                self.settings.max_dependency_chars,
                self.settings.max_quoted_chars,
                self._executor_prompt,
                context=items,
            ),
        )
        return agent, messages

    async def _prepare_coordinated(
        self, subtask: Subtask, coordinator: Coordinator
    ) -> tuple[AgentSpec, tuple[Message, ...]]:
        state = self.state
        agent = state.agents[state.planning.assignments[subtask.id].agent]
        findings = await coordinator.visible(subtask)
        instruction = coordinator.instruction if coordinator.asks(subtask) else None
        messages = self._fitted(
            subtask.id,
            lambda items: subtask_messages(
                state.request.text,
                subtask,
                agent,
                state.execution.results,
                self.settings.max_dependency_chars,
                self.settings.max_quoted_chars,
                self._executor_prompt,
                findings=findings,
                findings_chars=coordinator.budget,
                instruction=instruction,
                context=items,
            ),
        )
        return agent, messages

    def _fitted(
        self, sid: str, build: Callable[[tuple[ContextItem, ...]], tuple[Message, ...]]
    ) -> tuple[Message, ...]:
        """The subtask's messages, with as much of stage 3's context as the model's window
        leaves room for beside the step, its quotes and the answer."""
        state = self.state
        record = state.preparation.context.get(sid)
        if record is None or not record.items:
            return build(())
        profile = state.runtime.profile
        window = profile.context_window
        limit = window - min(state.runtime.settings.llm.max_tokens, window // 8)
        messages, left_out = fit_context(build, record.items, limit, profile.count_tokens)
        if left_out:
            state.warnings.append(
                f"subtask {sid!r}: {left_out} of its {len(record.items)} context item(s) were "
                f"left out to fit the model's window ({window} tokens)"
            )
        return messages

    async def _share(
        self, sharing: Coordinator, sid: str, agent: str, done: Completion, attempt: int, text: str
    ) -> None:
        """Share the answer's findings; cancelled meanwhile (the workflow's deadline), the
        answer is committed all the same: the model's work and its cost are not lost."""
        try:
            await sharing.share(sid, agent)
        except asyncio.CancelledError:
            started = self._started.get(sid, time.perf_counter())
            self._finish(self._succeeded(sid, agent, done, attempt, started, text), done)
            raise

    def _tools_used(self, sid: str, attempt: int, uses: tuple[ToolUse, ...]) -> None:
        """Announce an attempt's tool calls, and keep them for the subtask's result."""
        self._tool_uses[sid] = (attempt, uses)
        emit = self.state.bus.emit
        for use in uses:
            emit(
                ToolCalled,
                sid,
                attempt,
                use.tool,
                use.arguments_digest,
                use.latency_s,
                use.outcome,
                use.error,
            )

    def _record(self, sid: str, done: Completion) -> None:
        try:
            self.state.record_call("execute", done, sid)
        except Exception as exc:
            self._crashed(exc)

    def _finish(self, result: SubtaskResult, call: Completion | None = None) -> None:
        if self._running.pop(result.subtask_id, None) is None:
            return  # abandoned earlier: its result is already committed
        try:
            if call is not None:
                self.state.record_call("execute", call, result.subtask_id)
            self._settle(result)
        except Exception as exc:
            self._crashed(exc)
        return

    def _crashed(self, exc: Exception) -> None:
        if self._crash is None:
            self._crash = exc
        self._finished.set()

    def _succeeded(
        self, sid: str, agent: str, done: Completion, attempts: int, started: float, output: str
    ) -> SubtaskResult:
        tokens_in, tokens_out, cost = done.tokens_in, done.tokens_out, done.cost_usd
        if self._spent:  # rejected answers before this one (rare): what they cost counts
            for c in self._spent.get(sid, ()):
                tokens_in += c.tokens_in
                tokens_out += c.tokens_out
                cost += c.cost_usd
        return SubtaskResult(
            sid,
            _SUCCEEDED,
            agent,
            output,
            tokens_in,
            tokens_out,
            cost,
            time.perf_counter() - started,
            attempts,
            None,
            done.tool_uses,
        )

    def _failed(
        self, sid: str, agent: str, attempts: int, started: float, error: BaseException
    ) -> SubtaskResult:
        spent = self._spent.get(sid, ())
        last = self._tool_uses.get(sid)
        return SubtaskResult(
            sid,
            SubtaskStatus.FAILED,
            agent=agent,
            tokens_in=sum(c.tokens_in for c in spent),
            tokens_out=sum(c.tokens_out for c in spent),
            cost_usd=sum(c.cost_usd for c in spent),
            latency_s=time.perf_counter() - started,
            attempts=attempts,
            error=ErrorInfo.of(error),
            tool_calls=last[1] if last is not None and last[0] == attempts else (),
        )

    def _settle(self, result: SubtaskResult) -> None:
        if commit_result(self.state, result):
            self._open -= 1
        if self._budget is not None:
            self._budget.record(result.tokens_in + result.tokens_out, result.cost_usd)
        sid = result.subtask_id
        if result.status is _SUCCEEDED:
            waiting, done, subtasks = self._waiting, self.state.execution.results, self._subtasks
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
        reason = f"dependency {failed!r} {self.state.execution.results[failed].status.value}"
        queue = deque(self._subtasks[failed].graph.successors)
        while queue:
            sid = queue.popleft()
            if commit_result(self.state, SubtaskResult(sid, SubtaskStatus.SKIPPED), reason):
                self._open -= 1
                queue.extend(self._subtasks[sid].graph.successors)

    def _abandon(self, _key: Hashable, task: asyncio.Task[Any]) -> None:
        """A runner ignored its attempt's cancellation: stop waiting for it."""
        sid = next((s for s, t in self._running.items() if t is task), None)
        if sid is None:
            return
        grace = self.settings.cancel_grace_s
        abandon(task)
        self._abandoned.add(sid)
        self.state.warnings.append(
            f"subtask {sid!r}: runner {self._runner_name} ignored the cancellation of its "
            f"timed-out attempt for {grace:g} s and was abandoned"
        )
        error = SubtaskTimeoutError(
            f"subtask {sid!r} took over {self.settings.subtask_timeout_s:g} s, and its runner "
            f"did not stop within {grace:g} s of being cancelled"
        )
        agent = self.state.planning.assignments[sid].agent
        started = self._started.get(sid, time.perf_counter())
        self._finish(self._failed(sid, agent, self._tries.get(sid, 1), started, error))

    async def _cancel_all(self) -> None:
        """Cancel what runs or waits to retry; commit every open subtask as cancelled."""
        self._stopping = True
        tasks = [*self._running.values(), *self._resting.values()]
        for task in tasks:
            task.cancel()
        if tasks:
            _, stuck = await asyncio.wait(tasks, timeout=self.settings.cancel_grace_s)
            for task in stuck:
                abandon(task)
            if stuck:
                self.state.warnings.append(
                    f"{len(stuck)} subtask(s) of runner {self._runner_name} ignored the "
                    "workflow's cancellation and were abandoned"
                )
        self._running.clear()
        self._resting.clear()
        state = self.state
        if state.deadline is not None and not state.time_left():
            error: ExecutionError = WorkflowTimeoutError(
                f"the workflow's deadline ({self.settings.workflow_timeout_s:g} s) passed "
                "before this subtask finished"
            )
        else:
            error = WorkflowCancelledError(
                "the workflow was cancelled before this subtask finished"
            )
        info = ErrorInfo.of(error)
        for s in self.plan.subtasks:
            if s.id not in state.execution.results:
                cancelled = SubtaskResult(s.id, SubtaskStatus.CANCELLED, error=info)
                if commit_result(state, cancelled, str(error)):
                    self._open -= 1
