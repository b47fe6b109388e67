"""Tasks of plugins that ignored their cancellation, kept until they end on their own.

A runner, provider or scorer that swallows ``CancelledError`` cannot be stopped from outside;
the engine stops waiting for it after a grace period and goes on. The event loop holds tasks
only weakly, so a task nobody references may be destroyed while pending ("Task was destroyed
but it is pending"): this set holds them until they finish. One that never finishes stays
here for the life of its event loop; that is the plugin's doing, and the result's warnings
say so.
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["ABANDONED", "abandon"]

ABANDONED: set[asyncio.Task[Any]] = set()
"""The tasks given up on that have not ended yet."""


def _forget(task: asyncio.Task[Any]) -> None:
    ABANDONED.discard(task)
    if not task.cancelled():
        task.exception()  # read, so that it is not reported as never retrieved


def abandon(task: asyncio.Task[Any]) -> None:
    """Stop waiting for ``task``, but keep it alive until it ends."""
    if task.done():
        _forget(task)
        return
    ABANDONED.add(task)
    task.add_done_callback(_forget)
