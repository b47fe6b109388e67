"""Database failures as :class:`~automatos.errors.StoreError`, retryable only when transient.

A lost connection, a lock held too long, a timeout or a server going down may pass if the
same statement is tried again; a row the database refuses (a duplicate key, a value too long)
or a schema that is not the one expected will fail the same way every time.

Messages never carry the statement's parameters (the engine hides them, see
:func:`automatos.store.database.create_engine`): they hold requests and outputs. They are one
line: of the driver's message only its first line is kept, without the statement, the
driver's details (which may quote a row's values) or SQLAlchemy's link to its documentation.
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

__all__ = ["driver_message", "is_transient", "store_error", "typed"]

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


def driver_message(exc: BaseException) -> str:
    """``Type: message`` of a database failure, in one line: the first line of its message.

    SQLAlchemy adds lines to the driver's message (``[SQL: ...]``, ``(Background on this
    error at: https://sqlalche.me/...)``) and PostgreSQL its ``DETAIL:``; a CLI error is one
    line, and what follows the first line says nothing the user can act on.
    """
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if lines:
        return f"{type(exc).__name__}: {lines[0]}"
    if isinstance(exc, TimeoutError):  # asyncpg's command_timeout says nothing more
        return "TimeoutError: no answer within store.timeout_s"
    return type(exc).__name__


def store_error(where: str, exc: BaseException) -> StoreError:
    """A :class:`StoreError` saying where the database failed and how, retryable if transient."""
    return StoreError(
        f"the store failed in {where}: {driver_message(exc)}", transient=is_transient(exc)
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
