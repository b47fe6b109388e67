"""The stdio transport for an MCP server run as a child process.

The SDK's own ``stdio_client`` hides the process: when a server dies, a caller learns only
that the connection closed. This transport is the same exchange (newline-delimited JSON-RPC
over stdin and stdout, the SDK's message types and its process-group kill) but keeps what a
person needs to see why a server died: its exit code and the end of its stderr.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field

import anyio
from anyio.abc import Process
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from anyio.streams.text import TextReceiveStream
from mcp import types as mcp_types
from mcp.client.stdio import get_default_environment
from mcp.os.posix.utilities import terminate_posix_process_tree
from mcp.shared.message import SessionMessage

__all__ = ["ProcessWatch", "stdio_transport"]

Streams = tuple[
    MemoryObjectReceiveStream[SessionMessage | Exception], MemoryObjectSendStream[SessionMessage]
]

_log = logging.getLogger(__name__)

STDERR_TAIL_BYTES = 2000
"""How much of the end of a server's stderr is kept for the message when it dies."""
EXIT_GRACE_S = 2.0
"""How long a server has to exit by itself once its stdin is closed (the spec's first step),
and again after SIGTERM before SIGKILL."""
MAX_LINE_CHARS = 16_000_000
"""The longest line a server may write on stdout (each MCP message is one line). Past it
the server is stopped as broken: it was buffered, and would be without end."""
LOGGED_BAD_LINES = 3
"""Lines of a server's stdout that are not JSON-RPC logged a warning each; the rest are
counted in one more."""


@dataclass(slots=True)
class ProcessWatch:
    """What is known of one server process, filled in by :func:`stdio_transport`."""

    on_end: Callable[[], None] = lambda: None
    """Called when the server's stdout ends: it exited or closed it, the session is over."""
    pid: int | None = None
    returncode: int | None = None
    stderr: bytearray = field(default_factory=bytearray)
    secrets: tuple[str, ...] = ()
    """Values never to show from the stderr (the server's configured environment)."""
    broke: str | None = None
    """What it did that made this end stop it (a line without end on stdout)."""
    bad_lines: int = 0

    def note_stderr(self, chunk: bytes) -> None:
        self.stderr += chunk
        del self.stderr[:-STDERR_TAIL_BYTES]

    def describe(self) -> str:
        """How the process ended, and the end of its stderr."""
        if self.broke is not None:
            return f"the server was stopped: {self.broke}"
        if self.returncode is None:
            text = "the server process closed its output"
        elif self.returncode < 0:
            text = f"the server process was killed by signal {-self.returncode}"
        else:
            text = f"the server process exited with code {self.returncode}"
        tail = self.stderr.decode("utf-8", "replace").strip()
        if tail:
            # A server may print its keys (a failing client, a config dump): what it printed
            # goes into errors, events and logs, so what looks secret is hidden first.
            from automatos.tools.redact import REDACTED, Redactor

            for secret in self.secrets:
                if len(secret) >= 4:
                    tail = tail.replace(secret, REDACTED)
            text += f"; its stderr ended with: {Redactor().text(tail[-500:])}"
        return text


@asynccontextmanager
async def stdio_transport(
    command: Sequence[str],
    *,
    env: dict[str, str],
    cwd: str | None,
    watch: ProcessWatch,
) -> AsyncIterator[Streams]:
    """Start ``command`` and yield the session's streams to and from it; stop it on exit.

    Raises ``OSError`` when the program cannot be started (not found, not executable).
    """
    process = await anyio.open_process(
        list(command),
        env=get_default_environment() | env,
        cwd=cwd,
        # Its own process group, so that stopping it stops whatever it started too.
        start_new_session=True,
    )
    watch.pid = process.pid
    read_writer, read_stream = anyio.create_memory_object_stream[SessionMessage | Exception](0)
    write_stream, write_reader = anyio.create_memory_object_stream[SessionMessage](0)
    stderr_done = anyio.Event()

    async def pump_stdout() -> None:
        assert process.stdout is not None
        try:
            async with read_writer:
                pending: list[str] = []  # the line being written, in pieces: no quadratic copy
                size = 0
                async for chunk in TextReceiveStream(process.stdout, errors="replace"):
                    *ended, rest = chunk.split("\n")
                    if ended:
                        ended[0] = "".join((*pending, ended[0]))
                        pending, size = [], 0
                    if rest:
                        pending.append(rest)
                        size += len(rest)
                    if size > MAX_LINE_CHARS:
                        watch.broke = (
                            f"it wrote over {MAX_LINE_CHARS:,} characters on stdout without a "
                            "newline, and an MCP message is one line"
                        )
                        _log.warning("MCP server (pid %s): %s", process.pid, watch.broke)
                        return
                    for line in ended:
                        if line.strip():
                            await read_writer.send(_parse(line, watch))
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
            pass  # the session or our own shutdown closed a stream under the read
        finally:
            watch.on_end()

    async def pump_stdin() -> None:
        assert process.stdin is not None
        try:
            async with write_reader:
                async for message in write_reader:
                    text = message.message.model_dump_json(by_alias=True, exclude_none=True)
                    await process.stdin.send((text + "\n").encode())
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
            # The server stopped reading: end the session's reads, or a request would wait on
            # an answer that cannot come.
            await read_writer.aclose()

    async def pump_stderr() -> None:
        assert process.stderr is not None
        try:
            with suppress(anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
                async for chunk in process.stderr:
                    watch.note_stderr(chunk)
        finally:
            stderr_done.set()

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(pump_stdout)
        tasks.start_soon(pump_stdin)
        tasks.start_soon(pump_stderr)
        try:
            yield read_stream, write_stream
        finally:
            # Every wait below is bounded; shielded so that a cancelled caller cannot leave
            # the process running.
            with anyio.CancelScope(shield=True):
                await _stop(process, watch, stderr_done)
                for stream in (read_stream, write_stream, read_writer, write_reader):
                    await stream.aclose()
            tasks.cancel_scope.cancel()


def _parse(line: str, watch: ProcessWatch) -> SessionMessage | Exception:
    try:
        return SessionMessage(mcp_types.JSONRPCMessage.model_validate_json(line))
    except ValueError as exc:
        # A server that prints to stdout breaks the protocol; its line is data, not logged.
        watch.bad_lines += 1
        if watch.bad_lines <= LOGGED_BAD_LINES:
            _log.warning(
                "an MCP server (pid %s) wrote a line that is not JSON-RPC (%d characters)%s",
                watch.pid,
                len(line),
                "; more are not logged" if watch.bad_lines == LOGGED_BAD_LINES else "",
            )
        return exc


async def _stop(process: Process, watch: ProcessWatch, stderr_done: anyio.Event) -> None:
    """Close stdin, give the server a moment to exit, then end its process group."""
    if process.stdin is not None:
        with suppress(OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
            await process.stdin.aclose()
    if not await _exited(process, EXIT_GRACE_S):
        await terminate_posix_process_tree(process, EXIT_GRACE_S)
        await _exited(process, EXIT_GRACE_S)
    watch.returncode = process.returncode
    # What it wrote to stderr just before it died explains the death: wait for the pipe's end
    # (a grandchild holding it open costs the grace period, no more).
    with anyio.move_on_after(EXIT_GRACE_S):
        await stderr_done.wait()
    # Closes the pipes and reaps the process (no zombie, no unclosed-transport warning).
    with anyio.move_on_after(EXIT_GRACE_S):
        await process.aclose()


async def _exited(process: Process, timeout_s: float) -> bool:
    # Not process.wait(): it also waits for the pipes to close, which a grandchild that
    # inherited them can hold open after the server itself has exited.
    with anyio.move_on_after(timeout_s):
        while process.returncode is None:  # noqa: ASYNC110 - no event tells of the exit alone
            await anyio.sleep(0.01)
    return process.returncode is not None
