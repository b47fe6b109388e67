"""Opening the store for the ``runs`` and ``agents`` commands (SQLAlchemy is imported here,
when a command needs it, not for ``--help``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from automatos.cli.output import fail

if TYPE_CHECKING:
    from automatos.settings import StoreSettings
    from automatos.store.sql import SqlStore

__all__ = ["with_store"]

T = TypeVar("T")


def with_store(settings: StoreSettings, action: Callable[[SqlStore], Awaitable[T]]) -> T:
    """Open the store, run ``action`` on it, close it; a store error ends the command."""
    from automatos import aio
    from automatos.errors import AutomatosError

    try:
        return aio.run(_with_store(settings, action))
    except AutomatosError as exc:
        raise fail(exc) from None


async def _with_store(settings: StoreSettings, action: Callable[[SqlStore], Awaitable[T]]) -> T:
    from automatos.store.sql import SqlStore

    store = await SqlStore.open(settings)
    try:
        return await action(store)
    finally:
        await store.aclose()
