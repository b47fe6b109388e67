"""The store the CLI commands use in a test (the test's data directory), opened from a test."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from automatos.settings import Settings
from automatos.store.sql import SqlStore

__all__ = ["with_store"]

T = TypeVar("T")


def with_store(action: Callable[[SqlStore], Awaitable[T]]) -> T:
    """Run ``action`` on the store the commands use (the test's data directory)."""

    async def run() -> T:
        store = await SqlStore.open(Settings().store)
        try:
            return await action(store)
        finally:
            await store.aclose()

    return asyncio.run(run())
