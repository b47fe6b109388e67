"""The registry of running workflows at their edges: a cancel that comes as a workflow ends,
and a stop that comes before any workflow wrote its first event. No record is left
``running``, none loses its last events."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from automatos.domain.request import WorkflowRequest
from automatos.engine import Engine
from automatos.phases.pipeline import records_closed
from automatos.server.runs import RunRegistry
from automatos.store.sql import SqlStore
from automatos.testing import ScriptedLLM
from tests.conftest import planner
from tests.server.conftest import settings_in


@pytest.fixture
async def registry(tmp_path: Path) -> AsyncIterator[tuple[RunRegistry, SqlStore]]:
    settings = settings_in(tmp_path)
    llm = ScriptedLLM(
        rules=[planner({"id": "one", "description": "Say one thing"})],
        default="A fair and specific answer about databases, with facts.",
        latency=0.01,
    )
    store = await SqlStore.open(settings.store)
    engine = Engine(settings, llm=llm, store=store)
    try:
        yield RunRegistry(engine), store
    finally:
        await engine.aclose()
        await store.aclose()


async def test_a_cancel_as_the_workflow_ends_is_refused_and_the_record_completes(
    registry: tuple[RunRegistry, SqlStore],
) -> None:
    runs, store = registry
    wid, _ = runs.start(WorkflowRequest(text="Name a database."))
    live = runs.live(wid)
    assert live is not None and live.task is not None
    while live.ended is None:  # noqa: ASYNC110 - a client saw workflow_finished
        await asyncio.sleep(0)
    assert not runs.cancel(wid)
    live.task.cancel()  # and a cancel that gets through anyway (a server stopping)
    await asyncio.gather(live.task, return_exceptions=True)
    run = await store.get_run(wid)
    assert run is not None and run.status == "succeeded" and run.finished_at is not None
    assert run.events == len(live.events)


async def test_a_stop_before_the_first_event_leaves_no_record_running(
    registry: tuple[RunRegistry, SqlStore],
) -> None:
    runs, store = registry
    ids = [runs.start(WorkflowRequest(text=f"Name database {i}."))[0] for i in range(20)]
    await asyncio.sleep(0.001)  # their starts are on their way to the store
    await runs.aclose(0)
    await records_closed()
    for wid in ids:
        run = await store.get_run(wid)
        assert run is None or run.status in ("interrupted", "succeeded"), (wid, run)
