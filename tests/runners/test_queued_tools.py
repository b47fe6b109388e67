"""Agents with tools on the queued runner: a real ``automatos worker`` process runs the tool
loop (its model is :func:`tool_model`, below), a real Redis carries the job and the answer."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path

import pytest

from automatos.domain.agent import AgentSpec
from automatos.domain.plan import SubtaskSpec
from automatos.domain.tools import MCPServerConfig
from automatos.errors import ToolLoopError
from automatos.graph import build_plan
from automatos.llm.base import Message, ToolCall
from automatos.phases.execute.tool_loop import spent_of
from automatos.runners.base import AgentTask
from automatos.runners.queued import QueuedTaskRunner
from automatos.settings import RunnerSettings, Settings, ToolSettings
from automatos.testing import Rule, ScriptedLLM, tool_call
from automatos.tools.host import ToolHost, current_host
from tests.runners.conftest import AUTOMATOS, REDIS_URL, ROOT
from tests.tools.test_mcp import gone

MCP_SERVER = ROOT / "tests" / "tools" / "mcp_server.py"


def _endless(messages: Sequence[Message]) -> ToolCall:
    n = sum(m.role == "tool" for m in messages)
    return tool_call("calculator", {"expression": f"{n} + 1"})


def _ask(name: str, arguments: dict[str, object]) -> Rule:
    return Rule(f"use {name}", lambda _: tool_call(name, arguments))


def tool_model(settings: Settings) -> ScriptedLLM:
    """The worker's model: asks for the tool its task names, then answers with the result."""
    return ScriptedLLM(
        rules=[
            Rule("loop forever", _endless),  # the task's message stays the last user one
            Rule(".", lambda m: f"The tool said {m[-1].content}.", role="tool"),
            _ask("calculator", {"expression": "6 * 7"}),
            _ask("t__add", {"a": 2, "b": 3}),
            _ask("t__pid", {}),
        ],
        default="No tool needed.",
        record=False,
    )


@pytest.fixture
def worker(queue: str, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """One worker of ``queue`` whose model is :func:`tool_model`."""
    log = tmp_path / "worker.log"
    environ = {k: v for k, v in os.environ.items() if not k.startswith("AUTOMATOS_")}
    environ.update({"AUTOMATOS_RUNNER__REDIS_TIMEOUT_S": "2", "PYTHONPATH": str(ROOT)})
    command = [AUTOMATOS, "worker", "--queue", queue, "--redis-url", REDIS_URL]
    command += ["--concurrency", "4", "--grace", "5"]
    command += ["--provider", "tests.runners.test_queued_tools:tool_model"]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=environ, cwd=ROOT
        )
    try:
        deadline = time.monotonic() + 60
        while b"job(s) at once" not in log.read_bytes():
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _task(text: str, *tools: str, sid: str = "a") -> AgentTask:
    subtask = build_plan([SubtaskSpec(id=sid, description=sid)]).subtasks[0]
    agent = AgentSpec(name="toolish", model="scripted", tools=tools)
    return AgentTask("wf-tools", subtask, 1, agent, (Message("user", text),), 30.0)


@contextlib.asynccontextmanager
async def _runner(queue: str) -> AsyncIterator[QueuedTaskRunner]:
    runner = QueuedTaskRunner(
        RunnerSettings(kind="queued", queue=queue, redis_url=REDIS_URL, redis_timeout_s=2.0)
    )
    try:
        yield runner
    finally:
        await runner.aclose()


def _stdio() -> MCPServerConfig:
    return MCPServerConfig(name="t", command=[sys.executable, str(MCP_SERVER), "stdio"])


async def test_a_worker_runs_the_tool_loop_and_answers_with_its_rounds_and_tool_uses(
    queue: str, worker: subprocess.Popen[bytes]
) -> None:
    async with _runner(queue) as runner:
        done = await runner.run(_task("Please use calculator for 6 * 7.", "calculator"))
    assert done.text == "The tool said 42."
    assert len(done.rounds) == 2
    assert [r.tool_calls[0].name for r in done.rounds[:1]] == ["calculator"]
    assert done.tokens_in == sum(r.tokens_in for r in done.rounds)
    assert done.tokens_out == sum(r.tokens_out for r in done.rounds)
    (use,) = done.tool_uses
    assert (use.tool, use.outcome, use.error) == ("calculator", "ok", None)
    assert len(use.arguments_digest) == 16


async def test_the_runs_bounds_travel_with_the_job_and_what_was_spent_comes_back(
    queue: str, worker: subprocess.Popen[bytes]
) -> None:
    host = ToolHost(ToolSettings(max_calls=2))  # this run's bounds, not the worker's (8)
    using = current_host.set(host)
    try:
        async with _runner(queue) as runner:
            with pytest.raises(ToolLoopError, match="still called tools") as caught:
                await runner.run(_task("Please loop forever.", "calculator"))
    finally:
        current_host.reset(using)
        await host.aclose()
    assert not caught.value.retryable
    spent = spent_of(caught.value)
    assert spent is not None
    assert len(spent.rounds) == 3  # two calls, then told to answer: it called again
    assert [u.outcome for u in spent.tool_uses] == ["ok", "ok"]


async def test_the_workspaces_mcp_servers_go_to_the_worker_which_stops_them_when_it_stops(
    queue: str, worker: subprocess.Popen[bytes]
) -> None:
    host = ToolHost(workspace=[_stdio()])  # known to the orchestrator only
    using = current_host.set(host)
    try:
        async with _runner(queue) as runner:
            added, pid = await asyncio.gather(
                runner.run(_task("Please use t__add.", "t__add", "t__pid", sid="a")),
                runner.run(_task("Please use t__pid.", "mcp:t", sid="b")),
            )
            again = await runner.run(_task("Please use t__pid.", "mcp:t", sid="c"))
    finally:
        current_host.reset(using)
        await host.aclose()
    assert added.text == "The tool said 5."
    assert host.pids() == {}  # nothing started here: the tools ran on the worker
    assert pid.text == again.text  # one server for the workflow's jobs on the worker
    server = int(pid.text.removeprefix("The tool said ").removesuffix("."))
    assert not gone(server)
    worker.send_signal(signal.SIGTERM)
    await asyncio.to_thread(worker.wait, 30)
    assert gone(server)
