"""Resuming a workflow whose process stopped: killed (SIGKILL), or stopped with its server.

The subtasks that ended are not run again (the model's calls are counted), their outputs and
findings reach their dependents, and the result is an uninterrupted run's. A process that was
only stalled (SIGSTOP) while its run was resumed stops its run when it goes on (SIGCONT),
writing nothing more into the record. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from automatos import Engine, Settings, SubtaskSpec, WorkflowRequest, WorkflowResult, build_plan
from automatos.domain.agent import Assignment
from automatos.domain.event import Event, WorkflowResumed
from automatos.domain.level import Level, LevelChoice, Phase
from automatos.domain.result import SubtaskStatus, WorkflowStatus
from automatos.errors import ConfigurationError, InvalidRequestError
from automatos.llm.base import Message
from automatos.phases.contracts import ASSIGNMENTS, PLAN
from automatos.phases.events import EventBus
from automatos.phases.execute.coordinate import CoordinateStage
from automatos.phases.execute.dispatch import ExecuteStage
from automatos.phases.learn.respond import RespondStage
from automatos.phases.plan.decompose import DecomposeStage
from automatos.phases.plan.select import SelectStage
from automatos.phases.selector import StageSelection
from automatos.phases.state import Runtime, WorkflowState
from automatos.settings import StoreSettings
from automatos.store.database import create_engine, database_url
from automatos.store.sql import SqlStore
from automatos.store.tables import workflow_executions
from automatos.testing import Rule, ScriptedLLM
from tests.conftest import plan_json, step_of
from tests.phases.crashing_run import (
    REQUEST,
    STEPS,
    TAKEN_OVER,
    one_agent,
    scripted_model,
    settings_for,
)
from tests.store.conftest import StoreTarget, store_target  # noqa: F401 (a fixture)

ROOT = Path(__file__).parents[2]
ALL = {s["id"] for s in STEPS}


def _lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


async def _results_stored(store: SqlStore, workflow_id: str, at_least: int) -> None:
    async with asyncio.timeout(60):
        while True:
            run = await store.get_run(workflow_id)
            if run is not None and len(run.results) >= at_least:
                return
            await asyncio.sleep(0.05)


async def _uninterrupted(settings: Settings, store: SqlStore) -> WorkflowResult:
    async with Engine(settings, llm=scripted_model(step_s=0.0), store=store) as engine:
        return await engine.run(WorkflowRequest(text=REQUEST))


def _check_events(
    stored: list[dict[str, object]], emitted: Sequence[Event], *, finished_before: bool
) -> None:
    """The stored events are both processes', numbered on; the first process's ended with
    ``workflow_finished`` if it was stopped (not killed)."""
    seqs = [e["seq"] for e in stored]
    assert seqs == list(range(1, len(seqs) + 1))  # unique and increasing, none lost
    kinds = [e["kind"] for e in stored]
    resumed = kinds.index("workflow_resumed")
    assert kinds.count("workflow_started") == 1 and kinds.count("workflow_resumed") == 1
    assert ("workflow_finished" in kinds[:resumed]) is finished_before
    if finished_before:
        assert kinds[resumed - 1] == "workflow_finished"
    assert kinds[-1] == "workflow_finished" and kinds[resumed:].count("workflow_finished") == 1
    assert [e.seq for e in emitted] == seqs[resumed:]


async def test_a_killed_run_resumes_without_running_its_finished_subtasks_again(
    store_target: StoreTarget,  # noqa: F811
    tmp_path: Path,
) -> None:
    lease = 1.0
    target = StoreTarget(
        store_target.settings.model_copy(update={"lease_s": lease, "flush_interval_s": 0.02}),
        store_target.options,
    )
    workflow_id = uuid.uuid4().hex
    before, after = tmp_path / "calls-before.txt", tmp_path / "calls-after.txt"
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.phases.crashing_run",
        json.dumps(target.as_json()),
        workflow_id,
        str(before),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    watcher = await store_target.open()  # a lease of 30 s: it sees the run as running
    try:
        await _results_stored(watcher, workflow_id, 12)
    finally:
        if child.returncode is None:
            os.kill(child.pid, signal.SIGKILL)
        await child.communicate()
        await watcher.aclose()
    assert child.returncode == -signal.SIGKILL  # killed before it finished
    await asyncio.sleep(2 * lease + 1)  # its lease expires
    store = await target.open()
    try:
        run = await store.get_run(workflow_id)
        assert run is not None and run.status == "interrupted"
        done_before = {r["subtask_id"] for r in run.results if r["status"] == "succeeded"}
        assert 12 <= len(done_before) < len(ALL)
        assert set(_lines(before)) >= done_before  # they were called there
        settings = settings_for(target.settings)
        emitted: list[Event] = []
        async with Engine(settings, llm=scripted_model(after), store=store) as engine:
            result = await engine.resume(workflow_id, on_event=emitted.append)

        steps_after = [sid for sid in _lines(after) if sid != "-"]
        assert not set(steps_after) & done_before  # not one finished subtask ran again
        assert sorted(steps_after) == sorted(ALL - done_before)  # each of the others once
        assert result.status is WorkflowStatus.SUCCEEDED
        assert set(result.results) == ALL
        assert all(r.status is SubtaskStatus.SUCCEEDED for r in result.results.values())
        baseline = await _uninterrupted(settings, store)
        assert {sid: r.output for sid, r in result.results.items()} == {
            sid: r.output for sid, r in baseline.results.items()
        }
        assert result.final_answer == baseline.final_answer
        assert result.final_answer is not None and result.final_answer.startswith("synthesis")
        # the findings shared before the kill are the run's too (in the order they came)
        assert sorted((f.subtask_id, f.text) for f in result.findings) == sorted(
            (f.subtask_id, f.text) for f in baseline.findings
        )

        resumed = emitted[0]
        assert isinstance(resumed, WorkflowResumed)
        assert resumed.carried_over == len(done_before) and not resumed.replanned
        assert resumed.remaining == len(ALL) - len(done_before)
        assert set(resumed.carried) == done_before
        record = await store.get_run(workflow_id)
        assert record is not None and record.status == "succeeded"
        assert record.finished_at is not None and record.error is None
        assert record.final_answer == result.final_answer
        assert {r["subtask_id"]: r["output"] for r in record.results} == {
            sid: r.output for sid, r in result.results.items()
        }
        # the totals are the whole run's: the first process's stored calls with the second's
        assert record.totals is not None
        assert record.totals["llm_calls"] == len(record.calls) == result.totals.llm_calls
        assert len(record.calls) > len(steps_after) + len(done_before)  # the plan's too
        assert record.totals["tokens_in"] == sum(c["tokens_in"] for c in record.calls)
        stages = [s["stage"] for s in record.stages]
        assert stages[:4] == ["prompt_variant", "decompose", "select_agents", "negotiate"]
        assert stages[-1] == "respond" and stages.count("decompose") == 1
        _check_events(
            await store.events_after(workflow_id, 0, 100_000), emitted, finished_before=False
        )
    finally:
        await store.aclose()


async def _writing(target: StoreTarget, workflow_id: str) -> bool:
    """Whether a transaction holds the run's row (PostgreSQL) or the database's write lock
    (SQLite): a process stopped in it would hold its lock until it goes on."""
    engine = create_engine(database_url(target.settings), timeout_s=0.3, **target.options)
    try:
        async with engine.begin() as conn:
            if engine.dialect.name == "sqlite":
                await conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                await conn.execute(text("SET LOCAL lock_timeout = '300ms'"))
                w = workflow_executions.c
                await conn.execute(select(w.id).where(w.id == workflow_id).with_for_update())
    except DBAPIError:
        return True
    finally:
        await engine.dispose()
    return False


async def _stop_between_writes(pid: int, target: StoreTarget, workflow_id: str) -> None:
    """SIGSTOP the process, at a moment it is not in a transaction of the store."""
    for _ in range(50):
        os.kill(pid, signal.SIGSTOP)
        if not await _writing(target, workflow_id):
            return
        os.kill(pid, signal.SIGCONT)
        await asyncio.sleep(0.01)
    raise AssertionError("the process was always caught writing")


async def test_a_stalled_process_whose_run_was_resumed_stops_it_when_it_goes_on(
    store_target: StoreTarget,  # noqa: F811
    tmp_path: Path,
) -> None:
    """The first process is stopped (SIGSTOP) past its lease, the run resumed, and the first
    process let go on (SIGCONT): it finds its run taken over and stops, writing nothing more;
    the record is the resumer's alone."""
    lease = 1.0
    target = StoreTarget(
        store_target.settings.model_copy(update={"lease_s": lease, "flush_interval_s": 0.02}),
        store_target.options,
    )
    workflow_id = uuid.uuid4().hex
    before, after = tmp_path / "calls-before.txt", tmp_path / "calls-after.txt"
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.phases.crashing_run",
        json.dumps(target.as_json()),
        workflow_id,
        str(before),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    store = await target.open()
    try:
        await _results_stored(store, workflow_id, 8)
        await _stop_between_writes(child.pid, target, workflow_id)
        await asyncio.sleep(2 * lease + 1.5)  # its lease expires while it is stopped
        stored_before = await store.events_after(workflow_id, 0, 100_000)
        emitted: list[Event] = []
        claimed = asyncio.Event()

        def seen(event: Event) -> None:
            emitted.append(event)
            claimed.set()

        settings = settings_for(target.settings)
        async with Engine(settings, llm=scripted_model(after), store=store) as engine:
            resuming = asyncio.create_task(engine.resume(workflow_id, on_event=seen))
            async with asyncio.timeout(60):
                await claimed.wait()  # the run is the resumer's
            os.kill(child.pid, signal.SIGCONT)
            async with asyncio.timeout(120):
                out, _ = await child.communicate()
                result = await resuming
    finally:
        if child.returncode is None:
            os.kill(child.pid, signal.SIGKILL)
            os.kill(child.pid, signal.SIGCONT)
            await child.communicate()
    try:
        # the stalled process stopped its run when it went on, instead of finishing it
        assert child.returncode == TAKEN_OVER, out.decode()[-2000:]
        assert b"taken over by another process (resumed elsewhere)" in out
        assert result.status is WorkflowStatus.SUCCEEDED and set(result.results) == ALL
        record = await store.get_run(workflow_id)
        assert record is not None and record.status == "succeeded" and record.error is None
        # one result row per subtask, the resumed run's
        assert len(record.results) == len(ALL)
        assert {r["subtask_id"]: r["output"] for r in record.results} == {
            sid: r.output for sid, r in result.results.items()
        }
        # the events: the first process's until it stopped, then the resumer's alone
        stored = await store.events_after(workflow_id, 0, 100_000)
        _check_events(stored, emitted, finished_before=False)
        resumed = len(stored_before)
        assert stored[:resumed] == stored_before  # nothing added to them
        assert [e["kind"] for e in stored[resumed:]] == [e.kind for e in emitted]
        # the calls: the first process's stored before the resume and the resumer's only
        assert record.totals is not None
        assert record.totals["llm_calls"] == len(record.calls) == result.totals.llm_calls
    finally:
        await store.aclose()


async def test_a_killed_run_whose_steps_ran_on_workers_resumes_on_them(
    store_target: StoreTarget,  # noqa: F811
    tmp_path: Path,
) -> None:
    """The same with the queued runner: the steps run on an ``automatos worker`` process,
    which lives on while the orchestrator is killed and serves the resumed run."""
    if store_target.settings.url is not None:
        pytest.skip("the runner is what differs: SQLite is enough")
    queue = f"resume-{uuid.uuid4().hex[:8]}"
    lease = 1.0
    target = StoreTarget(
        store_target.settings.model_copy(update={"lease_s": lease, "flush_interval_s": 0.02}),
        store_target.options,
    )
    workflow_id = uuid.uuid4().hex
    steps = tmp_path / "worker-calls.txt"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOMATOS_")}
    env.update({"CRASHING_RUN_CALLS": str(steps), "PYTHONPATH": str(ROOT)})
    worker = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).with_name("automatos")),
        "worker",
        "--queue",
        queue,
        "--provider",
        "tests.phases.crashing_run:worker_model",
        "--grace",
        "1",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.phases.crashing_run",
        json.dumps(target.as_json()),
        workflow_id,
        str(tmp_path / "orchestrator-calls.txt"),
        queue,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    store = None
    try:
        watcher = await store_target.open()
        try:
            await _results_stored(watcher, workflow_id, 12)
        finally:
            if child.returncode is None:
                os.kill(child.pid, signal.SIGKILL)
            await child.communicate()
            await watcher.aclose()
        assert child.returncode == -signal.SIGKILL
        await asyncio.sleep(2 * lease + 1)  # its lease expires; the jobs it left finish
        store = await target.open()
        run = await store.get_run(workflow_id)
        assert run is not None and run.status == "interrupted"
        done_before = {r["subtask_id"] for r in run.results if r["status"] == "succeeded"}
        assert 12 <= len(done_before) < len(ALL)
        called_before = len(_lines(steps))
        settings = settings_for(target.settings, queue)
        async with Engine(settings, llm=scripted_model(), store=store) as engine:
            result = await engine.resume(workflow_id)
        steps_after = _lines(steps)[called_before:]
        assert not set(steps_after) & done_before  # not one finished subtask ran again
        assert sorted(steps_after) == sorted(ALL - done_before)  # each of the others once
        assert result.status is WorkflowStatus.SUCCEEDED
        assert set(result.results) == ALL
        baseline = await _uninterrupted(settings_for(target.settings), store)
        assert {sid: r.output for sid, r in result.results.items()} == {
            sid: r.output for sid, r in baseline.results.items()
        }
        assert result.final_answer == baseline.final_answer
    finally:
        if worker.returncode is None:
            worker.terminate()
        await worker.wait()
        if store is not None:
            await store.aclose()
        import redis

        client = redis.Redis()
        keys = list(client.scan_iter(match=f"{queue}:*"))
        if keys:
            client.delete(*keys)
        client.close()


async def test_a_run_stopped_with_its_server_resumes(
    store_target: StoreTarget,  # noqa: F811
    tmp_path: Path,
) -> None:
    settings = settings_for(store_target.settings)
    store = await store_target.open()
    try:
        await one_agent(store)
        workflow_id = uuid.uuid4().hex
        before, after = tmp_path / "calls-before.txt", tmp_path / "calls-after.txt"
        engine = Engine(settings, llm=scripted_model(before), store=store)
        task = asyncio.create_task(
            engine.run(WorkflowRequest(text=REQUEST, workflow_id=workflow_id))
        )
        await _results_stored(store, workflow_id, 8)
        engine.begin_shutdown()  # as the server does when it stops
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await engine.aclose()
        run = await store.get_run(workflow_id)
        assert run is not None and run.status == "interrupted"
        statuses = {r["subtask_id"]: r["status"] for r in run.results}
        done_before = {sid for sid, status in statuses.items() if status == "succeeded"}
        assert "cancelled" in statuses.values()  # those that ran when it stopped

        emitted: list[Event] = []
        async with Engine(settings, llm=scripted_model(after), store=store) as again:
            result = await again.resume(workflow_id, on_event=emitted.append)
        steps_after = [sid for sid in _lines(after) if sid != "-"]
        assert sorted(steps_after) == sorted(ALL - done_before)
        assert result.status is WorkflowStatus.SUCCEEDED and set(result.results) == ALL
        baseline = await _uninterrupted(settings, store)
        assert {sid: r.output for sid, r in result.results.items()} == {
            sid: r.output for sid, r in baseline.results.items()
        }
        assert result.final_answer == baseline.final_answer
        record = await store.get_run(workflow_id)
        assert record is not None and record.status == "succeeded"
        assert len(record.results) == len(ALL)  # the cancelled ones' rows were replaced
        # the stage log is the whole run's: the first process's, stopped in execute, then this
        executes = [s for s in record.stages if s["stage"] == "execute"]
        assert [bool(s["error"]) for s in executes] == [True, False]
        assert str(executes[0]["error"]).startswith("interrupted")
        assert [s["stage"] for s in record.stages].count("decompose") == 1
        assert result.stages.count("execute") == 1  # the stages that ran to their end
        assert not result.warnings  # no row the store refused, nothing lost
        _check_events(
            await store.events_after(workflow_id, 0, 100_000), emitted, finished_before=True
        )
    finally:
        await store.aclose()


# -- smaller plans, on SQLite and PostgreSQL ---------------------------------------------------


def _model(
    calls: list[str],
    *,
    slow: frozenset[str] = frozenset(),
    blank: frozenset[str] = frozenset(),
    plan: Sequence[dict[str, Any]] = (),
) -> ScriptedLLM:
    """Plans ``plan``; answers ``out:<id>``, blank for ``blank`` steps, after a minute for
    ``slow`` ones; each step's id is added to ``calls``."""

    def latency(messages: Sequence[Message]) -> float:
        sid = step_of(messages)
        if sid:
            calls.append(sid)
        return 60.0 if sid in slow else 0.0

    def reply(messages: Sequence[Message]) -> str:
        sid = step_of(messages)
        return " " if sid in blank else f"out:{sid}"

    return ScriptedLLM(
        rules=[
            Rule(lambda p: p.startswith("Request:\n") and "Results:" not in p, plan_json(*plan))
        ],
        default=reply,
        latency=latency,
    )


SMALL: tuple[dict[str, Any], ...] = (
    {"id": "bad", "description": "fails for good"},
    {"id": "after_bad", "description": "needs the failed one", "depends_on": ["bad"]},
    {"id": "quick", "description": "done before the stop"},
    {"id": "slow", "description": "running at the stop"},
    {"id": "last", "description": "after both", "depends_on": ["quick", "slow"]},
)


async def _stopped_run(settings: Settings, store: SqlStore, workflow_id: str) -> None:
    """A run of :data:`SMALL` stopped with its server while ``slow`` runs: ``bad`` failed
    (blank answers), ``after_bad`` skipped, ``quick`` succeeded."""
    await one_agent(store)
    calls: list[str] = []
    model = _model(calls, slow=frozenset({"slow"}), blank=frozenset({"bad"}), plan=SMALL)
    engine = Engine(settings, llm=model, store=store)
    task = asyncio.create_task(
        engine.run(WorkflowRequest(text="a small plan", workflow_id=workflow_id))
    )
    await _results_stored(store, workflow_id, 3)
    engine.begin_shutdown()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await engine.aclose()


async def test_a_failed_subtask_stays_failed_and_what_needs_it_is_skipped_again(
    store_target: StoreTarget,  # noqa: F811
) -> None:
    settings = settings_for(store_target.settings)
    store = await store_target.open()
    try:
        await _stopped_run(settings, store, "wf-small")
        calls: list[str] = []
        async with Engine(settings, llm=_model(calls, plan=SMALL), store=store) as engine:
            result = await engine.resume("wf-small")
        assert sorted(calls) == ["last", "slow"]  # not bad (it failed for good), not quick
        statuses = {sid: r.status.value for sid, r in result.results.items()}
        assert statuses == {
            "bad": "failed",
            "after_bad": "skipped",
            "quick": "succeeded",
            "slow": "succeeded",
            "last": "succeeded",
        }
        assert result.results["bad"].attempts == 3 and result.results["bad"].error is not None
        assert result.status is WorkflowStatus.PARTIAL
        assert result.final_answer == "out:last"
        record = await store.get_run("wf-small")
        assert record is not None and record.status == "partial"
        assert {r["subtask_id"]: r["status"] for r in record.results} == statuses
    finally:
        await store.aclose()


async def test_a_resumed_run_streams_its_events_on_from_the_stored_ones(
    store_target: StoreTarget,  # noqa: F811
) -> None:
    settings = settings_for(store_target.settings)
    store = await store_target.open()
    try:
        await _stopped_run(settings, store, "wf-stream")
        last = (await store.events_after("wf-stream", 0, 100_000))[-1]["seq"]
        engine = Engine(settings, llm=_model([], plan=SMALL), store=store)
        async with engine, engine.stream_resume("wf-stream") as stream:
            events = [event async for event in stream]
        assert isinstance(events[0], WorkflowResumed) and events[0].seq == last + 1
        assert events[0].carried == {"bad": "failed", "quick": "succeeded"}
        assert events[1].kind == "plan_ready"
        assert [e.seq for e in events] == list(range(last + 1, last + 1 + len(events)))
        assert events[-1].kind == "workflow_finished"
        assert stream.result.status is WorkflowStatus.PARTIAL
    finally:
        await store.aclose()


async def test_a_run_stopped_before_its_plan_starts_over(
    store_target: StoreTarget,  # noqa: F811
) -> None:
    settings = settings_for(store_target.settings)
    store = await store_target.open()
    try:
        await one_agent(store)
        level = LevelChoice(level=Level.ORGAN, source="caller", reasons=("asked",))
        extra = {
            "recipe": False,
            "level": level.model_dump(mode="json"),
            "request": {"budget_tokens": 100_000},
        }
        await store.start_execution("wf-early", "a small plan", extra)
        await store.finish_execution(
            "wf-early",
            status="interrupted",
            stages=[],
            plan=None,
            totals=None,
            final_answer=None,
            error="interrupted",
        )
        calls: list[str] = []
        emitted: list[Event] = []
        async with Engine(settings, llm=_model(calls, plan=SMALL[2:]), store=store) as engine:
            result = await engine.resume("wf-early", on_event=emitted.append)
        assert isinstance(emitted[0], WorkflowResumed)
        assert emitted[0].replanned and emitted[0].carried_over == 0 and emitted[0].seq == 1
        assert sorted(calls) == ["last", "quick", "slow"]
        assert result.status is WorkflowStatus.SUCCEEDED
        assert result.level is not None and result.level.source == "caller"
        assert result.stages[:2] == ("prompt_variant", "decompose")  # planned again
        record = await store.get_run("wf-early")
        assert record is not None and record.status == "succeeded"
        assert record.plan is not None and len(record.plan["subtasks"]) == 3
    finally:
        await store.aclose()


async def test_runs_that_cannot_be_resumed_are_refused(
    store_target: StoreTarget,  # noqa: F811
) -> None:
    settings = settings_for(store_target.settings)
    store = await store_target.open()
    try:
        await one_agent(store)
        calls: list[str] = []
        async with Engine(settings, llm=_model(calls, plan=SMALL[2:]), store=store) as engine:
            done = await engine.run(WorkflowRequest(text="a small plan"))
            with pytest.raises(
                InvalidRequestError,
                match="it succeeded; only an interrupted run can be resumed",
            ):
                await engine.resume(done.workflow_id)
            with pytest.raises(InvalidRequestError, match="no stored run has the id 'nope'"):
                await engine.resume("nope")
            await store.start_execution("wf-live", "r", {})  # its process renews its lease
            with pytest.raises(InvalidRequestError, match="another process is running it"):
                await engine.resume("wf-live")
        assert len(calls) == 3  # none by the refused resumes
        record = await store.get_run(done.workflow_id)
        assert record is not None and record.status == "succeeded"
    finally:
        await store.aclose()


async def test_of_two_processes_resuming_at_once_one_wins(
    store_target: StoreTarget,  # noqa: F811
) -> None:
    settings = settings_for(store_target.settings)
    store = await store_target.open()
    other = await store_target.open()  # as another process would
    try:
        await _stopped_run(settings, store, "wf-twice")
        calls: list[str] = []
        engines = [Engine(settings, llm=_model(calls, plan=SMALL), store=s) for s in (store, other)]
        outcomes = await asyncio.gather(
            *(e.resume("wf-twice") for e in engines), return_exceptions=True
        )
        won = [o for o in outcomes if isinstance(o, WorkflowResult)]
        lost = [o for o in outcomes if isinstance(o, BaseException)]
        assert len(won) == 1 and len(lost) == 1
        assert isinstance(lost[0], InvalidRequestError)
        # refused while the winner runs it, or (on a loaded machine, SQLite's lock waits
        # backing off) once the winner has ended it
        assert "another process is running it" in str(lost[0]) or "it ended partial" in str(lost[0])
        assert sorted(calls) == ["last", "slow"]  # once: by the winner
        for engine in engines:
            await engine.aclose()
    finally:
        await store.aclose()
        await other.aclose()


async def test_resuming_needs_a_store() -> None:
    settings = settings_for(StoreSettings(enabled=False))
    async with Engine(settings, llm=_model([], plan=SMALL)) as engine:
        with pytest.raises(ConfigurationError, match=r"store\.enabled"):
            await engine.resume("wf")


def test_the_event_bus_numbers_on_from_where_it_is_told() -> None:
    bus = EventBus("wf", 41)
    seen: list[Event] = []
    bus.subscribe(seen.append)
    bus.emit(WorkflowResumed, carried_over=1, remaining=2, carried={"a": "succeeded"})
    assert [(e.seq, e.kind) for e in seen] == [(42, "workflow_resumed")]
    assert bus.emitted == 42


class _AddStep:
    """A planning stage run after a stage of another phase: the plan changes again."""

    name = "add_step"
    phase = Phase.PLAN
    reads = frozenset({PLAN, ASSIGNMENTS})
    writes = frozenset({PLAN, ASSIGNMENTS})

    async def run(self, state: WorkflowState) -> None:
        plan = state.require_plan()
        specs = [
            SubtaskSpec(id=s.id, description=s.description, depends_on=s.depends_on)
            for s in plan.subtasks
        ]
        state.planning.plan = build_plan([*specs, SubtaskSpec(id="extra", description="more")])
        state.planning.assignments["extra"] = Assignment("extra", "generalist", "added")


class _Replanning:
    def select(self, request: WorkflowRequest, level: Level, runtime: Runtime) -> StageSelection:
        return StageSelection(
            [
                DecomposeStage(),
                SelectStage(),
                CoordinateStage(),
                _AddStep(),
                ExecuteStage(),
                RespondStage(),
            ]
        )


async def test_the_checkpoint_is_saved_once_planned_and_again_when_planning_changes_it(
    store_target: StoreTarget,  # noqa: F811
) -> None:
    settings = settings_for(store_target.settings)
    store = await store_target.open()
    saved: list[list[str]] = []
    save = store.save_checkpoint

    async def counted(
        workflow_id: str, checkpoint: Mapping[str, Any], *, owner: str | None = None
    ) -> None:
        saved.append([s["id"] for s in checkpoint["plan"]["subtasks"]])
        await save(workflow_id, checkpoint, owner=owner)

    store.save_checkpoint = counted  # type: ignore[method-assign]
    try:
        await one_agent(store)
        engine = Engine(settings, llm=_model([], plan=SMALL[2:]), store=store)
        async with engine:
            engine.selector = _Replanning()
            result = await engine.run(WorkflowRequest(text="a small plan"))
        assert result.status is WorkflowStatus.SUCCEEDED
        assert saved == [["quick", "slow", "last"], ["quick", "slow", "last", "extra"]]
        async with store.engine.connect() as conn:
            checkpoint = await conn.scalar(
                select(workflow_executions.c.checkpoint).where(
                    workflow_executions.c.id == result.workflow_id
                )
            )
        assert checkpoint is not None
        assert [s["id"] for s in checkpoint["plan"]["subtasks"]][-1] == "extra"
        assert checkpoint["assignments"][-1] == ["extra", "generalist", "added"]
        assert [a["name"] for a in checkpoint["agents"]] == ["generalist"]
        assert checkpoint["stages"] == ["decompose", "select_agents", "coordinate", "add_step"]
    finally:
        await store.aclose()


async def test_a_resume_that_cannot_go_on_leaves_the_run_interrupted(
    store_target: StoreTarget,  # noqa: F811
) -> None:
    settings = settings_for(store_target.settings)
    store = await store_target.open()
    try:
        stages = [{"stage": "decompose", "phase": "plan", "elapsed_s": 0.5, "error": None}]
        await store.start_execution("wf-newer", "a small plan", {"recipe": False})
        await store.save_checkpoint("wf-newer", {"version": 99})
        await store.finish_execution(
            "wf-newer",
            status="interrupted",
            stages=stages,
            plan={"subtasks": []},
            totals=None,
            final_answer=None,
            error="interrupted",
        )
        calls: list[str] = []
        async with Engine(settings, llm=_model(calls, plan=SMALL), store=store) as engine:
            with pytest.raises(ConfigurationError, match="checkpoint has layout 99"):
                await engine.resume("wf-newer")
        assert calls == []
        run = await store.get_run("wf-newer")
        assert run is not None and run.status == "interrupted"  # resumable, by a newer engine
        assert run.error is not None and "resuming it failed" in run.error
        assert (run.stages, run.plan) == (stages, {"subtasks": []})  # as it was
    finally:
        await store.aclose()
