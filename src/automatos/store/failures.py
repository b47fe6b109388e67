"""Database failures as :class:`~automatos.errors.StoreError`, retryable only when transient.

A lost connection, a lock held too long, a timeout or a server going down may pass if the
same statement is tried again; a row the database refuses (a duplicate key, a value too long)
or a schema that is not the one expected will fail the same way every time.

Messages never carry the statement's parameters (the engine hides them, see
:func:`automatos.store.database.create_engine`): they hold requests and outputs.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

from sqlalchemy.exc import (
    DBAPIError,
    DisconnectionError,
    InterfaceError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from automatos.errors import StoreError

__all__ = ["is_transient", "store_error", "typed"]

P = ParamSpec("P")
R = TypeVar("R")

# SQLite reports a wrong schema as an OperationalError, like a locked database.
_SCHEMA_PROBLEMS = ("no such table", "no such column", "has no column named")
# PostgreSQL SQLSTATE prefixes that a retry can outlive: connection exceptions, transaction
# rollbacks (serialization failure, deadlock), insufficient resources, an administrator's
# shutdown, a lock not available, a statement timeout.
_TRANSIENT_SQLSTATES = ("08", "40", "53", "57P", "55P03", "57014")


def is_transient(exc: BaseException) -> bool:
    """Whether the database failure ``exc`` may pass if the same work is tried again."""
    if isinstance(exc, OSError | DisconnectionError | PoolTimeoutError | InterfaceError):
        return True  # OSError includes TimeoutError and refused or reset connections
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        sqlstate = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
        if isinstance(sqlstate, str) and sqlstate:
            return sqlstate.startswith(_TRANSIENT_SQLSTATES)
        if isinstance(exc, OperationalError):
            return not any(problem in str(exc.orig) for problem in _SCHEMA_PROBLEMS)
    return False


def store_error(where: str, exc: BaseException) -> StoreError:
    """A :class:`StoreError` saying where the database failed and how, retryable if transient."""
    return StoreError(
        f"the store failed in {where}: {type(exc).__name__}: {exc}", transient=is_transient(exc)
    )


def typed(method: Callable[P, Awaitable[R]]) -> Callable[P, Coroutine[Any, Any, R]]:
    """Database failures (a lost connection, a full disk, a refused row) become
    :class:`StoreError`."""

    @functools.wraps(method)
    async def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await method(*args, **kwargs)
        except (OSError, SQLAlchemyError) as exc:
            raise store_error(method.__name__, exc) from exc

    return guarded
