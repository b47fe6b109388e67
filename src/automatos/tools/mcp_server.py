"""One MCP server as tools: :class:`MCPServer` starts it on first use, lists its tools as
:class:`MCPTool` objects named ``{server}__{tool}``, and sends their calls.

A server that dies, or whose HTTP connection breaks, during a call is restarted once (a new
process, a new session) and the call is sent once more. A second death ends the server for
the run: that call and every later one fail at once with :class:`~automatos.errors.MCPError`
(no restart loop). A server that cannot start fails the same way.

Tool names: a server's tool name with characters outside ``[A-Za-z0-9_-]`` (MCP allows
``.`` and ``/``) has them made ``_``; a tool whose full name would pass 64 characters, or
would collide with another's, or whose input schema is not valid JSON schema, is left out
with a warning in the log.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Mapping, Sequence
from datetime import timedelta
from types import TracebackType
from typing import Any, Final, Self, TypeVar

import anyio
import httpx
from mcp import ClientSession
from mcp import types as mcp_types
from mcp.shared.exceptions import McpError

from automatos.domain.tools import MCP_PREFIX, MCPServerConfig
from automatos.errors import MCPError, ToolFailedError, ToolTimeoutError, describe_exception
from automatos.llm.base import ToolSpec
from automatos.tools.mcp_connection import Connection, ConnectionEnded
from automatos.tools.mcp_result import (
    MAX_RESULT_CHARS,
    ArgumentsValidator,
    normalise_schema,
    result_text,
    tool_name,
)

__all__ = ["ENTRY_PREFIX", "MCPServer", "MCPTool"]

_log = logging.getLogger(__name__)
_T = TypeVar("_T")
_Request = Callable[[ClientSession], Coroutine[Any, Any, _T]]
"""A request on a session: a tool call, or the tool listing."""

ENTRY_PREFIX: Final = MCP_PREFIX
"""An agent's tool list entry ``mcp:NAME`` stands for every tool of the server ``NAME``."""
_MAX_PAGES: Final = 100
"""Pages of a tool listing read at most: a server whose cursor never ends cannot hang us."""
_GRACE_S: Final = 5.0
"""Time past the SDK's own request timeout before a call is given up on without it (should
the SDK's timeout itself not fire)."""


class _Broken(Exception):
    """The session is gone (the process died, the connection broke): restart and retry."""


class MCPTool:
    """One tool of an MCP server, as :class:`~automatos.tools.base.Tool`."""

    def __init__(
        self, server: MCPServer, remote_name: str, spec: ToolSpec, validator: ArgumentsValidator
    ) -> None:
        self._server = server
        self._validator = validator
        self.remote_name = remote_name
        """The tool's name on the server (the model sees :attr:`spec`'s)."""
        self._spec = spec

    @property
    def spec(self) -> ToolSpec:
        return self._spec

    @property
    def server(self) -> str:
        """The name of the server that runs the tool."""
        return self._server.name

    async def call(self, arguments: Mapping[str, Any]) -> str:
        """Check ``arguments`` against the schema, then call the tool on the server.

        Raises :class:`~automatos.errors.ToolArgumentsError` (nothing sent),
        :class:`~automatos.errors.ToolTimeoutError`, :class:`~automatos.errors.ToolFailedError`
        (the tool reported an error) or :class:`~automatos.errors.MCPError` (the server).
        """
        self._validator.validate(arguments)
        return await self._server._invoke(self, arguments)


class MCPServer:
    """One MCP server, started on first use and shared by concurrent callers.

    Args:
        config: where the server is.
        call_timeout_s: the longest a tool call (or the tool listing) may take.
        start_timeout_s: the longest the process start and the MCP handshake may take.
        max_result_chars: results longer than this are cut, with a note.
        max_restarts: how many times a server that died is started again in its lifetime.
    """

    def __init__(
        self,
        config: MCPServerConfig,
        *,
        call_timeout_s: float = 30.0,
        start_timeout_s: float = 30.0,
        max_result_chars: int = MAX_RESULT_CHARS,
        max_restarts: int = 1,
    ) -> None:
        self.config = config
        self._call_timeout_s = call_timeout_s
        self._start_timeout_s = start_timeout_s
        self._max_result_chars = max_result_chars
        self._max_restarts = max_restarts
        self._restarts = 0
        self._lock = asyncio.Lock()
        self._conn: Connection | None = None
        self._failure: str | None = None
        self._closed = False
        self._tools: list[MCPTool] | None = None

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def restarts(self) -> int:
        """How many times the server has been started again after it died."""
        return self._restarts

    @property
    def pid(self) -> int | None:
        """The current server process's id (stdio servers that have started), else ``None``."""
        return self._conn.pid if self._conn is not None else None

    async def tools(self) -> list[MCPTool]:
        """The server's tools (listed once, on first use; starting the server if needed)."""
        if self._tools is None:
            listed = await self._with_session(self._list, f"{ENTRY_PREFIX}{self.name}")
            if self._tools is None:  # two first callers may both have listed
                self._tools = self._make_tools(listed)
        return list(self._tools)

    async def aclose(self) -> None:
        """Close the session and stop the server's process; later calls raise MCPError."""
        self._closed = True
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def _invoke(self, tool: MCPTool, arguments: Mapping[str, Any]) -> str:
        async def send(session: ClientSession) -> mcp_types.CallToolResult:
            return await session.call_tool(
                tool.remote_name,
                dict(arguments),
                read_timeout_seconds=timedelta(seconds=self._call_timeout_s),
            )

        result = await self._with_session(send, tool.spec.name)
        return result_text(tool.spec.name, result, self._max_result_chars)

    async def _list(self, session: ClientSession) -> list[mcp_types.Tool]:
        listed: list[mcp_types.Tool] = []
        params: mcp_types.PaginatedRequestParams | None = None
        for _ in range(_MAX_PAGES):
            page = await session.list_tools(params=params)
            listed.extend(page.tools)
            if page.nextCursor is None:
                break
            params = mcp_types.PaginatedRequestParams(cursor=page.nextCursor)
        return listed

    def _make_tools(self, listed: Sequence[mcp_types.Tool]) -> list[MCPTool]:
        tools: dict[str, MCPTool] = {}
        for remote in listed:
            name = tool_name(self.name, remote.name)
            problem = None
            if name is None:
                problem = "its name would be longer than 64 characters"
            elif name in tools:
                problem = f"its name {name!r} is another tool's too"
            else:
                schema = normalise_schema(remote.inputSchema)
                try:
                    validator = ArgumentsValidator(name, schema)
                except ValueError as exc:
                    problem = str(exc)
            if problem is not None or name is None:
                _log.warning(
                    "MCP server %r: tool %r left out: %s", self.name, remote.name[:100], problem
                )
                continue
            description = remote.description or remote.title or f"{remote.name} ({self.name})"
            spec = ToolSpec(name=name, description=description, parameters=schema)
            tools[name] = MCPTool(self, remote.name, spec, validator)
        return list(tools.values())

    async def _with_session(self, op: _Request[_T], what: str) -> _T:
        """Run ``op`` on the live session; once more on a new one if the first died under it."""
        conn = await self._connection(what)
        try:
            return await self._attempt(conn, op, what)
        except _Broken as broken:
            conn = await self._replace(conn, broken.__cause__, what)
        try:
            return await self._attempt(conn, op, what)
        except _Broken as broken:
            await self._replace(conn, broken.__cause__, what)
            # A server allowed more restarts than one is up again, but this call had its retry.
            raise MCPError(
                what, f"MCP server {self.name!r} died again during the retried call"
            ) from None

    async def _attempt(self, conn: Connection, op: _Request[_T], what: str) -> _T:
        session = await self._session(conn, what)
        try:
            async with asyncio.timeout(self._call_timeout_s + _GRACE_S):
                return await conn.run(op(session))
        except TimeoutError:
            raise ToolTimeoutError(what, self._timeout_detail()) from None
        except ConnectionEnded as exc:
            raise _Broken from exc
        except McpError as exc:
            code, message = exc.error.code, exc.error.message
            if code == httpx.codes.REQUEST_TIMEOUT:  # the SDK's own timeout
                raise ToolTimeoutError(what, self._timeout_detail()) from None
            if code == mcp_types.CONNECTION_CLOSED or not conn.alive:
                raise _Broken from exc
            raise ToolFailedError(
                what, f"MCP server {self.name!r} refused the call: {message} (error {code})"
            ) from None
        except (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError) as exc:
            raise _Broken from exc
        except httpx.TransportError as exc:
            raise _Broken from exc
        except Exception as exc:
            if not conn.alive:  # the session closed under the call: the server went away
                raise _Broken from exc
            raise MCPError(
                what,
                f"MCP server {self.name!r} answered outside the protocol: "
                f"{describe_exception(exc)}",
                transient=False,
            ) from None

    def _timeout_detail(self) -> str:
        return f"MCP server {self.name!r} did not answer within {self._call_timeout_s:g} s"

    async def _connection(self, what: str) -> Connection:
        """The current connection, started now if this is the first use."""
        self._check_usable(what)
        if self._conn is None:
            self._conn = self._open()
        conn = self._conn
        await self._session(conn, what)  # waits for the start, raises if it failed
        if conn.alive:
            return conn
        # It ended while nobody was calling (the process exited between calls).
        return await self._replace(conn, None, what)

    async def _session(self, conn: Connection, what: str) -> ClientSession:
        try:
            return await conn.session()
        except MCPError as exc:
            if self._conn is conn and self._failure is None:
                self._failure = exc.detail
            raise MCPError(what, exc.detail, transient=False) from None

    async def _replace(
        self, dead: Connection, cause: BaseException | None, what: str
    ) -> Connection:
        """A new connection in place of ``dead``, unless restarts are used up (then raise)."""
        async with self._lock:
            if self._conn is not dead:  # another caller saw the death first and restarted it
                self._check_usable(what)
                assert self._conn is not None
                return self._conn
            await dead.close(cause)
            reason = dead.describe_end()
            self._check_usable(what)
            if self._restarts >= self._max_restarts:
                again = " again" if self._restarts else ""
                self._failure = (
                    f"MCP server {self.name!r} ({self.config.describe()}) died{again}: {reason}; "
                    f"it is not started again (restarts used: {self._restarts} of "
                    f"{self._max_restarts})"
                )
                raise MCPError(what, self._failure, transient=False)
            self._restarts += 1
            _log.warning("MCP server %r died (%s); starting it again", self.name, reason)
            self._conn = conn = self._open()
        try:
            await conn.session()
        except MCPError as exc:
            self._failure = f"{exc.detail}, after it died ({reason})"
            raise MCPError(what, self._failure, transient=False) from None
        return conn

    def _open(self) -> Connection:
        return Connection(self.config, start_timeout_s=self._start_timeout_s)

    def _check_usable(self, what: str) -> None:
        if self._closed:
            raise MCPError(what, f"MCP server {self.name!r} is closed", transient=False)
        if self._failure is not None:
            raise MCPError(what, self._failure, transient=False)
