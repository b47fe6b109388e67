"""Runs are recorded as they go: what finished survives a crash."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from automatos import (
    ConfigurationError,
    Engine,
    Settings,
    StoreError,
    SubtaskSpec,
    WorkflowRequest,
    aio,
)
from automatos.cli import app
from automatos.settings import StoreSettings
from automatos.store.base import MetricsUpdate
from automatos.store.database import create_engine, shown_url
from automatos.store.sql import SqlStore
from automatos.testing import ScriptedLLM
from tests.conftest import fast_settings, planner, step_of


def settings_in(data_dir: Path) -> Settings:
    settings = fast_settings()
    settings.store = StoreSettings(data_dir=data_dir, flush_interval_s=0.02)
    return settings


async def test_a_run_is_stored_with_its_results_events_and_calls(tmp_path: Path) -> None:
    llm = ScriptedLLM(
        rules=[
            planner(
                {"id": "a", "description": "x"},
                {"id": "b", "description": "y", "depends_on": ["a"]},
            )
        ],
        default=lambda m: f"out:{step_of(m)}",
    )
    events: list[object] = []
    async with Engine(settings_in(tmp_path), llm=llm) as engine:
        result = await engine.run("plan and do", on_event=events.append)
        assert engine.store is not None
        run = await engine.store.get_run(result.workflow_id)
    assert run is not None
    assert run.status == "succeeded"
    assert run.final_answer == "out:b"
    assert {r["subtask_id"]: r["output"] for r in run.results} == {"a": "out:a", "b": "out:b"}
    assert run.events == len(events)
    # The selection answer does not validate, nor its repair: both calls are still counted.
    assert [c["stage"] for c in run.calls] == [
        "decompose",
        "select_agents",
        "select_agents",
        "execute",
        "execute",
    ]
    assert [s["stage"] for s in run.stages] == [
        "prompt_variant",
        "decompose",
        "select_agents",
        "negotiate",
        "context",
        "coordinate",
        "execute",
        "aggregate",
        "assess",
        "learn",
        "memory",
        "respond",
    ]
    assert run.totals is not None and run.totals["llm_calls"] == 5
    assert run.plan is not None and len(run.plan["subtasks"]) == 2
    assert run.quality is not None and 0 <= run.quality["q"] <= 1


async def test_a_failed_plan_is_stored_as_failed_with_its_error(tmp_path: Path) -> None:
    async with Engine(settings_in(tmp_path), llm=ScriptedLLM(["x", "y"])) as engine:
        with contextlib.suppress(Exception):
            await engine.run("r")
        assert engine.store is not None
        [summary] = await engine.store.list_runs()
        run = await engine.store.get_run(summary.id)
    assert run is not None
    assert run.status == "failed"
    assert run.error is not None and "PlanParseError" in run.error
    assert [s["stage"] for s in run.stages] == ["prompt_variant", "decompose"]
    assert run.stages[1]["error"].startswith("PlanParseError")
    # the answer and its repair were paid for: both are in the call log
    assert [c["stage"] for c in run.calls] == ["decompose", "decompose"]


CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from automatos import Engine, SubtaskSpec, WorkflowRequest
    from automatos.settings import Settings, StoreSettings
    from automatos.testing import ScriptedLLM

    def latency(messages):
        return 60.0 if "Your step (slow)" in messages[-1].content else 0.0

    async def main():
        settings = Settings(store=StoreSettings(data_dir=sys.argv[1], flush_interval_s=0.02))
        request = WorkflowRequest(text="crash me", subtasks=(
            SubtaskSpec(id="fast", description="quick"),
            SubtaskSpec(id="slow", description="takes a minute"),
        ))
        print(request.workflow_id, flush=True)
        await Engine(settings, llm=ScriptedLLM(default="finished", latency=latency)).run(request)

    asyncio.run(main())
    """
)


def test_a_crash_mid_run_keeps_what_finished(tmp_path: Path) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    workflow_id = child.stdout.readline().strip()

    async def stored() -> object:
        store = await SqlStore.open(StoreSettings(data_dir=tmp_path))
        try:
            return await store.get_run(workflow_id)
        finally:
            await store.aclose()

    deadline = time.monotonic() + 30
    run = None
    while time.monotonic() < deadline:
        run = aio.run(stored()) if (tmp_path / "automatos.db").exists() else None
        if run is not None and run.results:  # type: ignore[attr-defined]
            break
        time.sleep(0.1)
    os.kill(child.pid, signal.SIGKILL)
    child.wait(10)
    child.stdout.close()
    run = aio.run(stored())
    assert run is not None
    assert run.status == "running"  # type: ignore[attr-defined]
    assert [(r["subtask_id"], r["output"]) for r in run.results] == [("fast", "finished")]  # type: ignore[attr-defined]


def test_runs_list_and_show(tmp_path: Path, monkeypatch: object) -> None:
    async def one_run() -> str:
        request = WorkflowRequest(
            text="stored request", subtasks=(SubtaskSpec(id="only", description="x"),)
        )
        settings = Settings(store=StoreSettings(data_dir=tmp_path))
        async with Engine(settings, llm=ScriptedLLM(default="the answer")) as engine:
            return (await engine.run(request)).workflow_id

    workflow_id = aio.run(one_run())
    env = {"AUTOMATOS_STORE__DATA_DIR": str(tmp_path)}
    runner = CliRunner()
    listed = runner.invoke(app, ["runs", "list"], env=env)
    assert listed.exit_code == 0, listed.output
    assert workflow_id[:12] in listed.output and "stored request" in listed.output
    shown = runner.invoke(app, ["runs", "show", workflow_id[:8]], env=env)
    assert shown.exit_code == 0, shown.output
    assert "only" in shown.output and "the answer" in shown.output
    missing = runner.invoke(app, ["runs", "show", "zzz"], env=env)
    assert missing.exit_code == 1 and "no stored run" in missing.output


def test_an_empty_store_says_so_and_where_it_is(tmp_path: Path) -> None:
    env = {"AUTOMATOS_STORE__DATA_DIR": str(tmp_path)}
    listed = CliRunner().invoke(app, ["runs", "list"], env=env)
    assert listed.exit_code == 0, listed.output
    assert "no stored runs yet" in listed.output
    assert str(tmp_path / "automatos.db") in listed.output.replace("\n", "")


def test_a_store_url_is_shown_without_its_password() -> None:
    url = "postgresql+asyncpg://postgres:s3cret@127.0.0.1:5432/test"
    shown = shown_url(StoreSettings(url=url))
    assert "s3cret" not in shown and shown.startswith("postgresql+asyncpg://postgres:")


async def test_an_unreachable_store_is_a_typed_error_without_the_password() -> None:
    unreachable = StoreSettings(url="postgresql+asyncpg://postgres:s3cret@127.0.0.1:1/test")
    with pytest.raises(StoreError, match="cannot open the store") as caught:
        await SqlStore.open(unreachable)
    assert "s3cret" not in str(caught.value) and caught.value.retryable
    with pytest.raises(ConfigurationError, match=r"store\.url"):
        await SqlStore.open(StoreSettings(url="nosuchdb://somewhere"))


def test_the_cli_names_an_unreachable_store_instead_of_a_traceback() -> None:
    env = {"AUTOMATOS_STORE__URL": "postgresql+asyncpg://postgres:s3cret@127.0.0.1:1/test"}
    listed = CliRunner().invoke(app, ["runs", "list"], env=env)
    assert listed.exit_code == 1
    assert "StoreError: cannot open the store" in listed.output
    assert "s3cret" not in listed.output and "Traceback" not in listed.output


async def test_a_store_lost_mid_run_costs_warnings_not_the_result(tmp_path: Path) -> None:
    class Failing(SqlStore):
        """A database that goes away once the run has started."""

        async def update_metrics(self, update: MetricsUpdate) -> None:
            raise OSError("disk full")

        async def finish_execution(self, workflow_id: str, **fields: object) -> None:
            raise OSError("disk full")

    opened = await SqlStore.open(StoreSettings(data_dir=tmp_path))
    store = Failing(opened.engine, opened.workspace)
    request = WorkflowRequest(text="r", subtasks=(SubtaskSpec(id="a", description="x"),))
    result = await Engine(fast_settings(), llm=ScriptedLLM(default="done"), store=store).run(
        request
    )
    assert result.status.value == "succeeded" and result.final_answer == "done"
    assert any("taught could not be stored: OSError: disk full" in w for w in result.warnings)
    assert any("record could not be completed: OSError" in w for w in result.warnings)
    await opened.aclose()


async def test_a_store_that_goes_away_is_a_typed_error(tmp_path: Path) -> None:
    store = await SqlStore.open(StoreSettings(data_dir=tmp_path))
    await store.engine.dispose()
    store.engine = create_engine("postgresql+asyncpg://postgres:s3cret@127.0.0.1:1/test")
    with pytest.raises(StoreError, match="start_execution: ConnectionRefusedError"):
        await store.start_execution("wf", "r", {})
    with pytest.raises(StoreError, match="agents"):
        await store.agents()
    request = WorkflowRequest(text="r", subtasks=(SubtaskSpec(id="a", description="x"),))
    with pytest.raises(StoreError):
        await Engine(fast_settings(), llm=ScriptedLLM(default="x"), store=store).run(request)
    await store.engine.dispose()
