"""Running the engine's coroutines from synchronous code (the CLI, scripts, benchmarks)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["loop_name", "run"]

T = TypeVar("T")
_log = logging.getLogger(__name__)


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

    As :func:`asyncio.run`, but the tasks left when ``main`` ends are given
    :data:`EXIT_GRACE_S` to end once cancelled, not forever: a plugin's task that ignores its
    cancellation (:mod:`automatos.abandoned`) must not keep the program from ending, nor its
    result from being printed.
    """
    factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    if loop_name() == "uvloop":
        import uvloop

        factory = uvloop.new_event_loop
    runner = asyncio.Runner(loop_factory=factory)
    try:
        return runner.run(main)
    finally:
        _close(runner, current=factory is None)  # the Runner sets a loop of its own making


EXIT_GRACE_S = 2.0
"""How long the tasks left at the end of :func:`run` may take to end once cancelled."""


def _close(runner: asyncio.Runner, *, current: bool) -> None:
    """End the runner's loop; ``current``: the runner made it the thread's current loop."""
    loop = runner.get_loop()
    left = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in left:
        task.cancel()
    if left:
        loop.run_until_complete(asyncio.wait(left, timeout=EXIT_GRACE_S))
    stuck = [task for task in left if not task.done()]
    if not stuck:
        runner.close()  # as asyncio.run ends: async generators, the default executor
        return
    names = ", ".join(sorted({task.get_name() for task in stuck})[:5])
    _log.warning(
        "%d task(s) did not end within %g s of being cancelled (%s): left behind at exit",
        len(stuck),
        EXIT_GRACE_S,
        names,
    )
    for task in stuck:
        # said above, once: not again for each, as each is destroyed with the loop
        task._log_destroy_pending = False  # type: ignore[attr-defined]
    loop.close()
    if current:  # as runner.close() would: a closed loop must not stay the current one
        asyncio.set_event_loop(None)
