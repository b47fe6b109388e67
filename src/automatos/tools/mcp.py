"""MCP servers as tools, through the official ``mcp`` SDK (stdio and streamable HTTP).

An :class:`MCPServer` is one server: it starts on first use, lists the server's tools as
:class:`~automatos.tools.base.Tool` objects named ``{server}__{tool}``, and sends their
calls; a server that dies during a call is restarted once and the call sent once more. An
:class:`MCPPool` holds the servers of one run, started at most once each and shared by the
run's subtasks, and closes them with the run::

    async with MCPPool([MCPServerConfig(name="files", command=["mcp-files", "/data"])]) as pool:
        tools = await pool.tools_for(["mcp:files"])  # files__read, files__list, ...
        text = await tools[0].call({"path": "a.txt"})
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from types import TracebackType
from typing import Self

from automatos.domain.tools import MCPServerConfig
from automatos.errors import ConfigurationError, ToolNotFoundError
from automatos.tools.base import Tool
from automatos.tools.mcp_result import MAX_RESULT_CHARS
from automatos.tools.mcp_server import ENTRY_PREFIX, MCPServer, MCPTool

__all__ = ["MCPPool", "MCPServer", "MCPServerConfig", "MCPTool", "server_of_entry"]


def server_of_entry(entry: str) -> str | None:
    """The server named by an agent's tool entry ``mcp:NAME``, else ``None``."""
    return entry[len(ENTRY_PREFIX) :] if entry.startswith(ENTRY_PREFIX) else None


class MCPPool:
    """The MCP servers of one run: each started at most once, on first use, shared by the
    run's subtasks, all closed with the run (``async with MCPPool(configs) as pool``).

    The keyword arguments are :class:`MCPServer`'s, for every server.
    """

    def __init__(
        self,
        configs: Iterable[MCPServerConfig],
        *,
        call_timeout_s: float = 30.0,
        start_timeout_s: float = 30.0,
        max_result_chars: int = MAX_RESULT_CHARS,
        max_restarts: int = 1,
    ) -> None:
        self._servers: dict[str, MCPServer] = {}
        for config in configs:
            if config.name in self._servers:
                raise ConfigurationError(f"two MCP servers are named {config.name!r}")
            self._servers[config.name] = MCPServer(
                config,
                call_timeout_s=call_timeout_s,
                start_timeout_s=start_timeout_s,
                max_result_chars=max_result_chars,
                max_restarts=max_restarts,
            )

    @property
    def names(self) -> list[str]:
        """The servers' names, in configuration order."""
        return list(self._servers)

    def server(self, name: str) -> MCPServer:
        """The server ``name``; :class:`ToolNotFoundError` when none is configured."""
        try:
            return self._servers[name]
        except KeyError:
            raise ToolNotFoundError(
                f"{ENTRY_PREFIX}{name}", f"no MCP server named {name!r} is configured"
            ) from None

    async def tools_for(self, entries: Iterable[str]) -> list[Tool]:
        """The MCP tools an agent's tool list names: every tool of each ``mcp:SERVER``, and
        each ``SERVER__TOOL`` whose server is in the pool. Other entries are not MCP tools and
        are skipped. Servers not yet started are started (concurrently).

        Raises :class:`ToolNotFoundError` for an unknown server or a tool its server does not
        list, and the :class:`MCPError` of a server that cannot start.
        """
        wanted: list[tuple[MCPServer, str | None]] = []
        for entry in entries:
            name = server_of_entry(entry)
            if name is not None:
                wanted.append((self.server(name), None))
            elif (server := self._servers.get(entry.partition("__")[0])) is not None:
                wanted.append((server, entry))
        needed = list({id(server): server for server, _ in wanted}.values())
        listed = await asyncio.gather(*(server.tools() for server in needed))
        by_server = {server.name: tools for server, tools in zip(needed, listed, strict=True)}
        chosen: dict[str, Tool] = {}
        for server, single in wanted:
            tools = by_server[server.name]
            if single is None:
                chosen.update((tool.spec.name, tool) for tool in tools)
                continue
            match = [tool for tool in tools if tool.spec.name == single]
            if not match:
                raise ToolNotFoundError(
                    single, f"MCP server {server.name!r} lists no tool named {single!r}"
                )
            chosen[single] = match[0]
        return list(chosen.values())

    async def aclose(self) -> None:
        """Close every server (each one's process stopped)."""
        await asyncio.gather(*(server.aclose() for server in self._servers.values()))

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
