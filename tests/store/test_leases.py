"""A run whose process died is marked ``interrupted``, with what it wrote kept; a run whose
process lives keeps its lease. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, select, text

import automatos.store
from automatos import SubtaskResult, SubtaskStatus
from automatos.store import BatchWriter, WriteBatch
from automatos.store.database import create_engine, database_url
from automatos.store.tables import workflow_executions
from tests.store.conftest import StoreTarget

CHILD = textwrap.dedent(
    """
    import asyncio, json, sys
    from automatos import Engine, SubtaskSpec, WorkflowRequest
    from automatos.settings import Settings, StoreSettings
    from automatos.store.sql import SqlStore
    from automatos.testing import ScriptedLLM

    def latency(messages):
        return 60.0 if "Your step (slow)" in messages[-1].content else 0.0

    async def main():
        target = json.loads(sys.argv[1])
        settings = Settings(store=StoreSettings.model_validate(target["settings"]))
        store = await SqlStore.open(settings.store, **target["options"])
        request = WorkflowRequest(text="crash me", subtasks=(
            SubtaskSpec(id="fast", description="quick"),
            SubtaskSpec(id="slow", description="takes a minute"),
        ))
        print(request.workflow_id, flush=True)
        llm = ScriptedLLM(default="finished", latency=latency)
        await Engine(settings, llm=llm, store=store).run(request)

    asyncio.run(main())
    """
)


async def test_a_killed_run_is_interrupted_with_what_finished_kept(
    store_target: StoreTarget,
) -> None:
    lease = 0.2
    child_target = StoreTarget(
        store_target.settings.model_copy(update={"lease_s": lease, "flush_interval_s": 0.02}),
        store_target.options,
    )
    watcher = await store_target.open()  # the default lease: the live run stays running
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CHILD,
        json.dumps(child_target.as_json()),
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert child.stdout is not None
        workflow_id = (await asyncio.wait_for(child.stdout.readline(), 30)).decode().strip()
        async with asyncio.timeout(30):
            while True:
                run = await watcher.get_run(workflow_id)
                if run is not None and run.results:
                    break
                await asyncio.sleep(0.05)
        assert run.status == "running"
    finally:
        os.kill(child.pid, signal.SIGKILL)
        await child.wait()
        await watcher.aclose()
    await asyncio.sleep(3 * lease)
    store = await store_target.open(lease_s=lease)
    try:
        [summary] = await store.list_runs()
        assert (summary.id, summary.status) == (workflow_id, "interrupted")
        assert summary.finished_at is not None
        run = await store.get_run(workflow_id)
        assert run is not None and run.status == "interrupted"
        assert run.error is not None and "lease" in run.error
        assert [(r["subtask_id"], r["output"]) for r in run.results] == [("fast", "finished")]
        assert run.events > 0
    finally:
        await store.aclose()


async def test_a_live_run_keeps_its_lease_and_a_stalled_one_comes_back(
    store_target: StoreTarget,
) -> None:
    lease = 0.4  # renewed every 0.2 s, expired after 0.8 s: room for a loaded machine
    store = await store_target.open(lease_s=lease)
    try:
        await store.start_execution("wf", "r", {})
        writer = BatchWriter(store, "wf", batch_size=100, interval_s=0.02, lease_s=lease)
        await asyncio.sleep(4 * lease)
        assert [r.status for r in await store.list_runs()] == ["running"]
        await writer.aclose()  # as if its process stalled: nothing renews the lease
        await asyncio.sleep(3 * lease)
        [run] = await store.list_runs()
        assert run.status == "interrupted" and run.finished_at is not None
        await store.heartbeat("wf")  # it was only slow: it says how it ends
        run = await store.get_run("wf")
        assert run is not None
        assert (run.status, run.finished_at, run.error) == ("running", None, None)
        await store.finish_execution(
            "wf",
            status="succeeded",
            stages=[],
            plan=None,
            totals=None,
            final_answer="x",
            error=None,
        )
        await asyncio.sleep(3 * lease)
        assert [r.status for r in await store.list_runs()] == ["succeeded"]
    finally:
        await store.aclose()


async def test_opening_the_store_marks_runs_whose_process_died(store_target: StoreTarget) -> None:
    first = await store_target.open()
    await first.start_execution("wf-dead", "r", {})
    await first.write(WriteBatch("wf-dead", results=[SubtaskResult("a", SubtaskStatus.SUCCEEDED)]))
    await first.aclose()
    await asyncio.sleep(0.3)
    second = await store_target.open(lease_s=0.1)  # opened: nothing listed or shown yet
    try:
        async with second.engine.connect() as conn:
            status = await conn.scalar(select(workflow_executions.c.status))
        assert status == "interrupted"
    finally:
        await second.aclose()


def _to_0002(connection: Connection) -> None:
    config = Config()
    migrations = Path(automatos.store.__file__).with_name("migrations")
    config.set_main_option("script_location", str(migrations))
    config.attributes["connection"] = connection
    command.upgrade(config, "0002")


async def test_the_0003_migration_keeps_old_rows(store_target: StoreTarget) -> None:
    engine = create_engine(database_url(store_target.settings), **store_target.options)
    long_ago = datetime(2020, 1, 1, tzinfo=UTC)
    async with engine.begin() as conn:
        await conn.run_sync(_to_0002)
        await conn.execute(
            text("INSERT INTO workspaces (id, name, created_at) VALUES ('default', 'default', :t)"),
            {"t": long_ago},
        )
        await conn.execute(
            text(
                "INSERT INTO workflow_executions (id, workspace_id, request, status, stages, "
                "extra, started_at) VALUES ('old', 'default', 'r', 'running', '[]', '{}', :t)"
            ),
            {"t": long_ago},
        )
        await conn.execute(
            text(
                "INSERT INTO llm_calls (workflow_id, stage, model, tokens_in, tokens_out, "
                "cost_usd, latency_s) VALUES ('old', 'execute', 'm', 1, 1, 0.0, 0.1)"
            )
        )
    await engine.dispose()
    store = await store_target.open()
    try:
        run = await store.get_run("old")
        assert run is not None
        assert run.status == "interrupted"  # its process is long gone: no lease, an old start
        assert [c["priced"] for c in run.calls] == [True]
    finally:
        await store.aclose()
