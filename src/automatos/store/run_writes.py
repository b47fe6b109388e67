"""What running workflows write, for many workflows in one transaction (a :class:`Group`).

A workflow's start, its checkpoint, its batches of rows, its lease renewals, what it learned
and its end are requests of one kind; those of every workflow that asked while the previous
transaction ran are written together, a statement per table (``executemany``), in the order a
workflow makes them: starts, checkpoints, rows, renewals, ends (learning is the store's own
business). One workflow's requests never overtake each other, since it waits for each before
it makes the next. One kind for them all, so that one transaction writes at a time: on
SQLite, two would only wait for each other's lock.

A request that names its run's *owner* (the token of the process running it) is written
only while the run is still that process's: right after the starts, one ``UPDATE`` of the
runs the transaction writes for renews the leases of those still owned by the writers'
tokens (which is all a renewal is) and says which they are (``RETURNING``). On PostgreSQL it
also locks their rows until the commit, so that a resumer's claim waits for it (and finds
the lease fresh), and on SQLite it takes the write lock: no claim comes in between the
check and the rows. The requests of a run that is no longer its writer's are not written;
the writer hears of it (:func:`write_together` returns them).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg
import pydantic_core
from sqlalchemy import Table, bindparam, case, insert, select, update
from sqlalchemy.exc import (
    DataError,
    DBAPIError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    ProgrammingError,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from automatos.domain.event import Event
from automatos.domain.result import LLMCall
from automatos.llm.base import ToolUse
from automatos.store.base import MetricsUpdate, WriteBatch
from automatos.store.kb_records import now
from automatos.store.tables import events, llm_calls, subtask_results, workflow_executions

__all__ = [
    "Beat",
    "Checkpoint",
    "Finish",
    "Learn",
    "Rows",
    "RunWrite",
    "Start",
    "owner_of",
    "tool_call_rows",
    "tool_uses_of",
    "weight",
    "where",
    "write_together",
]

_BASE_FIELDS = frozenset({"seq", "workflow_id", "at"})
_FIELDS: dict[type[Event], tuple[str, ...]] = {}


def _event_fields(kind: type[Event]) -> tuple[str, ...]:
    fields = _FIELDS.get(kind)
    if fields is None:
        fields = _FIELDS[kind] = tuple(
            f.name for f in dataclasses.fields(kind) if f.name not in _BASE_FIELDS
        )
    return fields


@dataclass(frozen=True)
class Start:
    """A workflow began: its ``workflow_executions`` row (with its owner)."""

    row: dict[str, Any]


@dataclass(frozen=True)
class Checkpoint:
    """What resuming a workflow needs that only its planning made (one per workflow, or one
    more when a later planning stage changed the plan)."""

    workflow_id: str
    data: dict[str, Any]
    owner: str | None = None


@dataclass(frozen=True)
class Rows:
    """A batch of a workflow's results, events and calls."""

    batch: WriteBatch


@dataclass(frozen=True)
class Beat:
    """A running workflow renews its lease."""

    workflow_id: str
    owner: str | None = None


@dataclass(frozen=True)
class Learn:
    """A workflow's update of the learned metrics (applied by the store, which holds the
    learning lock for the transaction)."""

    update: MetricsUpdate


@dataclass(frozen=True)
class Finish:
    """How a workflow ended; ``extra`` is merged into the stored one."""

    workflow_id: str
    values: dict[str, Any]
    extra: Mapping[str, Any] | None
    owner: str | None = None


RunWrite = Start | Checkpoint | Rows | Beat | Learn | Finish

_WHERE = {
    Start: "start_execution",
    Checkpoint: "save_checkpoint",
    Rows: "write",
    Beat: "heartbeat",
    Learn: "update_metrics",
    Finish: "finish_execution",
}


def where(request: RunWrite) -> str:
    """The store method a request comes from, for its errors."""
    return _WHERE[type(request)]


def owner_of(request: RunWrite) -> tuple[str, str] | None:
    """The run a request writes to and the owner it writes as; ``None``: not checked."""
    if isinstance(request, Rows):
        batch = request.batch
        return None if batch.owner is None else (batch.workflow_id, batch.owner)
    if isinstance(request, Checkpoint | Beat | Finish) and request.owner is not None:
        return request.workflow_id, request.owner
    return None


def weight(request: RunWrite) -> int:
    """Rows a request writes."""
    return len(request.batch) if isinstance(request, Rows) else 1


def result_rows(batch: WriteBatch) -> list[dict[str, Any]]:
    """The ``subtask_results`` rows of a batch."""
    wid = batch.workflow_id
    return [
        {
            "workflow_id": wid,
            "subtask_id": r.subtask_id,
            "status": r.status.value,
            "agent": r.agent,
            "output": r.output,
            "tokens_in": r.tokens_in,
            "tokens_out": r.tokens_out,
            "cost_usd": r.cost_usd,
            "latency_s": r.latency_s,
            "attempts": r.attempts,
            "error": dataclasses.asdict(r.error) if r.error else None,
            "tool_calls": tool_call_rows(r.tool_calls) if r.tool_calls else None,
        }
        for r in batch.results
    ]


_TOOL_USE_FIELDS = tuple(f.name for f in dataclasses.fields(ToolUse))


def tool_call_rows(uses: tuple[ToolUse, ...]) -> list[dict[str, Any]]:
    """A result's tool calls as its ``tool_calls`` column keeps them (fields flat: no
    ``asdict``)."""
    return [{f: getattr(u, f) for f in _TOOL_USE_FIELDS} for u in uses]


def tool_uses_of(value: Any) -> tuple[ToolUse, ...]:
    """The tool calls a ``tool_calls`` column holds (none for ``NULL``); fields this version
    does not know are left out, so that a row a newer version wrote still reads."""
    if not value:
        return ()
    return tuple(
        ToolUse(**{f: row[f] for f in _TOOL_USE_FIELDS if f in row})
        for row in value
        if isinstance(row, dict)
    )


def event_rows(batch: WriteBatch) -> list[dict[str, Any]]:
    """The ``events`` rows of a batch: an event's own fields go in ``data``."""
    wid = batch.workflow_id
    return [
        {
            "workflow_id": wid,
            "seq": e.seq,
            "kind": e.kind,
            "at": e.at,
            "data": {f: getattr(e, f) for f in _event_fields(type(e))},
        }
        for e in batch.events
    ]


_CALL_FIELDS = tuple(f.name for f in dataclasses.fields(LLMCall))


def call_rows(batch: WriteBatch) -> list[dict[str, Any]]:
    """The ``llm_calls`` rows of a batch (its fields are flat: no ``asdict``, which deep
    copies)."""
    wid = batch.workflow_id
    return [{"workflow_id": wid, **{f: getattr(c, f) for f in _CALL_FIELDS}} for c in batch.calls]


async def write_rows(
    conn: AsyncConnection,
    results: list[dict[str, Any]],
    event_list: list[dict[str, Any]],
    calls: list[dict[str, Any]],
) -> None:
    """Insert rows: one ``COPY`` per table on PostgreSQL, one ``executemany`` elsewhere."""
    if conn.dialect.name == "postgresql":
        await _copy_rows(
            conn, ((subtask_results, results), (events, event_list), (llm_calls, calls))
        )
        return
    if results:
        await conn.execute(insert(subtask_results), results)
    if event_list:
        await conn.execute(insert(events), event_list)
    if calls:
        await conn.execute(insert(llm_calls), calls)


# The JSON columns of the copied tables: COPY takes their text, not the value.
_JSON_COLUMNS = frozenset({"error", "data", "tool_calls"})


async def _copy_rows(
    conn: AsyncConnection, tables: tuple[tuple[Table, list[dict[str, Any]]], ...]
) -> None:
    """The rows through asyncpg's binary ``COPY``, in ``conn``'s transaction.

    A busy server writes a workflow's 40-odd events, results and calls in every group: as
    ``INSERT`` statements each row costs SQLAlchemy's parameter processing and a JSON dump
    on the event loop, and PostgreSQL an executor start. ``COPY`` encodes the rows in C and
    runs once per table (the store's loop CPU a workflow falls by about a tenth). Its failures come
    out as SQLAlchemy's, so that the store's errors say the same as for a statement.
    """
    raw = await conn.get_raw_connection()
    driver: Any = raw.driver_connection  # asyncpg's Connection (asyncpg has no types)
    if not driver.is_in_transaction():  # SQLAlchemy begins lazily, at the first statement
        await conn.exec_driver_sql("SELECT 1")
    for table, rows in tables:
        if not rows:
            continue
        columns = list(rows[0])
        at = [i for i, column in enumerate(columns) if column in _JSON_COLUMNS]
        records = [list(row.values()) for row in rows]
        for values in records if at else ():
            for i in at:
                if values[i] is not None:
                    values[i] = pydantic_core.to_json(values[i]).decode()
        try:
            await driver.copy_records_to_table(table.name, columns=columns, records=records)
        except (asyncpg.InterfaceError, asyncpg.PostgresError) as exc:
            raise _as_sqlalchemy(f"COPY {table.name}", exc) from exc


# SQLSTATE classes as the DB-API error SQLAlchemy would have raised for a statement.
_ERROR_CLASSES: dict[str, type[DBAPIError]] = {
    "22": DataError,
    "23": IntegrityError,
    "42": ProgrammingError,
}


def _as_sqlalchemy(statement: str, exc: Exception) -> DBAPIError:
    if isinstance(exc, asyncpg.InterfaceError):  # the connection broke: transient
        return InterfaceError(statement, None, exc, hide_parameters=True)
    sqlstate = str(getattr(exc, "sqlstate", "") or "")
    kind = _ERROR_CLASSES.get(sqlstate[:2], OperationalError)
    return kind(statement, None, exc, hide_parameters=True)


_BEAT = {"status": "running", "finished_at": None, "error": None}
_W = workflow_executions.c
_STALLED = _W.status == "interrupted"
_HOLD = {  # a run marked interrupted while its owner was only stalled is running again
    "status": case((_STALLED, "running"), else_=_W.status),
    "finished_at": case((_STALLED, None), else_=_W.finished_at),
    "error": case((_STALLED, None), else_=_W.error),
}


async def hold(conn: AsyncConnection, owners: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """Renew the leases of the runs still owned as ``owners`` says (``(workflow id,
    owner)``) and lock them until the transaction ends; the pairs that own their run.

    An owner token is unique to one run, so that ``id IN … AND owner IN …`` matches a run
    only with its own token: one statement for the runs of every writer of the transaction.
    """
    ids = {wid for wid, _ in owners}
    tokens = {owner for _, owner in owners}
    held = await conn.execute(
        update(workflow_executions)
        .where(_W.id.in_(list(ids)), _W.owner.in_(list(tokens)))
        .values(heartbeat_at=now(), **_HOLD)
        .returning(_W.id, _W.owner)
    )
    return {(wid, owner) for wid, owner in held.all()}


async def renew(conn: AsyncConnection, workflow_ids: list[str]) -> None:
    """Renew the leases of running workflows (and of those marked ``interrupted`` while
    their process was only stalled: it is the process that says how a run ends), for
    writers that name no owner."""
    w = workflow_executions.c
    await conn.execute(
        update(workflow_executions)
        .where(w.id.in_(workflow_ids), w.status.in_(("running", "interrupted")))
        .values(heartbeat_at=now(), **_BEAT)
    )


async def finish(conn: AsyncConnection, finishes: list[Finish]) -> None:
    """Record how workflows ended, then merge their ``extra``.

    Written first, so that the transaction holds the rows (and SQLite's write lock) before
    ``extra`` is read to be merged."""
    w = workflow_executions.c
    by_id = update(workflow_executions).where(w.id == bindparam("b_id"))
    await conn.execute(by_id, [{"b_id": f.workflow_id, **f.values} for f in finishes])
    merging = {f.workflow_id: f.extra for f in finishes if f.extra}
    if not merging:
        return
    found = await conn.execute(select(w.id, w.extra).where(w.id.in_(list(merging))))
    merged = [
        {"b_id": wid, "extra": {**stored, **merging[wid]}}
        for wid, stored in found.all()
        if stored is not None
    ]
    if merged:
        await conn.execute(by_id, merged)


async def write_together(conn: AsyncConnection, requests: list[RunWrite]) -> set[tuple[str, str]]:
    """Every request in ``conn``'s transaction: starts, checkpoints, rows, renewals, ends (the
    store applies the :class:`Learn` requests itself); those of a run no longer owned as they
    say are left out, and their ``(workflow id, owner)`` returned."""
    starts = [r.row for r in requests if isinstance(r, Start)]
    if starts:
        await conn.execute(insert(workflow_executions), starts)
    owners = {pair for r in requests if (pair := owner_of(r)) is not None}
    refused: set[tuple[str, str]] = set()
    if owners:
        refused = owners - await hold(conn, owners)
        if refused:
            requests = [r for r in requests if owner_of(r) not in refused]
    checkpoints = [
        {"b_id": r.workflow_id, "checkpoint": r.data} for r in requests if isinstance(r, Checkpoint)
    ]
    if checkpoints:
        w = workflow_executions.c
        await conn.execute(
            update(workflow_executions).where(w.id == bindparam("b_id")), checkpoints
        )
    batches = [r.batch for r in requests if isinstance(r, Rows)]
    if batches:
        await write_rows(
            conn,
            [row for b in batches for row in result_rows(b)],
            [row for b in batches for row in event_rows(b)],
            [row for b in batches for row in call_rows(b)],
        )
    beats = [r.workflow_id for r in requests if isinstance(r, Beat) and r.owner is None]
    if beats:  # an owner's renewal was its hold
        await renew(conn, beats)
    finishes = [r for r in requests if isinstance(r, Finish)]
    if finishes:
        await finish(conn, finishes)
    return refused
