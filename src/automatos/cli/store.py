"""Opening the store for the ``runs`` and ``agents`` commands (SQLAlchemy is imported here,
when a command needs it, not for ``--help``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from automatos.cli.output import fail, load_settings

if TYPE_CHECKING:
    from automatos.settings import StoreSettings
    from automatos.store.sql import SqlStore

__all__ = ["STORE_DISABLED", "store_settings", "with_store"]

T = TypeVar("T")

STORE_DISABLED = (
    "the store is disabled (setting store.enabled, AUTOMATOS_STORE__ENABLED=false): "
    "no runs, agents, prompts, knowledge base or memories are kept; unset it to use this "
    "command"
)


def store_settings() -> StoreSettings:
    """The store's settings, for a command that needs the store: one line and exit code 1
    when the store is disabled, before anything is opened or created."""
    settings = load_settings().store
    if not settings.enabled:
        raise fail(STORE_DISABLED)
    return settings


def with_store(settings: StoreSettings, action: Callable[[SqlStore], Awaitable[T]]) -> T:
    """Open the store, run ``action`` on it, close it; a store error ends the command, and
    so does a disabled store (nothing is opened or created then)."""
    from automatos import aio
    from automatos.errors import AutomatosError

    if not settings.enabled:
        raise fail(STORE_DISABLED)
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
