"""One session with an MCP server, held open by a task of its own.

The SDK's transports and sessions are anyio task groups and cancel scopes, which must be
exited by the task that entered them. A session shared by many callers (the subtasks of a
run) therefore lives in one long-lived owner task: it opens the transport and the session,
hands the session out, waits until it is asked to stop or the server goes away, and closes
both. Callers in other tasks only send requests through the session, which the SDK allows.

When the session ends under them, callers must not wait for an answer that cannot come: the
SDK answers pending requests with "connection closed" when a transport ends cleanly, but not
when its task group is cancelled, nor when an HTTP response stream breaks (it waits for the
read timeout). So each request runs in a task of its own that the owner cancels when the
session ends, and the HTTP client reports a broken connection the moment it sees one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import AsyncExitStack
from typing import Any, Final, TypeVar

import httpx
from mcp import ClientSession
from mcp import types as mcp_types
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import McpError

from automatos import __version__
from automatos.domain.tools import MCPServerConfig, safe_url
from automatos.errors import MCPError, describe_exception
from automatos.tools.mcp_stdio import ProcessWatch, stdio_transport

__all__ = ["Connection", "ConnectionEnded"]

_log = logging.getLogger(__name__)
_T = TypeVar("_T")

CLOSE_TIMEOUT_S: Final = 10.0
"""The longest a close waits for the owner task; the stdio shutdown itself takes at most
three grace periods of two seconds."""
_CLIENT_INFO: Final = mcp_types.Implementation(name="automatos", version=__version__)


class ConnectionEnded(Exception):
    """The session ended while a request was waiting on it."""


class Connection:
    """One live (or starting, or ended) session with one server.

    Created inside a running event loop; it starts at once. :meth:`session` waits for the
    handshake; :meth:`run` sends a request; :meth:`close` ends the session and stops the
    server's process.
    """

    def __init__(self, config: MCPServerConfig, *, start_timeout_s: float) -> None:
        self._config = config
        self._start_timeout_s = start_timeout_s
        self._wake = asyncio.Event()
        self._watch = (
            ProcessWatch(on_end=self._wake.set, secrets=tuple(config.env.values()))
            if config.command
            else None
        )
        self._error: BaseException | None = None
        self._timed_out = False
        self._requests: set[asyncio.Task[Any]] = set()
        loop = asyncio.get_running_loop()
        self._ready: asyncio.Future[ClientSession] = loop.create_future()
        self._task = asyncio.create_task(self._own(), name=f"mcp-server-{config.name}")
        self._timer = loop.call_later(start_timeout_s, self._start_timed_out)

    @property
    def alive(self) -> bool:
        """Whether the session is up and nothing has ended it."""
        return (
            self._ready.done()
            and not self._ready.cancelled()
            and self._ready.exception() is None
            and not self._wake.is_set()
        )

    @property
    def pid(self) -> int | None:
        """The server process's id (stdio servers, once started)."""
        return self._watch.pid if self._watch is not None else None

    async def session(self) -> ClientSession:
        """The initialised session; raises :class:`MCPError` when the server could not start."""
        # Shielded: a caller giving up does not cancel the start others may be waiting on.
        return await asyncio.shield(self._ready)

    async def run(self, request: Coroutine[Any, Any, _T]) -> _T:
        """Await ``request`` (a call on the session); :class:`ConnectionEnded` if the session
        ends first."""
        if not self.alive:
            request.close()
            raise ConnectionEnded
        task = asyncio.ensure_future(request)
        self._requests.add(task)
        try:
            return await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if task.cancelled() and current is not None and current.cancelling() == 0:
                raise ConnectionEnded from None  # the owner cancelled it, not our caller
            raise
        finally:
            self._requests.discard(task)

    async def close(self, cause: BaseException | None = None) -> None:
        """End the session and stop the server (idempotent); ``cause`` is what a caller saw
        break, for :meth:`describe_end`."""
        self._timer.cancel()
        if cause is not None and self._error is None:
            self._error = cause
        if self._ready.done():
            self._wake.set()
        else:
            self._task.cancel()
        done, _ = await asyncio.wait({self._task}, timeout=CLOSE_TIMEOUT_S)
        if not done:  # pragma: no cover - the shutdown's own waits are bounded
            self._task.cancel()
            await asyncio.wait({self._task}, timeout=CLOSE_TIMEOUT_S)

    def describe_end(self) -> str:
        """Why the session ended, for a message: how the process exited, or what broke."""
        if self._watch is not None and self._watch.pid is not None:
            return self._watch.describe()
        if self._error is not None:
            return f"the connection to {self._config.describe()} broke: {_explain(self._error)}"
        return f"the connection to {self._config.describe()} closed"

    async def _own(self) -> None:
        try:
            async with AsyncExitStack() as stack:
                read, write = await self._transport(stack)
                session = await stack.enter_async_context(
                    ClientSession(read, write, client_info=_CLIENT_INFO)
                )
                await session.initialize()
                self._timer.cancel()
                self._ready.set_result(session)
                await self._wake.wait()
                self._end_requests()
        except asyncio.CancelledError:
            pass  # only this module cancels the task: a start timeout, or a close
        except Exception as exc:  # the transport's or the session's task group failed
            self._broke(exc)
            _log.debug("MCP server %r: the session ended with %r", self._config.name, exc)
        finally:
            self._wake.set()
            self._end_requests()
            if not self._ready.done():
                self._ready.set_exception(self._start_failure())
                self._ready.exception()  # retrieved: nobody may be waiting on a failed start

    async def _transport(self, stack: AsyncExitStack) -> tuple[Any, Any]:
        config = self._config
        if config.command is not None:
            assert self._watch is not None
            transport = stdio_transport(
                config.command, env=config.env, cwd=config.cwd, watch=self._watch
            )
            return await stack.enter_async_context(transport)
        assert config.url is not None
        http = await stack.enter_async_context(
            httpx.AsyncClient(
                headers=config.headers,
                # The SDK's defaults: a tool's answer may stream for a while.
                timeout=httpx.Timeout(30.0, read=300.0),
                transport=_WatchedTransport(self._broke),
            )
        )
        read, write, _ = await stack.enter_async_context(
            streamable_http_client(config.url, http_client=http)
        )
        return read, write

    def _broke(self, exc: BaseException) -> None:
        if self._error is None:
            self._error = exc
        self._wake.set()

    def _end_requests(self) -> None:
        for task in self._requests:
            task.cancel()

    def _start_timed_out(self) -> None:
        if not self._ready.done():
            self._timed_out = True
            self._task.cancel()

    def _start_failure(self) -> MCPError:
        config = self._config
        if self._timed_out:
            detail = f"did not finish the MCP handshake within {self._start_timeout_s:g} s"
        elif self._error is None:
            detail = "was stopped while it was starting"
        elif (missing := _missing_program(self._error, config)) is not None:
            detail = missing
        elif self._watch is not None and self._watch.pid is not None:
            detail = f"ended during the MCP handshake: {self._watch.describe()}"
        elif config.url is not None:
            detail = f"could not be reached at {safe_url(config.url)}: {_explain(self._error)}"
        else:  # pragma: no cover - stdio errors either start the process or are OSErrors
            detail = _explain(self._error)
        return MCPError(
            f"mcp:{config.name}",
            f"MCP server {config.name!r} ({config.describe()}) could not start: it {detail}",
            transient=False,
        )


class _WatchedTransport(httpx.AsyncBaseTransport):
    """httpx's transport, telling ``on_break`` when a connection fails or a response stream
    breaks off (a timeout is not a break: a quiet event stream times out by design)."""

    def __init__(self, on_break: Callable[[BaseException], None]) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self._on_break = on_break

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response = await self._inner.handle_async_request(request)
        except httpx.TransportError as exc:
            self._note(exc)
            raise
        assert isinstance(response.stream, httpx.AsyncByteStream)
        return httpx.Response(
            status_code=response.status_code,
            headers=response.headers,
            stream=_WatchedStream(response.stream, self._note),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._inner.aclose()

    def _note(self, exc: httpx.TransportError) -> None:
        if not isinstance(exc, httpx.TimeoutException):
            self._on_break(exc)


class _WatchedStream(httpx.AsyncByteStream):
    def __init__(
        self, inner: httpx.AsyncByteStream, note: Callable[[httpx.TransportError], None]
    ) -> None:
        self._inner = inner
        self._note = note

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._inner:
                yield chunk
        except httpx.TransportError as exc:
            self._note(exc)
            raise

    async def aclose(self) -> None:
        await self._inner.aclose()


def _leaves(exc: BaseException) -> list[BaseException]:
    """The exceptions inside (nested) exception groups: task groups wrap what failed."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


def _explain(exc: BaseException) -> str:
    leaves = _leaves(exc)
    for leaf in leaves:
        if isinstance(leaf, McpError):
            return f"MCP error {leaf.error.code}: {leaf.error.message}"
        if isinstance(leaf, httpx.HTTPError | OSError):
            return describe_exception(leaf)
    return describe_exception(leaves[0])


def _missing_program(exc: BaseException, config: MCPServerConfig) -> str | None:
    if config.command is None:
        return None
    for leaf in _leaves(exc):
        if isinstance(leaf, FileNotFoundError):
            if config.cwd is not None and leaf.filename == config.cwd:
                return f"has no working directory: {config.cwd!r} does not exist"
            return f"could not be run: {config.command[0]!r} was not found"
        if isinstance(leaf, PermissionError):
            return f"could not be run: {config.command[0]!r} is not executable"
        if isinstance(leaf, OSError) and leaf.errno is not None:
            return f"could not be run: {describe_exception(leaf)}"
    return None
