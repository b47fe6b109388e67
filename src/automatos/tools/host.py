"""What the tasks of one run may call: the run's tool host.

A :class:`ToolHost` gives each task of an agent that has tools its :class:`~automatos.phases.
execute.tool_loop.Toolbox`: the tools its allow-list (``agent.tools``) names, the loop's
bounds and the redactor of what is recorded. It holds:

- the built-in tools, made from the settings of the process the tasks run in: the
  calculator and the current time always, ``read_file`` when ``tools.read_root`` is set,
  ``search_knowledge_base`` when the run has a knowledge base to search (a context source and
  a store that keeps one); and any Python tools it was given (``extra``);
- the MCP servers the agents name: the workspace's (read from the store once, when a task
  first needs them) and each agent's own (the agent's wins on a name). A server starts when
  a task first needs it, is shared by every later task that names the same server, and is
  stopped by :meth:`ToolHost.aclose`.

The orchestrator makes one host per run (:meth:`ToolHost.for_run`; the pipeline makes it
current for the run's tasks, :data:`current_host`, and closes it when the run ends, however
it ends); ``automatos worker`` keeps one per workflow whose jobs it runs
(:class:`WorkflowHosts`), closed once that workflow's jobs stop coming.

An agent's allow-list entry that names no tool the host has fails the task's attempt with a
:class:`~automatos.errors.ToolNotFoundError` saying why (not retryable): an agent whose tools
are misconfigured is told about at once, not left to answer without them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING

from automatos.domain.agent import MCP_PREFIX, AgentSpec
from automatos.domain.tools import MCPServerConfig
from automatos.errors import MCPError, ToolNotFoundError
from automatos.phases.execute.tool_loop import Toolbox
from automatos.runners.base import AgentTask, ToolLimits
from automatos.settings import ToolSettings
from automatos.tools.base import Tool
from automatos.tools.redact import Redactor
from automatos.tools.registry import MCP_SEPARATOR, ToolRegistry

if TYPE_CHECKING:
    from automatos.retrieval.pool import ContextSource
    from automatos.tools.builtins import KnowledgeBase
    from automatos.tools.mcp_server import MCPServer

__all__ = [
    "IDLE_CLOSE_S",
    "ToolHost",
    "WorkflowHosts",
    "WorkspaceServers",
    "current_host",
    "resolve_servers",
]

WorkspaceServers = Callable[[], Awaitable[Sequence[MCPServerConfig]]]
"""Reads the workspace's MCP servers (from the store), when a task first needs them."""

IDLE_CLOSE_S = 60.0
"""A worker closes a workflow's tool host once no job of it ran for this long."""

current_host: ContextVar[ToolHost | None] = ContextVar("automatos_tool_host", default=None)
"""The tool host of the run whose tasks run in this context, set by the pipeline for the
run's stages (the dispatcher's subtasks inherit it)."""

_BUILTIN_HINTS = {
    "read_file": "it is offered only when the setting tools.read_root names a directory",
    "search_knowledge_base": (
        "there is no knowledge base to search in this run (it needs the store and the "
        "context source: settings context.enabled or memory.enabled)"
    ),
}


def resolve_servers(
    workspace: Sequence[MCPServerConfig], agent: AgentSpec
) -> tuple[MCPServerConfig, ...]:
    """The MCP servers ``agent``'s tools name (``mcp:SERVER`` or ``SERVER__TOOL``), in the
    order its entries name them: the workspace's and the agent's own, the agent's winning
    when both have a server of one name. Servers it does not name are left out (their
    configs, with their headers, go nowhere they are not used)."""
    by_name = {config.name: config for config in workspace}
    by_name.update((config.name, config) for config in agent.mcp_servers)
    named = (_server_named(entry) for entry in agent.tools)
    return tuple(by_name[name] for name in dict.fromkeys(named) if name in by_name)


def _server_named(entry: str) -> str | None:
    if entry.startswith(MCP_PREFIX):
        return entry[len(MCP_PREFIX) :]
    server, separator, _ = entry.partition(MCP_SEPARATOR)
    return server if separator else None


class ToolHost:
    """The tools one run's tasks may call (see the module's text).

    Args:
        settings: the ``tools.*`` settings of this process (the limits of tasks that carry
            none, ``read_root``, the secret names).
        workspace: the workspace's MCP servers, or how to read them when first needed.
        knowledge: the run's knowledge base, or how to make it when first needed (``None``
            when there is none).
        extra: Python tools of the caller's, offered to the agents that name them.
        start_timeout_s: the longest an MCP server may take to start.
    """

    def __init__(
        self,
        settings: ToolSettings | None = None,
        *,
        workspace: Sequence[MCPServerConfig] | WorkspaceServers = (),
        knowledge: KnowledgeBase | Callable[[], KnowledgeBase | None] | None = None,
        extra: Iterable[Tool] = (),
        start_timeout_s: float = 30.0,
    ) -> None:
        self.settings = settings if settings is not None else ToolSettings()
        s = self.settings
        self.limits = ToolLimits(s.max_calls, s.call_timeout_s, s.secret_names)
        """The bounds of tasks that carry none of their own."""
        self._workspace_source = workspace
        self._workspace: tuple[MCPServerConfig, ...] | None = (
            None if callable(workspace) else tuple(workspace)
        )
        self._workspace_lock = asyncio.Lock()
        self._knowledge = knowledge
        self._extra = ToolRegistry(extra)
        self._start_timeout_s = start_timeout_s
        self._builtins: dict[str, Tool] = {}
        self._servers: dict[str, MCPServer] = {}
        self._registries: dict[tuple[object, ...], ToolRegistry] = {}
        self._redactors: dict[tuple[str, ...], Redactor] = {}
        self._closed = False

    @classmethod
    def for_run(
        cls,
        settings: ToolSettings,
        store: object | None = None,
        context: ContextSource | None = None,
        extra: Iterable[Tool] = (),
    ) -> ToolHost:
        """The host of one run on the orchestrator: the workspace's MCP servers from
        ``store`` (when it keeps them), the knowledge base of ``store`` searched through
        ``context`` (when both exist), the caller's Python tools (``extra``: the engine's).
        Nothing is read or started here."""

        async def workspace() -> Sequence[MCPServerConfig]:
            from automatos.store.base import MCPServerStore

            if not isinstance(store, MCPServerStore):
                return ()
            return [record.config for record in await store.mcp_servers()]

        def knowledge() -> KnowledgeBase | None:
            if context is None or store is None:
                return None
            from automatos.retrieval.base import KnowledgeStore
            from automatos.tools.builtins import KnowledgeBase

            return KnowledgeBase(store, context) if isinstance(store, KnowledgeStore) else None

        return cls(settings, workspace=workspace, knowledge=knowledge, extra=extra)

    @property
    def closed(self) -> bool:
        """Whether :meth:`aclose` was called."""
        return self._closed

    async def servers_for(self, agent: AgentSpec) -> tuple[MCPServerConfig, ...]:
        """The MCP servers ``agent``'s tools name (:func:`resolve_servers` over this host's
        workspace servers): what a task of it carries to a worker.

        Raises:
            StoreError: the workspace's servers could not be read.
        """
        if not any(_server_named(entry) is not None for entry in agent.tools):
            return ()
        return resolve_servers(await self._workspace_servers(), agent)

    async def toolbox(self, task: AgentTask) -> Toolbox | None:
        """The tools ``task``'s agent may call, with the task's bounds; ``None`` when it has
        no tools (or ``max_calls`` is 0: no tools are offered). MCP servers it names start
        now if they have not yet.

        The task's own :attr:`~AgentTask.mcp_servers` and :attr:`~AgentTask.tool_limits`
        (a job from an orchestrator) win over this host's.

        Raises:
            ToolNotFoundError: an entry of the agent's list names no tool there is (the
                message says why).
            ConfigurationError: ``tools.read_root`` is not a directory.
            MCPError: an MCP server it names could not start.
            StoreError: the workspace's servers could not be read.
        """
        agent = task.agent
        if not agent.tools:
            return None
        limits = task.tool_limits or self.limits
        if limits.max_calls <= 0:
            return None
        if task.mcp_servers:
            configs = resolve_servers(task.mcp_servers, agent)
        else:
            configs = await self.servers_for(agent)
        key = (agent.tools, *(config.model_dump_json() for config in configs))
        registry = self._registries.get(key)
        if registry is None:
            registry = await self._registry(agent, configs)
            if len(self._registries) >= 256:
                self._registries.clear()
            self._registries[key] = registry
        return Toolbox(registry, limits, self._redactor(limits.secret_names))

    async def _registry(self, agent: AgentSpec, configs: Sequence[MCPServerConfig]) -> ToolRegistry:
        """The agent's tools: each entry's, or the reason it has none."""
        servers = {config.name: self._server(config) for config in configs}
        listed = await asyncio.gather(*(server.tools() for server in servers.values()))
        offered = dict(zip(servers, listed, strict=True))
        chosen: dict[str, Tool] = {}
        for entry in agent.tools:
            server = _server_named(entry)
            if server is not None and server in offered:
                tools = offered[server]
                if entry.startswith(MCP_PREFIX):
                    chosen.update((tool.spec.name, tool) for tool in tools)
                    continue
                found = [tool for tool in tools if tool.spec.name == entry]
                if not found:
                    names = ", ".join(sorted(tool.spec.name for tool in tools)[:20]) or "none"
                    raise ToolNotFoundError(
                        entry,
                        f"agent {agent.name!r} names it, but MCP server {server!r} lists no "
                        f"such tool (its tools: {names})",
                    )
                chosen[entry] = found[0]
            elif entry in self._extra:
                chosen[entry] = self._extra.get(entry)
            else:
                chosen[entry] = self._builtin(agent, entry, server)
        return ToolRegistry(chosen.values(), restricted=True)

    def _builtin(self, agent: AgentSpec, entry: str, server: str | None) -> Tool:
        """The built-in tool ``entry``, made on first use.

        Raises:
            ToolNotFoundError: there is no such built-in, or it is not offered here.
            ConfigurationError: ``tools.read_root`` is not a directory.
        """
        found = self._builtins.get(entry)
        if found is not None:
            return found
        from automatos.tools.builtins import (
            BUILTIN_NAMES,
            calculator,
            current_time,
            read_file_tool,
            search_knowledge_base_tool,
        )
        from automatos.tools.function import FunctionTool

        made: Tool | None = None
        if entry == "calculator":
            made = FunctionTool.from_function(calculator)
        elif entry == "current_time":
            made = FunctionTool.from_function(current_time)
        elif entry == "read_file" and self.settings.read_root is not None:
            made = read_file_tool(self.settings.read_root)
        elif entry == "search_knowledge_base":
            kb = self._knowledge_base()
            made = search_knowledge_base_tool(kb) if kb is not None else None
        if made is None:
            why = _why(entry, server, BUILTIN_NAMES)
            raise ToolNotFoundError(entry, f"agent {agent.name!r} names it, but {why}")
        self._builtins[entry] = made
        return made

    def _knowledge_base(self) -> KnowledgeBase | None:
        knowledge = self._knowledge
        if callable(knowledge):
            knowledge = self._knowledge = knowledge()
        return knowledge

    def _server(self, config: MCPServerConfig) -> MCPServer:
        """The server of ``config``, made (not started) on first use: one per config, so
        that two agents' servers of one name are kept apart."""
        key = config.model_dump_json()
        server = self._servers.get(key)
        if server is None:
            if self._closed:
                raise MCPError(
                    f"{MCP_PREFIX}{config.name}",
                    "the run's tool host is closed (the run ended)",
                    transient=False,
                )
            from automatos.tools.mcp_server import MCPServer

            server = self._servers[key] = MCPServer(
                config,
                call_timeout_s=self.settings.call_timeout_s,
                start_timeout_s=self._start_timeout_s,
            )
        return server

    async def _workspace_servers(self) -> tuple[MCPServerConfig, ...]:
        if self._workspace is not None:
            return self._workspace
        async with self._workspace_lock:
            if self._workspace is None:
                source = self._workspace_source
                assert callable(source)
                self._workspace = tuple(await source())  # a failure is tried again next time
            return self._workspace

    def _redactor(self, extra: tuple[str, ...]) -> Redactor:
        found = self._redactors.get(extra)
        if found is None:
            found = self._redactors[extra] = Redactor((*self.settings.secret_names, *extra))
        return found

    @property
    def redactor(self) -> Redactor:
        """The redactor of what is recorded of tool calls (``tools.secret_names``)."""
        return self._redactor(())

    async def aclose(self) -> None:
        """Stop the MCP servers this host started (each within its bounded shutdown); later
        tasks cannot start one. Idempotent; raises nothing."""
        self._closed = True
        servers = list(self._servers.values())
        if servers:
            await asyncio.gather(*(server.aclose() for server in servers), return_exceptions=True)

    def pids(self) -> dict[str, int | None]:
        """The process id of each stdio MCP server started (by server name), for tests and
        diagnostics."""
        return {server.name: server.pid for server in self._servers.values()}


def _why(entry: str, server: str | None, builtins: Sequence[str]) -> str:
    hint = _BUILTIN_HINTS.get(entry)
    if hint is not None:
        return hint
    if server is not None:
        return (
            f"no MCP server named {server!r} is configured (automatos mcp add {server} ..., "
            "or the agent's mcp_servers)"
        )
    return (
        f"it is not a tool there is: the built-in tools are {', '.join(builtins)}; an MCP "
        "server's tools are named SERVER__TOOL, or all of them mcp:SERVER; a Python tool is "
        "given with Engine(tools=...) or --tool module:name"
    )


@dataclass(slots=True)
class _Held:
    host: ToolHost
    users: int = 0
    timer: asyncio.TimerHandle | None = None


class WorkflowHosts:
    """A worker's tool hosts: one per workflow whose jobs it runs, so that a run's MCP
    servers are shared by its jobs on this worker as they are in-process. A workflow's host
    is closed ``idle_s`` after its last job here ended (its next job makes a new one), and
    every host when the worker stops (:meth:`aclose`).

    Args:
        settings: the worker's own ``tools.*`` settings (``read_root``, secret names; the
            bounds of jobs that carry none).
        idle_s: how long a host without jobs is kept.
        extra: Python tools of the worker's, offered to the agents that name them.
    """

    def __init__(
        self,
        settings: ToolSettings | None = None,
        *,
        idle_s: float = IDLE_CLOSE_S,
        extra: Iterable[Tool] = (),
    ) -> None:
        self.settings = settings if settings is not None else ToolSettings()
        self.idle_s = idle_s
        self.extra = tuple(extra)
        """The worker's Python tools (``automatos worker --tool``), in every host."""
        self._held: dict[str, _Held] = {}
        self._closing: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._held)

    def acquire(self, workflow_id: str) -> ToolHost:
        """The host of ``workflow_id`` for one more job (made if there is none); give it
        back with :meth:`release` when the job ends."""
        held = self._held.get(workflow_id)
        if held is None:
            held = self._held[workflow_id] = _Held(ToolHost(self.settings, extra=self.extra))
        if held.timer is not None:
            held.timer.cancel()
            held.timer = None
        held.users += 1
        return held.host

    def release(self, workflow_id: str) -> None:
        """One job of ``workflow_id`` ended: with none left, its host is closed ``idle_s``
        from now unless another comes."""
        held = self._held.get(workflow_id)
        if held is None:
            return
        held.users -= 1
        if held.users <= 0:
            loop = asyncio.get_running_loop()
            held.timer = loop.call_later(self.idle_s, self._expire, workflow_id, held)

    def _expire(self, workflow_id: str, held: _Held) -> None:
        if self._held.get(workflow_id) is not held or held.users > 0:
            return
        del self._held[workflow_id]
        task = asyncio.ensure_future(held.host.aclose())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def aclose(self) -> None:
        """Close every host (their MCP servers stopped)."""
        held, self._held = list(self._held.values()), {}
        for item in held:
            if item.timer is not None:
                item.timer.cancel()
        closing = [asyncio.ensure_future(item.host.aclose()) for item in held]
        closing += self._closing
        if closing:
            with contextlib.suppress(Exception):
                await asyncio.gather(*closing, return_exceptions=True)
