"""A small MCP server for the tests, written with the SDK's FastMCP.

python tests/tools/mcp_server.py stdio
python tests/tools/mcp_server.py http --port 8123
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from mcp.server.fastmcp import Context, FastMCP

server = FastMCP("automatos-test", log_level="WARNING")


@server.tool()
def add(a: int, b: int) -> int:
    """Add two whole numbers."""
    return a + b


@server.tool()
def echo(text: str) -> str:
    """Return the text unchanged."""
    return text


@server.tool()
async def slow(seconds: float) -> str:
    """Wait, then say how long."""
    await asyncio.sleep(seconds)
    return f"slept {seconds}"


@server.tool()
def fail(message: str) -> str:
    """Raise an error with this message."""
    raise ValueError(message)


@server.tool()
def die() -> str:
    """End the server process in the middle of the call."""
    sys.stderr.write("dying on purpose\n")
    sys.stderr.flush()
    os._exit(3)


@server.tool()
def flood(chars: int) -> str:
    """Write this many characters on stdout, the protocol's stream, with no newline."""
    for _ in range(chars // 65536 + 1):
        os.write(1, b"x" * 65536)
    return "flooded"


@server.tool()
def die_once(marker: str) -> str:
    """End the server process the first time (when the marker file is missing), answer after."""
    if not os.path.exists(marker):
        with open(marker, "w") as file:
            file.write(str(os.getpid()))
        os._exit(3)
    return "survived"


@server.tool()
def pid() -> int:
    """The server process's id."""
    return os.getpid()


@server.tool()
def repeat(text: str, times: int) -> str:
    """The text, ``times`` times over."""
    return text * times


@server.tool()
def env(name: str) -> str:
    """The value of an environment variable in the server process ('' when unset)."""
    return os.environ.get(name, "")


@server.tool()
def header(name: str, ctx: Context) -> str:
    """The value of a header of the HTTP request that carried this call ('' when none)."""
    request = ctx.request_context.request
    return str(request.headers.get(name, "")) if request is not None else ""


@server.tool(name="dotted.name")
def dotted() -> str:
    """A tool whose MCP name has a dot, which model APIs do not allow."""
    return "dotted"


@server.tool(name="x" * 70)
def too_long() -> str:
    """A tool whose name cannot fit in 64 characters with its server's."""
    return "long"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("transport", choices=["stdio", "http"])
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    if args.transport == "stdio":
        server.run("stdio")
    else:
        server.settings.port = args.port
        server.run("streamable-http")


if __name__ == "__main__":
    main()
