"""Stage 4, execution: run every subtask as soon as all of its dependencies have succeeded.

Dispatch is driven by completions, not by layers: when a subtask finishes, each successor
whose last dependency that was is started at once, within a global concurrency limit. A
subtask that fails is retried alone, with backoff, while the rest go on; when it finally
fails, everything downstream of it is skipped with the reason, and independent branches
finish. The work per subtask is constant, so a plan of n subtasks costs O(n + edges).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque

from automatos.domain.event import SubtaskRetried, SubtaskStarted
from automatos.domain.result import ErrorInfo, LLMCall, SubtaskResult, SubtaskStatus
from automatos.errors import SubtaskTimeoutError, is_retryable
from automatos.phases.execute.commit import commit_result
from automatos.phases.execute.prompt import subtask_messages
from automatos.phases.state import WorkflowState
from automatos.runners.base import AgentTask

__all__ = ["Dispatcher", "ExecuteStage"]


class ExecuteStage:
    """Stage 4."""

    name = "execute"

    async def run(self, state: WorkflowState) -> None:
        """Run the plan's subtasks through the runtime's runner."""
        await Dispatcher(state).run()


class Dispatcher:
    """Runs one plan; create one per workflow."""

    def __init__(self, state: WorkflowState) -> None:
        self.state = state
        self.plan = state.require_plan()
        self.settings = state.runtime.settings.execution
        self._waiting = {s.id: len(s.graph.predecessors) for s in self.plan.subtasks}
        self._ready = deque(s.id for s in self.plan.subtasks if not s.graph.predecessors)
        self._running: dict[str, asyncio.Task[None]] = {}
        self._open = len(self.plan.subtasks)
        self._finished = asyncio.Event()

    async def run(self) -> None:
        """Run until every subtask has a result; on cancellation, cancel what runs."""
        self._pump()
        try:
            await self._finished.wait()
        except asyncio.CancelledError:
            await self._cancel_all()
            raise

    def _pump(self) -> None:
        limit = self.settings.max_concurrency
        while self._ready and len(self._running) < limit:
            sid = self._ready.popleft()
            self._running[sid] = asyncio.create_task(self._run_one(sid), name=f"subtask:{sid}")

    async def _run_one(self, sid: str) -> None:
        try:
            result = await self._attempts(sid)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug outside the runner must not hang the workflow
            result = SubtaskResult(
                subtask_id=sid, status=SubtaskStatus.FAILED, error=ErrorInfo.of(exc)
            )
        del self._running[sid]
        self._settle(result)

    async def _attempts(self, sid: str) -> SubtaskResult:
        state = self.state
        subtask = self.plan.by_id[sid]
        agent = state.agent_for(sid)
        messages = subtask_messages(
            state.request.text, subtask, agent, state.results, self.settings.max_dependency_chars
        )
        timeout = self.settings.subtask_timeout_s
        started = time.perf_counter()
        attempt = 0
        while True:
            attempt += 1
            state.bus.emit(SubtaskStarted, subtask_id=sid, agent=agent.name, attempt=attempt)
            task = AgentTask.model_construct(
                workflow_id=state.workflow_id,
                subtask_id=sid,
                attempt=attempt,
                agent=agent,
                messages=messages,
                timeout_s=timeout,
            )
            try:
                async with asyncio.timeout(timeout):
                    out = await state.runtime.runner.run(task)
            except TimeoutError:
                error: Exception = SubtaskTimeoutError(f"subtask {sid!r} took over {timeout:g} s")
            except Exception as exc:
                error = exc
            else:
                state.llm_calls.append(
                    LLMCall.model_construct(
                        stage="execute",
                        model=out.model,
                        subtask_id=sid,
                        tokens_in=out.tokens_in,
                        tokens_out=out.tokens_out,
                        cost_usd=out.cost_usd,
                        latency_s=out.latency_s,
                    )
                )
                return SubtaskResult.model_construct(
                    subtask_id=sid,
                    status=SubtaskStatus.SUCCEEDED,
                    agent=agent.name,
                    output=out.text,
                    tokens_in=out.tokens_in,
                    tokens_out=out.tokens_out,
                    cost_usd=out.cost_usd,
                    latency_s=time.perf_counter() - started,
                    attempts=attempt,
                    error=None,
                )
            if attempt >= self.settings.max_attempts or not is_retryable(error):
                return SubtaskResult(
                    subtask_id=sid,
                    status=SubtaskStatus.FAILED,
                    agent=agent.name,
                    latency_s=time.perf_counter() - started,
                    attempts=attempt,
                    error=ErrorInfo.of(error),
                )
            delay = self.settings.retry_backoff_s * 2 ** (attempt - 1)
            state.bus.emit(
                SubtaskRetried, subtask_id=sid, attempt=attempt, error=str(error), delay_s=delay
            )
            await asyncio.sleep(delay)

    def _settle(self, result: SubtaskResult) -> None:
        if commit_result(self.state, result):
            self._open -= 1
        sid = result.subtask_id
        successors = self.plan.by_id[sid].graph.successors
        if result.status is SubtaskStatus.SUCCEEDED:
            for succ in successors:
                self._waiting[succ] -= 1
                if not self._waiting[succ] and succ not in self.state.results:
                    self._ready.append(succ)
        else:
            self._skip_downstream(sid)
        self._pump()
        if not self._open:
            self._finished.set()

    def _skip_downstream(self, failed: str) -> None:
        reason = f"dependency {failed!r} {self.state.results[failed].status.value}"
        queue = deque(self.plan.by_id[failed].graph.successors)
        while queue:
            sid = queue.popleft()
            skipped = SubtaskResult(subtask_id=sid, status=SubtaskStatus.SKIPPED)
            if commit_result(self.state, skipped, reason):
                self._open -= 1
                queue.extend(self.plan.by_id[sid].graph.successors)

    async def _cancel_all(self) -> None:
        running = list(self._running.values())
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        for s in self.plan.subtasks:
            cancelled = SubtaskResult(subtask_id=s.id, status=SubtaskStatus.CANCELLED)
            if commit_result(self.state, cancelled):
                self._open -= 1
