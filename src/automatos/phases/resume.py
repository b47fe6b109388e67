"""Resuming a workflow whose process stopped: its checkpoint, and its state put back.

As a workflow runs, its record keeps each subtask's result as it commits (the store's
writer) and, once planning is over, a *checkpoint*: what the later stages need that only the
planning stages make (the plan, the agent of each subtask and why, the task types, the
selection notes, the negotiation, the agents' specs), with the stage log, warnings and prompt
versions so far. A process that resumes the run (``Engine.resume``, ``automatos runs
resume``) puts that back instead of planning again, keeps the results that ended for good
(succeeded, or failed after their attempts) and runs the other subtasks: a subtask whose
result is stored is not run again, and its dependents quote its stored output. The findings
shared before (stage 4b) by the subtasks whose results were kept are put back into the shared
context, so later prompts quote them, and nothing else is: a runner's context (the queued
runner's, in Redis, which other processes read too) is reset to exactly them, since it may
hold the findings of subtasks whose results were lost (they run again and share anew).
The totals count the model calls of both processes (the first one's are in the store).

Nothing here depends on the runner: it only sees the agent tasks of the subtasks still open.

A run that stopped before its checkpoint was saved starts over under the same id, at the
level it was given: planning again, its events numbered on from the stored ones.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from automatos.domain.agent import AgentSpec, Assignment
from automatos.domain.collaboration import Finding, NegotiationReport, PromptUse
from automatos.domain.level import LevelChoice, Phase
from automatos.domain.plan import Plan
from automatos.domain.request import WorkflowRequest
from automatos.errors import ConfigurationError, InvalidRequestError, describe_exception
from automatos.field.base import FINDING_KINDS, SharedContext
from automatos.field.memory import InProcessSharedContext
from automatos.llm.structured import describe_fields
from automatos.phases.contracts import ASSIGNMENTS, PLAN, Stage
from automatos.phases.execute.coordinate import open_shared
from automatos.phases.state import Carried, WorkflowState
from automatos.store.base import StoredRun

__all__ = [
    "CHECKPOINT_VERSION",
    "checkpoint_of",
    "plans",
    "request_extra",
    "restore",
    "stored_level",
    "stored_request",
]

CHECKPOINT_VERSION = 1
"""The layout of the checkpoint this engine saves and reads."""

_PLANNING = frozenset({PLAN, ASSIGNMENTS})


def plans(stage: Stage) -> bool:
    """Whether ``stage`` plans: a stage of the PLAN phase, or one that writes the plan or its
    agents (``one_step``). A run resumed from its checkpoint does not run them again."""
    return stage.phase is Phase.PLAN or not _PLANNING.isdisjoint(stage.writes)


def request_extra(request: WorkflowRequest) -> dict[str, Any] | None:
    """What the record keeps of ``request`` beyond its text and id (its budget, agents,
    level, a recipe's subtasks), for a run that must start over; ``None`` when nothing."""
    if (
        request.subtasks is None
        and not request.agents
        and request.budget_tokens is None
        and request.budget_usd is None
        and request.level is None
    ):
        return None
    return request.model_dump(mode="json", exclude={"text", "workflow_id"}, exclude_defaults=True)


def checkpoint_of(state: WorkflowState) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The workflow's checkpoint as it stands, and its plan as stored in it; ``None`` while
    it has no plan or a subtask has no agent."""
    planning = state.planning
    plan = planning.plan
    assignments = planning.assignments
    if plan is None or any(s.id not in assignments for s in plan.subtasks):
        return None
    stored_plan = plan.model_dump(mode="json")
    used = {a.agent for a in assignments.values()}
    negotiation = planning.negotiation
    checkpoint = {
        "version": CHECKPOINT_VERSION,
        "plan": stored_plan,
        "assignments": [[a.subtask_id, a.agent, a.reason] for a in assignments.values()],
        "task_types": dict(planning.task_types),
        "selection_notes": dict(planning.selection_notes),
        "negotiation": negotiation.model_dump(mode="json") if negotiation is not None else None,
        "agents": [
            state.agents[name].model_dump(mode="json", exclude_defaults=True)
            for name in sorted(used)
            if name in state.agents
        ],
        "stages": list(state.stages),
        "stage_log": [dict(entry) for entry in state.stage_log],
        "warnings": list(state.warnings),
        "prompts": {
            slug: use.model_dump(mode="json")
            for slug, use in state.preparation.prompts.uses().items()
        },
    }
    return checkpoint, stored_plan


def stored_request(stored: StoredRun) -> WorkflowRequest:
    """The request of a stored run, as it was given (its text, id, and what
    :func:`request_extra` kept).

    Raises:
        InvalidRequestError: the stored request is not one this engine can run.
    """
    fields = stored.extra.get("request")
    try:
        return WorkflowRequest.model_validate(
            {
                **(fields if isinstance(fields, dict) else {}),
                "text": stored.request,
                "workflow_id": stored.workflow_id,
            }
        )
    except ValidationError as exc:
        raise InvalidRequestError(
            f"run {stored.workflow_id}'s stored request cannot be run again: {describe_fields(exc)}"
        ) from None


def stored_level(stored: StoredRun) -> LevelChoice | None:
    """The level the run was given, from its record (``None``: stored before levels
    existed, and classified again)."""
    level = stored.extra.get("level")
    if not isinstance(level, dict):
        return None
    try:
        return LevelChoice.model_validate(level)
    except ValidationError:
        return None


async def restore(state: WorkflowState, stored: StoredRun, *, share: bool) -> None:
    """Put back into ``state`` what the run's first process made: its model calls (the
    totals and the budget count them), and from its checkpoint the plan, agents, stage log,
    warnings and prompt versions, the results that ended for good and the findings shared
    (into a new shared context when ``share``, so that later prompts quote them).

    Raises:
        ConfigurationError: the checkpoint was saved by a version of automatos whose layout
            this one does not know, or does not validate.
    """
    carried = state.carried = Carried()
    for call in stored.calls:
        state.llm_calls.append(call)
        state.spent_tokens += call.tokens_in + call.tokens_out
        state.spent_usd += call.cost_usd
        if not call.priced:
            state.unpriced.add(call.model)
    data = stored.checkpoint
    if data is None:  # it starts over: what its first attempt shared is gone
        await _restore_findings(state, [], share)
        return
    version = data.get("version")
    if version != CHECKPOINT_VERSION:
        raise ConfigurationError(
            f"run {stored.workflow_id}'s checkpoint has layout {version!r}; this version of "
            f"automatos reads layout {CHECKPOINT_VERSION}: resume it with the version that "
            "ran it"
        )
    try:
        _restore_planning(state, data, stored.stages)
        carried.prompts = {
            slug: PromptUse.model_validate(use) for slug, use in data["prompts"].items()
        }
    except (KeyError, TypeError, ValueError) as exc:  # ValidationError is a ValueError
        raise ConfigurationError(
            f"run {stored.workflow_id}'s checkpoint cannot be read: {exc!r}"
        ) from None
    plan = state.require_plan()
    results, budget = state.execution.results, state.budget
    for result in stored.results:
        if result.subtask_id in plan.by_id:
            results[result.subtask_id] = result
            if budget is not None:
                budget.record(result.tokens_in + result.tokens_out, result.cost_usd)
    carried.results = len(results)
    # Only the findings of answers kept: one whose result was lost runs again, and shares
    # what its new answer states.
    kept = [f for f in stored.findings if f.get("subtask_id") in results]
    await _restore_findings(state, kept, share)


def _restore_planning(
    state: WorkflowState, data: dict[str, Any], stored_stages: list[dict[str, Any]]
) -> None:
    """The PLAN phase's output, the agents, and the stage log: the record's when its process
    stopped cleanly and wrote it (the log then goes on past the checkpoint), else the
    checkpoint's."""
    planning = state.planning
    plan = Plan.model_validate(data["plan"])
    planning.plan = plan
    state.checkpointed = (plan, data["plan"])
    planning.assignments = {
        sid: Assignment(sid, agent, reason) for sid, agent, reason in data["assignments"]
    }
    planning.task_types = dict(data["task_types"])
    planning.selection_notes = dict(data["selection_notes"])
    negotiation = data["negotiation"]
    planning.negotiation = (
        NegotiationReport.model_validate(negotiation) if negotiation is not None else None
    )
    for spec in data["agents"]:
        agent = AgentSpec.model_validate(spec)
        state.agents[agent.name] = agent
    log: list[dict[str, Any]] = data["stage_log"]
    if len(stored_stages) > len(log):
        log = stored_stages
        state.stages = [entry["stage"] for entry in log if not entry.get("error")]
    else:
        state.stages = list(data["stages"])
    state.stage_log = [dict(entry) for entry in log]
    state.warnings = [*data["warnings"], *state.warnings]


async def _restore_findings(
    state: WorkflowState, stored: list[dict[str, Any]], share: bool
) -> None:
    """The findings of the stored ``finding_shared`` events, numbered again from 1 (those of
    the last moments before the process stopped may not have been stored: ids stay dense,
    and what a finding contradicts follows its new number), and, when ``share``, the shared
    context holding exactly them (:func:`_shared_context`)."""
    renumbered: dict[int, int] = {}
    findings = state.execution.findings
    for data in stored:
        contradicts = tuple(
            renumbered[old] for old in data.get("contradicts", ()) if old in renumbered
        )
        kind, text = data.get("finding_kind"), str(data.get("text"))
        if kind not in FINDING_KINDS:
            continue  # not a finding this engine can quote
        finding = Finding(
            id=len(findings) + 1,
            kind=kind,
            text=text,
            subtask_id=str(data["subtask_id"]),
            agent=str(data.get("agent")),
            contradicts=contradicts,
        )
        renumbered[int(data.get("finding", 0))] = finding.id
        findings.append(finding)
    if share:
        state.execution.shared = await _shared_context(state, findings)


async def _shared_context(state: WorkflowState, findings: list[Finding]) -> SharedContext | None:
    """The resumed run's shared context, holding exactly ``findings``.

    The runner's, when it offers one and stage 4b may open it (coordination on, more than
    one layer or no plan yet): reset to ``findings``, since it may still hold those of
    subtasks whose results were lost (or, for a run that starts over, all those of its first
    attempt). Without a plan yet it is only reset: stage 4b opens it again once there is one.
    A context that cannot be opened or reset costs the sharing across processes, with a
    warning, not the run: an in-process one takes its place. Otherwise an in-process one
    when there are findings (the first process had a context then), and none when there are
    not: stage 4b opens one as it would have (a run of one layer has none).
    """
    runtime = state.runtime
    coordination = runtime.settings.coordination
    plan = state.planning.plan
    remote = callable(getattr(runtime.runner, "shared_context", None))
    if remote and coordination.enabled and (plan is None or len(plan.layers) > 1):
        shared = await open_shared(state)
        if not isinstance(shared, InProcessSharedContext):  # else it failed, and said so
            problem = await _reset(shared, findings, coordination.io_timeout_s)
            if problem is None and plan is not None:
                return shared
            if problem is None:
                with contextlib.suppress(Exception):
                    await shared.aclose()
                return None
            state.warnings.append(
                f"the shared context of runner {type(runtime.runner).__name__} could not be "
                "reset to the run's stored findings, the findings are shared in this process "
                f"only: {problem}"
            )
            with contextlib.suppress(Exception):
                await shared.aclose()
        return await _in_process(findings)
    return await _in_process(findings) if findings else None


async def _reset(
    shared: SharedContext, findings: Sequence[Finding], timeout_s: float
) -> str | None:
    """Reset ``shared`` to ``findings``; why it could not be, or ``None``."""
    reset = getattr(shared, "reset", None)
    if not callable(reset):
        return f"{type(shared).__name__} has no reset method"
    try:
        async with asyncio.timeout(timeout_s):
            await reset(findings)
    except TimeoutError:
        return f"it was not reset within {timeout_s:g} s"
    except Exception as exc:  # a plugin's failure of any type
        return describe_exception(exc)
    return None


async def _in_process(findings: Sequence[Finding]) -> InProcessSharedContext:
    """A new in-process shared context holding ``findings`` (numbered 1, 2, …)."""
    shared = InProcessSharedContext()
    for f in findings:
        await shared.add(f.kind, f.text, f.subtask_id, f.agent, f.contradicts)
    return shared
