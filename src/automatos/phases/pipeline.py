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
from automatos.phases.events import EventBus
from automatos.phases.execute.dispatch import ExecuteStage
from automatos.phases.learn.respond import RespondStage, build_result
from automatos.phases.plan.assign import AssignStage
from automatos.phases.plan.decompose import DecomposeStage, RecipeStage
from automatos.phases.state import Runtime, WorkflowState

__all__ = ["Stage", "run_workflow", "select_stages"]


class Stage(Protocol):
    """One stage of the pipeline."""

    name: str

    async def run(self, state: WorkflowState) -> None:
        """Advance ``state``."""
        ...


def select_stages(request: WorkflowRequest) -> Sequence[Stage]:
    """The stages a request needs; a recipe skips decomposition but not its checks."""
    first: Stage = RecipeStage() if request.is_recipe else DecomposeStage()
    return (first, AssignStage(), ExecuteStage(), RespondStage())


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
    if on_event is not None:
        bus.subscribe(on_event)
    state = WorkflowState(request=request, runtime=runtime, bus=bus)
    bus.emit(WorkflowStarted, request=request.text)
    status = WorkflowStatus.FAILED
    try:
        for stage in select_stages(request):
            await _run_stage(stage, state)
        result = build_result(state)
        status = result.status
        return result
    except asyncio.CancelledError:
        status = WorkflowStatus.CANCELLED
        raise
    finally:
        bus.emit(WorkflowFinished, status=status.value, elapsed_s=_elapsed(state.started))


async def _run_stage(stage: Stage, state: WorkflowState) -> None:
    state.bus.emit(StageStarted, stage=stage.name)
    started = time.perf_counter()
    try:
        await stage.run(state)
    except BaseException as exc:
        state.bus.emit(
            StageFinished,
            stage=stage.name,
            elapsed_s=_elapsed(started),
            error=f"{type(exc).__name__}: {exc}",
        )
        raise
    state.stages.append(stage.name)
    state.bus.emit(StageFinished, stage=stage.name, elapsed_s=_elapsed(started))


def _elapsed(since: float) -> float:
    return time.perf_counter() - since
