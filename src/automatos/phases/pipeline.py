"""The one orchestrator: runs the selected stages over a workflow state, emitting events.

The library, the CLI and (later) the HTTP server and the workers all call
:func:`run_workflow`; :func:`resume_workflow` takes over a run whose process stopped (see
:mod:`automatos.phases.resume`) and goes on with the same stages.

A run's record is held by an owner token, fresh for each process that runs it (see
:class:`~automatos.store.base.Store`). A process that was only stalled past its lease while
another resumed its run finds, when it goes on, that the store refuses its writes
(:class:`~automatos.errors.RunTakenOverError`): its workflow is cancelled at once and ends
with that error, writing nothing more into the record, which is the resumer's.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
import uuid
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from automatos.domain.collaboration import PromptUse
from automatos.domain.event import (
    Event,
    LevelChosen,
    PlanReady,
    StageFinished,
    StageStarted,
    WorkflowFinished,
    WorkflowResumed,
    WorkflowStarted,
)
from automatos.domain.level import LevelChoice, Phase
from automatos.domain.request import WorkflowRequest
from automatos.domain.result import LLMCall, WorkflowResult, WorkflowStatus
from automatos.errors import (
    AutomatosError,
    ConfigurationError,
    InvalidRequestError,
    RunTakenOverError,
    StageError,
    StoreError,
    WorkflowTimeoutError,
    describe_exception,
    describe_value,
)
from automatos.phases.contracts import (
    ASSIGNMENTS,
    PLAN,
    REQUEST,
    SHARED,
    Stage,
    check_stages,
    unwritten,
)
from automatos.phases.events import EventBus
from automatos.phases.execute.coordinate import close_shared
from automatos.phases.learn.respond import build_result
from automatos.phases.plan.level import choose_level
from automatos.phases.resume import (
    checkpoint_of,
    plans,
    request_extra,
    restore,
    stored_level,
    stored_request,
)
from automatos.phases.selector import PhaseSelector, StageSelection
from automatos.phases.state import Runtime, WorkflowState
from automatos.prompts.base import PromptStore
from automatos.store.base import Store, StoredRun
from automatos.store.writer import BatchWriter

__all__ = ["resume_workflow", "run_workflow", "select_stages"]

_log = logging.getLogger(__name__)


async def run_workflow(
    request: WorkflowRequest,
    runtime: Runtime,
    on_event: Callable[[Event], object] | None = None,
    *,
    gate: asyncio.Event | None = None,
) -> WorkflowResult:
    """Run ``request`` through its stages and return the workflow result.

    ``gate``, while clear, holds new work back (a slow reader of the events). With
    ``execution.workflow_timeout_s`` set, the workflow ends by its deadline: what still runs
    is cancelled, every subtask is accounted for, and the result says so in its warnings.

    Raises:
        AutomatosError: a stage could not go on (a plan error, no LLM, …); the events
            emitted so far, ending with ``workflow_finished``, describe where it stopped.
            A level or a stage list that cannot be chosen (a failing selector, a stage
            without its input) stops the workflow before any event or record.
        WorkflowTimeoutError: the deadline passed before there was a plan.
    """
    limit = runtime.settings.plan.max_request_chars
    if len(request.text) > limit:  # a recipe's request too: every subtask's prompt quotes it
        raise InvalidRequestError(
            f"the request is {len(request.text)} characters long; the limit is {limit} "
            "(setting plan.max_request_chars)"
        )
    bus = EventBus(request.workflow_id)
    state = WorkflowState(request=request, runtime=runtime, bus=bus)
    _set_deadline(state)
    stages, level = await select_stages(state)
    if gate is not None:
        bus.add_gate(gate)
    store = runtime.store
    if store is not None:
        settings = runtime.settings.store
        state.owner = uuid.uuid4().hex
        try:
            async with asyncio.timeout(settings.timeout_s):
                await store.start_execution(
                    request.workflow_id, request.text, _extra(state), owner=state.owner
                )
        except TimeoutError:
            problem = (
                f"the store did not record the start of the workflow within "
                f"{settings.timeout_s:g} s (setting store.timeout_s)"
            )
            _close_later(store, state, WorkflowStatus.FAILED, problem)
            raise StoreError(problem) from None
        except asyncio.CancelledError:
            _close_later(store, state, _stopped(state), None)
            raise
        _open_writer(store, state, state.llm_calls)  # the classifier's, made before a record
    if on_event is not None:
        bus.subscribe(on_event)
    bus.emit(WorkflowStarted, request=request.text)
    bus.emit(
        LevelChosen,
        level=level.level.value,
        source=level.source,
        reasons=list(level.reasons),
        stages=list(level.stages),
        skipped=dict(level.skipped),
    )
    return await _run_stages(state, stages, store)


async def resume_workflow(
    workflow_id: str,
    runtime: Runtime,
    on_event: Callable[[Event], object] | None = None,
    *,
    gate: asyncio.Event | None = None,
) -> WorkflowResult:
    """Go on with the stored run ``workflow_id``, whose process stopped before it ended
    (killed: its lease expired; or stopped with a server: ``interrupted``), and return its
    result, which describes the whole run.

    The run is taken over in one conditional update of its record (of two processes resuming
    it at once, one wins). With its checkpoint, its plan and agents are put back and its
    planning stages skipped; the subtasks whose results ended for good are not run again;
    the other stages run, at the level it was given. Without one (it stopped before its plan
    was saved), it starts over under the same id. Its events go on from the stored ones:
    ``workflow_resumed`` (what was carried over), ``plan_ready``, the stages' events, and
    ``workflow_finished``.

    Raises:
        ConfigurationError: the runtime has no store, or the run's checkpoint cannot be read
            by this version.
        InvalidRequestError: no stored run has this id, or it cannot be resumed (it ended,
            or another process holds its lease): the message says which.
        StoreError: the store failed or did not answer within ``store.timeout_s``.
        AutomatosError: as :func:`run_workflow`, once it goes on.
    """
    store = runtime.store
    if store is None:
        raise ConfigurationError(
            "resuming a workflow needs the store it was recorded in (setting store.enabled)"
        )
    limit = runtime.settings.store.timeout_s
    try:
        async with asyncio.timeout(limit):
            stored = await store.resume_execution(workflow_id, owner=uuid.uuid4().hex)
    except TimeoutError:
        raise StoreError(
            f"the store did not answer within {limit:g} s (setting store.timeout_s) while "
            f"run {workflow_id} was being taken over: if it was, it can be resumed again once "
            "its lease expires"
        ) from None
    await _withdraw_earlier_jobs(runtime, workflow_id)
    try:
        state, stages = await _resumed(stored, runtime)
    except BaseException as exc:  # the run stays resumable, as it was
        await _to_the_end(_put_back(store, stored, runtime, exc))
        raise
    bus = state.bus
    if gate is not None:
        bus.add_gate(gate)
    _open_writer(store, state, state.llm_calls[len(stored.calls) :])
    if on_event is not None:
        bus.subscribe(on_event)
    results = state.execution.results
    plan = state.planning.plan
    bus.emit(
        WorkflowResumed,
        carried_over=len(results),
        remaining=len(plan.subtasks) - len(results) if plan is not None else 0,
        carried={sid: r.status.value for sid, r in results.items()},
        replanned=stored.checkpoint is None,
    )
    _show_plan(state)
    return await _run_stages(state, stages, store)


async def _resumed(stored: StoredRun, runtime: Runtime) -> tuple[WorkflowState, list[Stage]]:
    """The state and stages of a run taken over: its request, level and events' numbering
    from the record, the rest put back from its checkpoint (planning stages left out)."""
    request = stored_request(stored)
    state = WorkflowState(
        request=request, runtime=runtime, bus=EventBus(request.workflow_id, stored.last_seq)
    )
    state.owner = stored.owner
    _set_deadline(state)
    classified = len(state.llm_calls)
    stages, _ = await select_stages(state, stored_level(stored))
    if stored.checkpoint is not None:
        stages = [stage for stage in stages if not plans(stage)]
        check_stages(stages, (REQUEST, PLAN, ASSIGNMENTS))
    made = state.llm_calls[:classified]  # a model classifying a run stored without a level
    state.llm_calls = []
    await restore(state, stored, share=any(SHARED in stage.writes for stage in stages))
    state.llm_calls += made
    return state, stages


async def _put_back(store: Store, stored: StoredRun, runtime: Runtime, exc: BaseException) -> None:
    """Make a run whose resume failed before it went on ``interrupted`` again, as it was."""
    why = "cancelled" if isinstance(exc, asyncio.CancelledError) else describe_exception(exc)
    with contextlib.suppress(Exception):
        async with asyncio.timeout(runtime.settings.store.timeout_s):
            await store.finish_execution(
                stored.workflow_id,
                status=WorkflowStatus.INTERRUPTED.value,
                stages=stored.stages,
                plan=stored.plan,
                totals=stored.totals,
                final_answer=stored.final_answer,
                error=f"interrupted; resuming it failed before it went on: {why}"[:2000],
                quality=stored.quality,
                owner=stored.owner,
            )


def _set_deadline(state: WorkflowState) -> None:
    timeout = state.runtime.settings.execution.workflow_timeout_s
    if timeout is not None:  # before the level: a model classifier keeps to it as well
        state.deadline = asyncio.get_running_loop().time() + timeout


def _open_writer(store: Store, state: WorkflowState, calls: list[LLMCall]) -> None:
    """The writer of the run's rows, subscribed to its events, with ``calls`` (made before
    it) to write."""
    settings = state.runtime.settings.store
    state.writer = BatchWriter(
        store,
        state.workflow_id,
        settings.batch_size,
        settings.flush_interval_s,
        lease_s=settings.lease_s,
        max_pending_rows=settings.max_pending_rows,
        owner=state.owner,
    )
    state.bus.subscribe(state.writer.add_event)
    for call in calls:
        state.writer.add_call(call)


async def _run_stages(
    state: WorkflowState, stages: list[Stage], store: Store | None
) -> WorkflowResult:
    """Run ``stages`` (the run's record started), then complete the record; the run's
    checkpoint is saved once planning is over (again if a later planning stage ran).

    Raises:
        RunTakenOverError: another process resumed the run meanwhile (this one was stalled
            past its lease): the stages were cancelled and nothing more was recorded.
    """
    bus = state.bus
    status = WorkflowStatus.FAILED
    result: WorkflowResult | None = None
    error: BaseException | None = None
    problems: list[str] = []
    task = asyncio.current_task()
    writer = state.writer
    if writer is not None and task is not None:
        writer.on_taken_over = lambda _: task.cancel("the run was taken over")
    saving: asyncio.Future[None] | None = None
    from automatos.tools.host import ToolHost, current_host  # the tools package, when run

    runtime = state.runtime  # the run's tools: its subtasks' MCP servers live as long as it
    tools = ToolHost.for_run(
        runtime.settings.tools, runtime.store, runtime.context, extra=runtime.tools
    )
    tools_current = current_host.set(tools)
    try:
        planned = False
        for stage in stages:
            planning = plans(stage)
            if planned and not planning and store is not None:
                planned = False
                # Not awaited: the next stages start now. The store takes it ahead of the
                # rows the run writes afterwards (its writes are first come, first written,
                # in groups that commit whole), so no result is stored without it.
                made = checkpoint_of(state) if state.time_left() else None
                if made is not None:  # as planning left it, before the next stage changes it
                    saving = asyncio.ensure_future(
                        _save_checkpoint(store, state, made, after=saving)
                    )
            if state.deadline is None:
                await _run_stage(stage, state)
            else:
                await _run_stage_by_deadline(stage, state)
            planned = planned or planning
        if saving is not None:
            await saving
            saving = None
        state.warnings += bus.failures
        result = build_result(state)
        carried = state.carried
        if carried is not None and carried.prompts:
            result = result.model_copy(update={"prompts": _prompt_uses(state)})
        status = result.status
    except asyncio.CancelledError:
        status = _stopped(state)
        lost = writer.taken_over if writer is not None else None
        if lost is not None and task is not None and task.uncancel() == 0:
            error = lost  # the cancel was the writer's alone: the run ends with why
            raise lost from None
        raise
    except BaseException as exc:
        error = exc
        raise
    finally:
        if saving is not None:  # the run stopped first: the checkpoint ends within its bound
            await _to_the_end(_settled(saving))
        if writer is not None:
            writer.on_taken_over = None  # the end is written as it is, whatever comes now
        # to the end even when cancelled meanwhile (each step is bounded by store.timeout_s):
        # a record cut short here would stay "running" with its last events unwritten
        current_host.reset(tools_current)
        await _to_the_end(tools.aclose())  # raises nothing
        await _to_the_end(close_shared(state))  # also when the execute stage did not close it
        bus.emit(WorkflowFinished, status=status.value, elapsed_s=_elapsed(state.started))
        if store is not None:
            problems = await _to_the_end(_finish_record(store, state, status, result, error))
    if problems:  # the caller gets its result even when its record could not be completed
        result = result.model_copy(update={"warnings": (*result.warnings, *problems)})
    return result


async def _settled(future: asyncio.Future[None]) -> None:
    with contextlib.suppress(Exception):
        await future


async def _save_checkpoint(
    store: Store,
    state: WorkflowState,
    made: tuple[dict[str, Any], dict[str, Any]],
    *,
    after: asyncio.Future[None] | None = None,
) -> None:
    """Save what resuming the run needs (:func:`~automatos.phases.resume.checkpoint_of`),
    within ``store.timeout_s`` and the workflow's deadline (past it, the run is ending: no
    checkpoint), once the checkpoint saved ``after`` it is. A store that cannot take it
    costs the run its checkpoint (a resume would start it over), with a warning, not the
    run."""
    if after is not None:
        await _settled(after)
    left = state.time_left()
    if not left:
        return
    checkpoint, stored_plan = made
    limit = state.runtime.settings.store.timeout_s
    try:
        async with asyncio.timeout(min(limit, left)):
            await store.save_checkpoint(state.workflow_id, checkpoint, owner=state.owner)
    except RunTakenOverError:
        raise  # not a checkpoint lost: the run is another process's now
    except (TimeoutError, StoreError) as exc:
        why = str(exc) or (
            f"no answer within {limit:g} s (setting store.timeout_s)"
            if limit <= left
            else "the workflow's deadline passed meanwhile"
        )
        state.warnings.append(
            f"the run's checkpoint could not be saved ({why}): resumed, it would start over"
        )
        return
    state.checkpointed = (state.planning.plan, stored_plan)


def _prompt_uses(state: WorkflowState) -> dict[str, PromptUse]:
    """The prompt versions the run used: a resumed run's first process's, then its own."""
    uses = state.preparation.prompts.uses()
    carried = state.carried
    return {**carried.prompts, **uses} if carried is not None else uses


async def _withdraw_earlier_jobs(runtime: Runtime, workflow_id: str) -> None:
    """Withdraw the jobs the run's earlier process left in a queue (a runner that has one):
    nobody waits for their answers, and they would run ahead of the resumed run's."""
    withdraw = getattr(runtime.runner, "withdraw_workflow", None)
    if withdraw is None:
        return
    try:
        await withdraw(workflow_id)
    except Exception as exc:  # a courtesy to the workers: the resume goes on regardless
        _log.warning("jobs of %s left in the queue were not withdrawn: %s", workflow_id, exc)


T = TypeVar("T")


def _stopped(state: WorkflowState) -> WorkflowStatus:
    """How a cancelled workflow ended: interrupted when its engine is stopping (or another
    process took the run over)."""
    stopping = state.runtime.stopping
    writer = state.writer
    interrupted = (stopping is not None and stopping.is_set()) or (
        writer is not None and writer.taken_over is not None
    )
    return WorkflowStatus.INTERRUPTED if interrupted else WorkflowStatus.CANCELLED


async def _to_the_end(work: Coroutine[Any, Any, T]) -> T:
    """``work``'s result, awaited to its end even if the caller is cancelled meanwhile (the
    cancel is raised afterwards)."""
    task = asyncio.ensure_future(work)
    cancelled = False
    while True:
        try:
            result = await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.done():
                raise
            cancelled = True
            continue
        if cancelled:
            raise asyncio.CancelledError
        return result


_CLOSING: set[asyncio.Task[None]] = set()
"""Records being closed after their workflow stopped while its start was being written."""


def _close_later(
    store: Store, state: WorkflowState, status: WorkflowStatus, error: str | None
) -> None:
    """Close the record whose start the workflow stopped waiting for: the store may still
    write that start (it does not take back what it began), and a record nothing finishes
    would say ``running`` until its lease expired. Writes after the start, or changes no
    row if the start was never written."""
    settings = state.runtime.settings.store

    async def close() -> None:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(settings.timeout_s):
                await store.finish_execution(
                    state.workflow_id,
                    status=status.value,
                    stages=[],
                    plan=None,
                    totals=None,
                    final_answer=None,
                    error=error,
                    owner=state.owner,
                )

    task = asyncio.ensure_future(close())
    _CLOSING.add(task)
    task.add_done_callback(_CLOSING.discard)


async def records_closed() -> None:
    """Wait until the records :func:`run_workflow` closes in the background are closed
    (before the store they are written to is closed)."""
    while _CLOSING:
        await asyncio.gather(*_CLOSING, return_exceptions=True)


async def select_stages(
    state: WorkflowState, choice: LevelChoice | None = None
) -> tuple[list[Stage], LevelChoice]:
    """The workflow's level (``choice``, or the one :func:`choose_level` chooses) and its
    stages, checked (the level is also kept in ``state.level``).

    Raises:
        StageContractError: the selector's stage list leaves a stage without its input.
        ConfigurationError: the selector failed or gave something other than stages.
    """
    if choice is None:
        choice = await choose_level(state)
    runtime = state.runtime
    selector = runtime.selector or PhaseSelector()
    name = type(selector).__name__
    try:
        selection = selector.select(state.request, choice.level, runtime)
        if inspect.isawaitable(selection):
            if inspect.iscoroutine(selection):
                selection.close()  # never awaited: no warning about it
            raise ConfigurationError(f"the stage selector {name}'s select must not be async")
        if isinstance(selection, StageSelection):
            stages, skipped = list(selection.stages), dict(selection.skipped)
        elif isinstance(selection, list | tuple):
            stages, skipped = list(selection), {}
        else:
            raise ConfigurationError(
                f"the stage selector {name} returned {describe_value(selection)}, not a "
                "StageSelection or a list of stages"
            )
        reasons = {str(k): str(v) for k, v in skipped.items()}
    except AutomatosError:
        raise
    except Exception as exc:  # a plugin's bug, named as such
        raise ConfigurationError(
            f"the stage selector {name} failed: {describe_exception(exc)}"
        ) from exc
    check_stages(stages)
    names = [stage.name for stage in stages]
    state.level = choice.model_copy(
        update={
            "stages": tuple(names),
            "skipped": {k: v for k, v in reasons.items() if k not in names},
        }
    )
    return stages, state.level


def _extra(state: WorkflowState) -> dict[str, object]:
    """What the store keeps of the run beside its request's text: mode, level and stages, and
    the request's other fields if it has any."""
    level = state.level
    extra: dict[str, object] = {"recipe": state.request.is_recipe}
    if level is not None:
        extra["level"] = level.model_dump(mode="json")
    request = request_extra(state.request)  # what a run that must start over is given again
    if request is not None:
        extra["request"] = request
    return extra


async def _finish_record(
    store: Store,
    state: WorkflowState,
    status: WorkflowStatus,
    result: WorkflowResult | None,
    error: BaseException | None,
) -> list[str]:
    """Complete the run's record, within ``store.timeout_s``; what could not be stored, one
    line each (a database that hangs costs the record, not the result). Nothing, when
    another process took the run over: the record is its."""
    problems: list[str] = []
    writer = state.writer
    if isinstance(error, RunTakenOverError) or (
        writer is not None and writer.taken_over is not None
    ):
        if writer is not None:
            writer.cancel()
        return problems
    limit = state.runtime.settings.store.timeout_s
    try:
        async with asyncio.timeout(limit):
            if writer is not None:
                await writer.aclose()
                if writer.taken_over is not None:  # found as its last rows were written
                    return [str(writer.taken_over)]
                problems += writer.warnings
            await _finish_execution(store, state, status, result, error)
            ended = status not in (WorkflowStatus.CANCELLED, WorkflowStatus.INTERRUPTED)
            if ended and isinstance(store, PromptStore):
                await _record_prompt_outcomes(store, state, status, result)
    except TimeoutError:
        if writer is not None:
            writer.cancel()
        problems.append(
            f"the run's record could not be completed within {limit:g} s (setting "
            "store.timeout_s): the database did not answer"
        )
    except Exception as exc:  # a lost database must not cost the caller the result
        problems.append(f"the run's record could not be completed: {describe_exception(exc)}")
    return problems


async def _finish_execution(
    store: Store,
    state: WorkflowState,
    status: WorkflowStatus,
    result: WorkflowResult | None,
    error: BaseException | None,
) -> None:
    plan = state.planning.plan
    saved = state.checkpointed
    await store.finish_execution(
        state.workflow_id,
        status=status.value,
        stages=state.stage_log,
        # the plan as its checkpoint stored it, unless a later stage changed it
        plan=(saved[1] if saved is not None and saved[0] is plan else plan.model_dump(mode="json"))
        if plan is not None
        else None,
        totals=result.totals.model_dump(mode="json") if result is not None else None,
        final_answer=state.learning.final_answer,
        error=describe_exception(error, 2000) if error is not None else None,
        quality=(
            state.evaluation.quality_report.model_dump(mode="json")
            if state.evaluation.quality_report is not None
            else None
        ),
        extra=_collaboration(state),
        owner=state.owner,
    )


def _collaboration(state: WorkflowState) -> dict[str, object]:
    """What the store keeps of the run's negotiation, prompt versions and findings."""
    extra: dict[str, object] = {}
    negotiation = state.planning.negotiation
    if negotiation is not None:
        extra["negotiation"] = negotiation.model_dump(mode="json")
    uses = _prompt_uses(state)
    if uses:
        extra["prompts"] = {slug: use.model_dump(mode="json") for slug, use in uses.items()}
    if state.execution.findings:
        extra["findings"] = [f.model_dump(mode="json") for f in state.execution.findings]
    if state.preparation.context:
        extra["context"] = {
            sid: record.model_dump(mode="json", exclude={"items": {"__all__": {"text"}}})
            for sid, record in state.preparation.context.items()
        }
    return extra


async def _record_prompt_outcomes(
    store: PromptStore,
    state: WorkflowState,
    status: WorkflowStatus,
    result: WorkflowResult | None,
) -> None:
    """Record the run's outcome in each A/B test it took part in, and let the rule decide."""
    uses = _prompt_uses(state)
    if not any(use.test_id is not None for use in uses.values()):
        return
    from automatos.prompts.record import record_run

    report = result.quality if result is not None else None
    # Q of scores partly by the heuristics is on another scale than the judge's or the
    # scorer's: an arm that fails to be judged more often would be biased by it.
    quality = report.q if report is not None and not report.fallbacks else None
    tokens = (
        result.totals.tokens_in + result.totals.tokens_out
        if result is not None
        else state.spent_tokens
    )
    for line in await record_run(
        store,
        state.workflow_id,
        uses,
        quality=quality,
        success=status is WorkflowStatus.SUCCEEDED,
        tokens=tokens,
        latency_s=_elapsed(state.started),
    ):
        _log.info("%s", line)


async def _run_stage_by_deadline(stage: Stage, state: WorkflowState) -> None:
    """Run ``stage`` within the workflow's deadline.

    Once the deadline has passed, planning stages are skipped, and the others (which then
    make no model calls: they account for the subtasks and give the answer) share one
    window of ``execution.cancel_grace_s`` after it: a workflow ends by its deadline plus
    that grace at the latest, whatever its plugins do.
    """
    assert state.deadline is not None
    settings = state.runtime.settings.execution
    late = not state.time_left()
    if late and not getattr(stage, "after_deadline", True):
        if state.planning.plan is None:
            raise _too_late(state, stage)
        state.stage_log.append(
            {"stage": stage.name, "phase": stage.phase.value, "elapsed_s": 0.0, "error": "deadline"}
        )
        return
    timer = asyncio.timeout_at(state.deadline + settings.cancel_grace_s if late else state.deadline)
    try:
        async with timer:
            await _run_stage(stage, state)
    except TimeoutError:
        if not timer.expired():
            raise
        if state.planning.plan is None:
            raise _too_late(state, stage) from None
        state.warnings.append(
            f"the workflow's deadline ({settings.workflow_timeout_s:g} s) passed in stage "
            f"{stage.name}"
            + ("" if not late else f", which did not finish within {settings.cancel_grace_s:g} s")
        )


def _too_late(state: WorkflowState, stage: Stage) -> WorkflowTimeoutError:
    timeout = state.runtime.settings.execution.workflow_timeout_s
    return WorkflowTimeoutError(
        f"the workflow's deadline ({timeout:g} s, setting execution.workflow_timeout_s) "
        f"passed in stage {stage.name}, before there was a plan"
    )


async def _run_stage(stage: Stage, state: WorkflowState) -> None:
    bus = state.bus
    if bus.gates:  # a slow reader of the events holds new work back
        await bus.ready()
    phase = stage.phase.value
    state.bus.emit(StageStarted, stage=stage.name, phase=phase)
    started = time.perf_counter()
    try:
        await stage.run(state)
        problem = unwritten(stage, state)
        if problem is not None:
            raise StageError(f"stage {stage.name!r} did not write what it declares: {problem}")
    except BaseException as exc:
        failure: BaseException = exc
        if isinstance(exc, Exception) and not isinstance(exc, AutomatosError):
            failure = StageError(f"stage {stage.name!r} failed: {describe_exception(exc)}")
        error = f"{type(failure).__name__}: {failure}"
        if isinstance(exc, asyncio.CancelledError):  # its message is usually empty
            stopping = state.runtime.stopping
            error = (
                "interrupted: the engine stopped (a server shutting down)"
                if stopping is not None and stopping.is_set()
                else "cancelled"
            )
        elapsed = _elapsed(started)
        state.stage_log.append(
            {"stage": stage.name, "phase": phase, "elapsed_s": elapsed, "error": error}
        )
        state.bus.emit(StageFinished, stage=stage.name, elapsed_s=elapsed, error=error, phase=phase)
        if failure is not exc:
            raise failure from exc
        raise
    elapsed = _elapsed(started)
    state.stages.append(stage.name)
    state.stage_log.append(
        {"stage": stage.name, "phase": phase, "elapsed_s": elapsed, "error": None}
    )
    state.bus.emit(StageFinished, stage=stage.name, elapsed_s=elapsed, phase=phase)
    if stage.phase is Phase.PLAN:
        _show_plan(state)


def _show_plan(state: WorkflowState) -> None:
    """Emit ``plan_ready`` when the plan or its agents differ from what was last shown."""
    plan = state.planning.plan
    if plan is None:
        return
    agents = {sid: a.agent for sid, a in state.planning.assignments.items()}
    shown = (plan, tuple(sorted(agents.items())))
    last = state.plan_shown
    if last is not None and last[0] is plan and last[1] == shown[1]:
        return
    state.plan_shown = shown
    subtasks = [
        {
            "id": s.id,
            "description": s.description,
            "depends_on": list(s.depends_on),
            "agent": agents.get(s.id, s.agent),
        }
        for s in plan.subtasks
    ]
    state.bus.emit(PlanReady, plan={"subtasks": subtasks})


def _elapsed(since: float) -> float:
    return time.perf_counter() - since
