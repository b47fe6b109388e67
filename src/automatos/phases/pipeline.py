"""The one orchestrator: runs the selected stages over a workflow state, emitting events.

The library, the CLI and (later) the HTTP server and the workers all call
:func:`run_workflow`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from automatos.domain.event import (
    Event,
    StageFinished,
    StageStarted,
    WorkflowFinished,
    WorkflowStarted,
)
from automatos.domain.request import WorkflowRequest
from automatos.domain.result import WorkflowResult, WorkflowStatus
from automatos.phases.evaluate.aggregate import AggregateStage
from automatos.phases.evaluate.assess import AssessStage
from automatos.phases.events import EventBus
from automatos.phases.execute.dispatch import ExecuteStage
from automatos.phases.learn.metrics import LearnStage
from automatos.phases.learn.respond import RespondStage, build_result
from automatos.phases.plan.decompose import DecomposeStage, RecipeStage
from automatos.phases.plan.select import SelectStage
from automatos.phases.state import Runtime, WorkflowState
from automatos.store.base import Store
from automatos.store.writer import BatchWriter

__all__ = ["Stage", "run_workflow", "select_stages"]


class Stage(Protocol):
    """One stage of the pipeline."""

    name: str

    async def run(self, state: WorkflowState) -> None:
        """Advance ``state``."""
        ...


def select_stages(request: WorkflowRequest, runtime: Runtime) -> Sequence[Stage]:
    """The stages a request needs; a recipe skips decomposition but not its checks.

    Learning runs when there is a store to learn into.
    """
    stages: list[Stage] = [RecipeStage() if request.is_recipe else DecomposeStage()]
    stages += [SelectStage(), ExecuteStage()]
    if runtime.settings.quality.enabled:
        stages += [AggregateStage(), AssessStage()]
    if runtime.store is not None:
        stages.append(LearnStage())
    stages.append(RespondStage())
    return stages


async def run_workflow(
    request: WorkflowRequest,
    runtime: Runtime,
    on_event: Callable[[Event], None] | None = None,
) -> WorkflowResult:
    """Run ``request`` through its stages and return the workflow result.

    Raises:
        AutomatosError: a stage could not go on (a plan error, no LLM, …); the events
            emitted so far, ending with ``workflow_finished``, describe where it stopped.
    """
    bus = EventBus(request.workflow_id)
    state = WorkflowState(request=request, runtime=runtime, bus=bus)
    store = runtime.store
    if store is not None:
        settings = runtime.settings.store
        await store.start_execution(
            request.workflow_id, request.text, {"recipe": request.is_recipe}
        )
        state.writer = BatchWriter(
            store, request.workflow_id, settings.batch_size, settings.flush_interval_s
        )
        bus.subscribe(state.writer.add_event)
    if on_event is not None:
        bus.subscribe(on_event)
    bus.emit(WorkflowStarted, request=request.text)
    status = WorkflowStatus.FAILED
    result: WorkflowResult | None = None
    error: BaseException | None = None
    problems: list[str] = []
    try:
        for stage in select_stages(request, runtime):
            await _run_stage(stage, state)
        state.warnings += bus.failures
        result = build_result(state)
        status = result.status
    except asyncio.CancelledError:
        status = WorkflowStatus.CANCELLED
        raise
    except BaseException as exc:
        error = exc
        raise
    finally:
        bus.emit(WorkflowFinished, status=status.value, elapsed_s=_elapsed(state.started))
        if store is not None:
            problems = await _finish_record(store, state, status, result, error)
    if problems:  # the caller gets its result even when its record could not be completed
        result = result.model_copy(update={"warnings": (*result.warnings, *problems)})
    return result


async def _finish_record(
    store: Store,
    state: WorkflowState,
    status: WorkflowStatus,
    result: WorkflowResult | None,
    error: BaseException | None,
) -> list[str]:
    """Complete the run's record; what could not be stored, one line each."""
    problems = []
    writer = state.writer
    if writer is not None:
        await writer.aclose()
        if writer.error is not None:
            problems.append(f"some records could not be stored: {writer.error}")
    try:
        await store.finish_execution(
            state.workflow_id,
            status=status.value,
            stages=state.stage_log,
            plan=state.plan.model_dump(mode="json") if state.plan is not None else None,
            totals=result.totals.model_dump(mode="json") if result is not None else None,
            final_answer=state.final_answer,
            error=f"{type(error).__name__}: {error}" if error is not None else None,
            quality=(
                state.quality_report.model_dump(mode="json")
                if state.quality_report is not None
                else None
            ),
        )
    except Exception as exc:  # a lost database must not cost the caller the result
        problems.append(f"the run's record could not be completed: {type(exc).__name__}: {exc}")
    return problems


async def _run_stage(stage: Stage, state: WorkflowState) -> None:
    state.bus.emit(StageStarted, stage=stage.name)
    started = time.perf_counter()
    try:
        await stage.run(state)
    except BaseException as exc:
        error = f"{type(exc).__name__}: {exc}"
        elapsed = _elapsed(started)
        state.stage_log.append({"stage": stage.name, "elapsed_s": elapsed, "error": error})
        state.bus.emit(StageFinished, stage=stage.name, elapsed_s=elapsed, error=error)
        raise
    elapsed = _elapsed(started)
    state.stages.append(stage.name)
    state.stage_log.append({"stage": stage.name, "elapsed_s": elapsed, "error": None})
    state.bus.emit(StageFinished, stage=stage.name, elapsed_s=elapsed)


def _elapsed(since: float) -> float:
    return time.perf_counter() - since
