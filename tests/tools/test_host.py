"""The tool host of a run (and of a worker's workflows): which tools a task gets, MCP servers
started once and shared, closed with the run; against real MCP servers
(tests/tools/mcp_server.py over stdio) and a real SQLite store."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

pytest.importorskip("mcp", reason="the mcp SDK is not installed")

from automatos import Engine, Settings
from automatos.domain.agent import AgentSpec
from automatos.domain.plan import SubtaskSpec
from automatos.domain.request import WorkflowRequest
from automatos.domain.tools import MCPServerConfig
from automatos.errors import ConfigurationError, ToolNotFoundError
from automatos.graph import build_plan
from automatos.llm.base import Message, ToolCall
from automatos.phases.execute.tool_loop import run_tool_loop
from automatos.runners.base import AgentTask, ToolLimits
from automatos.runners.local import LocalTaskRunner
from automatos.settings import (
    ExecutionSettings,
    PlanLimits,
    QualitySettings,
    StoreSettings,
    ToolSettings,
)
from automatos.testing import Rule, ScriptedLLM, tool_call
from automatos.tools.host import ToolHost, WorkflowHosts, current_host, resolve_servers
from tests.tools.test_mcp import gone

SERVER = Path(__file__).with_name("mcp_server.py")


def stdio(name: str = "t", *extra: str) -> MCPServerConfig:
    return MCPServerConfig(name=name, command=[sys.executable, str(SERVER), "stdio", *extra])


def task(
    *tools: str,
    servers: tuple[MCPServerConfig, ...] = (),
    sid: str = "a",
    workflow: str = "wf",
    own: tuple[MCPServerConfig, ...] = (),
    limits: ToolLimits | None = None,
) -> AgentTask:
    plan = build_plan([SubtaskSpec(id=sid, description="use the tools")])
    agent = AgentSpec(name="user", model="m", tools=tools, mcp_servers=own)
    messages = (Message("user", "go"),)
    return AgentTask(workflow, plan.by_id[sid], 1, agent, messages, 30.0, servers, limits)


async def pid_of(host: ToolHost, t: AgentTask) -> int:
    box = await host.toolbox(t)
    assert box is not None
    return int(await box.tools.call(tool_call("t__pid")))


async def test_an_mcp_server_is_shared_by_the_runs_tasks_and_closed_with_it() -> None:
    host = ToolHost(workspace=[stdio()])
    try:
        # two tasks asking at once start one server
        first, second = await asyncio.gather(
            pid_of(host, task("mcp:t", sid="a")), pid_of(host, task("t__pid", sid="b"))
        )
        assert first == second
        assert host.pids() == {"t": first}
        assert await pid_of(host, task("mcp:t", sid="c")) == first
        assert not gone(first)
    finally:
        await host.aclose()
    assert gone(first)
    with pytest.raises(Exception, match="closed"):
        await pid_of(host, task("mcp:t"))


async def test_the_allow_list_is_all_a_task_gets() -> None:
    host = ToolHost(workspace=[stdio()])
    try:
        box = await host.toolbox(task("calculator", "t__add"))
        assert box is not None
        assert box.tools.names() == ["calculator", "t__add"]
        whole = await host.toolbox(task("mcp:t"))
        assert whole is not None and {"t__add", "t__echo", "t__pid"} <= set(whole.tools.names())
        assert "calculator" not in whole.tools
        # a model calling a tool off the list is told it is unknown
        calls = [
            tool_call("t__echo", {"text": "x"}),
            tool_call("current_time"),
            tool_call("t__add", {"a": 2, "b": 3}),
        ]
        llm = ScriptedLLM(replies=[calls, "5"])
        t = task("calculator", "t__add")
        done = await run_tool_loop(llm, t, box)
        assert [u.outcome for u in done.tool_uses] == ["unknown_tool", "unknown_tool", "ok"]
        assert llm.calls[1].messages[-1].content == "5"
        assert [s.name for s in llm.calls[0].tools or ()] == ["calculator", "t__add"]
    finally:
        await host.aclose()


@pytest.mark.parametrize(
    ("entry", "why"),
    [
        ("nope", "the built-in tools are calculator, current_time"),
        ("read_file", "tools.read_root"),
        ("search_knowledge_base", "no knowledge base"),
        ("mcp:missing", "no MCP server named 'missing'"),
        ("missing__tool", "no MCP server named 'missing'"),
        ("t__nosuch", "lists no such tool"),
    ],
)
async def test_an_agent_naming_a_tool_there_is_not_fails_clearly(entry: str, why: str) -> None:
    host = ToolHost(workspace=[stdio()])
    try:
        with pytest.raises(ToolNotFoundError, match=why) as caught:
            await host.toolbox(task("calculator", entry))
        assert not caught.value.retryable
        assert "agent 'user'" in str(caught.value)
    finally:
        await host.aclose()


async def test_no_toolbox_without_tools_or_calls() -> None:
    loads: list[int] = []

    async def workspace() -> list[MCPServerConfig]:
        loads.append(1)
        return [stdio()]

    host = ToolHost(ToolSettings(max_calls=0), workspace=workspace)
    assert await host.toolbox(task()) is None
    assert await host.toolbox(task("calculator")) is None
    allowed = ToolLimits(max_calls=2)
    box = await host.toolbox(task("calculator", limits=allowed))
    assert box is not None and box.limits is allowed  # the task's own bounds win
    assert loads == []  # no agent named a server: the workspace's were never read
    await host.aclose()


async def test_read_file_reads_under_the_root_of_the_settings(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("the key fact")
    host = ToolHost(ToolSettings(read_root=tmp_path))
    box = await host.toolbox(task("read_file"))
    assert box is not None
    assert await box.tools.call(tool_call("read_file", {"path": "notes.txt"})) == "the key fact"
    missing = ToolHost(ToolSettings(read_root=tmp_path / "gone"))
    with pytest.raises(ConfigurationError, match="read_file"):
        await missing.toolbox(task("read_file"))
    assert await missing.toolbox(task("calculator")) is not None  # the others still work


def test_an_agents_own_server_wins_and_only_named_servers_are_resolved() -> None:
    workspace = [stdio("t"), stdio("other"), stdio("unused")]
    own = stdio("t", "--own")
    agent = AgentSpec(name="a", tools=("mcp:t", "other__echo", "calculator"), mcp_servers=(own,))
    assert resolve_servers(workspace, agent) == (own, workspace[1])


async def test_the_servers_a_task_carries_win_over_the_hosts() -> None:
    host = ToolHost(workspace=[stdio("elsewhere")])  # a worker's host knows no workspace
    try:
        box = await host.toolbox(task("t__pid", servers=(stdio(),)))
        assert box is not None and box.tools.names() == ["t__pid"]
    finally:
        await host.aclose()


async def test_the_secret_names_of_both_sides_redact() -> None:
    host = ToolHost(ToolSettings(secret_names=("customer_ssn",)))
    box = await host.toolbox(task("calculator", limits=ToolLimits(secret_names=("pin",))))
    assert box is not None
    shown = box.redactor.text("customer_ssn=123-45-6789 pin=4321 count=3")
    assert "123-45" not in shown and "4321" not in shown and "count=3" in shown


async def test_a_workers_hosts_are_per_workflow_and_closed_when_idle() -> None:
    hosts = WorkflowHosts(idle_s=0.2)
    one = hosts.acquire("w1")
    assert hosts.acquire("w1") is one and hosts.acquire("w2") is not one
    first = await pid_of(one, task("t__pid", servers=(stdio(),), workflow="w1"))
    hosts.release("w1")
    hosts.release("w1")
    await asyncio.sleep(0.1)
    assert hosts.acquire("w1") is one  # back before it expired: kept
    hosts.release("w1")
    for _ in range(100):
        if gone(first):
            break
        await asyncio.sleep(0.05)
    assert gone(first) and one.closed
    assert hosts.acquire("w1") is not one
    other = hosts.acquire("w2")
    second = await pid_of(other, task("t__pid", servers=(stdio(),), workflow="w2"))
    await hosts.aclose()  # the worker stops: every host closed, in use or not
    assert gone(second) and len(hosts) == 0


async def test_the_workspaces_servers_come_from_the_store(tmp_path: Path) -> None:
    from automatos.store.sql import SqlStore

    store = await SqlStore.open(StoreSettings(data_dir=tmp_path))
    try:
        await store.add_mcp_server(stdio("ws"))
        host = ToolHost.for_run(ToolSettings(), store)
        assert await host.servers_for(AgentSpec(name="a", tools=("mcp:ws",))) == (stdio("ws"),)
        assert await host.servers_for(AgentSpec(name="b", tools=("calculator",))) == ()
        await host.aclose()
    finally:
        await store.aclose()


async def test_a_task_outside_a_run_gets_a_host_of_its_own_closed_after_it() -> None:
    llm = ScriptedLLM(replies=[tool_call("t__pid"), "done"])
    runner = LocalTaskRunner(llm)
    assert current_host.get() is None
    done = await runner.run(task("t__pid", own=(stdio(),)))
    pid = int(llm.calls[1].messages[-1].content)
    assert done.text == "done" and len(done.rounds) == 2
    assert gone(pid)


async def test_a_runs_subtasks_share_its_server_which_closes_when_the_run_ends() -> None:
    """Through the engine: the pipeline makes the run's host, and closes it with the run."""

    def answer(messages: Sequence[Message]) -> str:
        return f"Server pid {messages[-1].content}."

    def ask(messages: Sequence[Message]) -> ToolCall:
        return tool_call("t__pid")

    rules = [Rule(".", answer, role="tool"), Rule("Your step", ask)]
    llm = ScriptedLLM(rules=rules, default="Final: done.")
    agent = AgentSpec(name="toolish", model="scripted", tools=("mcp:t",), mcp_servers=(stdio(),))
    request = WorkflowRequest(
        text="use the server twice",
        subtasks=(
            SubtaskSpec(id="a", description="first", agent="toolish"),
            SubtaskSpec(id="b", description="second", agent="toolish"),
        ),
        agents=(agent,),
    )
    settings = Settings(
        execution=ExecutionSettings(max_attempts=1),
        store=StoreSettings(enabled=False),
        quality=QualitySettings(enabled=False),
        plan=PlanLimits(),
    )
    async with Engine(settings, llm=llm) as engine:
        result = await engine.run(request)
    pids = {
        int(call.messages[-1].content)
        for call in llm.calls
        if call.messages and call.messages[-1].role == "tool"
    }
    assert result.status.value == "succeeded", result.warnings
    assert {r.output for r in result.results.values()} == {f"Server pid {p}." for p in pids}
    assert len(pids) == 1  # one server for both subtasks
    assert gone(pids.pop())  # stopped with the run
    assert current_host.get() is None


async def test_the_knowledge_base_is_searched_through_the_runs_context_source(
    tmp_path: Path,
) -> None:
    from automatos.llm.base import estimate_tokens
    from automatos.retrieval.embedder import LocalEmbedder
    from automatos.retrieval.ingest import ingest
    from automatos.retrieval.pool import ContextSource
    from automatos.settings import ContextSettings
    from automatos.store.sql import SqlStore

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "llamas.txt").write_text("Llamas are pack animals of the Andes.\n")
    (docs / "tea.txt").write_text("Green tea is made from leaves that are not oxidised.\n")
    embedder = LocalEmbedder()
    store = await SqlStore.open(StoreSettings(data_dir=tmp_path / "db"))
    try:
        settings = ContextSettings(chunk_tokens=60, chunk_overlap_tokens=10)
        await ingest(
            [docs],
            store,
            embedder,
            tokenizer="estimate",
            count_tokens=estimate_tokens,
            settings=settings,
        )
        source = ContextSource(embedder)
        host = ToolHost.for_run(ToolSettings(), store, source)
        box = await host.toolbox(task("search_knowledge_base"))
        assert box is not None
        call = tool_call("search_knowledge_base", {"query": "animals that carry loads", "k": 1})
        found = await box.tools.call(call)
        assert "llamas.txt" in found and "tea" not in found
        assert (await source.pool(store, memories=False)).chunks == 2  # the stage's pool
        without = ToolHost.for_run(ToolSettings(), store)  # no context source: no search
        with pytest.raises(ToolNotFoundError, match="no knowledge base"):
            await without.toolbox(task("search_knowledge_base"))
    finally:
        await store.aclose()
        embedder.close()
