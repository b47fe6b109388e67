"""Running the engine's coroutines from synchronous code (the CLI, scripts, benchmarks)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["loop_name", "run"]

T = TypeVar("T")


def loop_name() -> str:
    """``uvloop`` when it is installed (the default on Linux and macOS), else ``asyncio``."""
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` to completion on a new event loop, uvloop's when installed.

    uvloop's scheduling costs less per task than the standard loop's, which the engine feels
    when it runs thousands of subtasks; the engine itself works on any asyncio loop.
    """
    if loop_name() == "uvloop":
        import uvloop

        return uvloop.run(main)
    return asyncio.run(main)
