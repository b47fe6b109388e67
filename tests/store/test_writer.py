"""The batch writer is bounded while the database cannot take its rows, and says what it
dropped; database failures are retryable only when transient."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
from sqlalchemy.exc import (
    DataError,
    DBAPIError,
    DisconnectionError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    ProgrammingError,
)

from automatos import LLMCall, StoreError, SubtaskResult, SubtaskStatus
from automatos.domain.event import SubtaskStarted
from automatos.store import BatchWriter, Store, WriteBatch
from automatos.store.failures import is_transient


class Flaky:
    """A store whose database is down until told otherwise."""

    def __init__(self) -> None:
        self.down = True
        self.written = WriteBatch("wf")
        self.beats = 0

    async def write(self, batch: WriteBatch) -> None:
        if self.down:
            raise StoreError("the database is locked", transient=True)
        self.written.results += batch.results
        self.written.events += batch.events
        self.written.calls += batch.calls

    async def heartbeat(self, workflow_id: str) -> None:
        self.beats += 1


def started(seq: int) -> SubtaskStarted:
    return SubtaskStarted(seq, "wf", float(seq), f"s{seq}", "writer", 1)


async def test_rows_waiting_on_a_database_that_is_down_are_bounded() -> None:
    store = Flaky()
    writer = BatchWriter(
        cast(Store, store), "wf", batch_size=5, interval_s=0.01, max_pending_rows=10
    )
    for i in range(3):
        writer.add_result(SubtaskResult(f"r{i}", SubtaskStatus.SUCCEEDED))
    for seq in range(1, 21):
        writer.add_event(started(seq))
        await asyncio.sleep(0)  # the writer tries (and fails) now and then
    writer.add_call(LLMCall("execute", "m", "r0"))
    await asyncio.sleep(0.05)
    assert writer._pending <= 10
    assert isinstance(writer.error, StoreError)
    store.down = False
    await writer.aclose()
    assert [r.subtask_id for r in store.written.results] == ["r0", "r1", "r2"]
    assert len(store.written.calls) == 1
    seqs = [e.seq for e in store.written.events]
    assert seqs == list(range(21 - len(seqs), 21)) and len(seqs) == 6  # the newest kept
    [warning] = writer.warnings
    assert "dropped the oldest 14 events (seq 1 to 14)" in warning
    assert "store.max_pending_rows = 10" in warning
    assert writer.error is None


async def test_past_the_events_the_oldest_calls_then_results_are_dropped() -> None:
    store = Flaky()
    writer = BatchWriter(
        cast(Store, store), "wf", batch_size=100, interval_s=60, max_pending_rows=3
    )
    writer.add_event(started(1))
    for i in range(3):
        writer.add_call(LLMCall("execute", "m", f"r{i}"))
    for i in range(3):
        writer.add_result(SubtaskResult(f"r{i}", SubtaskStatus.SUCCEEDED))
    assert writer._pending == 3
    store.down = False
    await writer.aclose()
    assert [r.subtask_id for r in store.written.results] == ["r0", "r1", "r2"]
    assert not store.written.events and not store.written.calls
    assert "1 events (seq 1 to 1), 3 model calls" in writer.warnings[0]


async def test_rows_still_waiting_when_the_writer_closes_are_said() -> None:
    store = Flaky()
    writer = BatchWriter(cast(Store, store), "wf", batch_size=100, interval_s=60)
    writer.add_result(SubtaskResult("a", SubtaskStatus.SUCCEEDED))
    await writer.aclose()
    assert writer.warnings == ["1 rows could not be stored: the database is locked"]


async def test_the_lease_is_renewed_while_the_workflow_runs() -> None:
    store = Flaky()
    store.down = False
    writer = BatchWriter(cast(Store, store), "wf", batch_size=100, interval_s=60, lease_s=0.1)
    await asyncio.sleep(0.35)  # renewed every half lease, whatever the flush interval
    await writer.aclose()
    assert store.beats >= 3


def _dbapi(kind: type[DBAPIError], message: str, sqlstate: str | None = None) -> DBAPIError:
    class Orig(Exception):
        pass

    orig: Any = Orig(message)
    if sqlstate is not None:
        orig.sqlstate = sqlstate
    return kind("INSERT ...", None, orig)


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (OSError("disk unavailable"), True),
        (TimeoutError(), True),
        (ConnectionRefusedError(), True),
        (DisconnectionError("gone"), True),
        (_dbapi(InterfaceError, "connection is closed"), True),
        (_dbapi(OperationalError, "database is locked"), True),
        (_dbapi(OperationalError, "no such table: events"), False),
        (_dbapi(OperationalError, "table llm_calls has no column named priced"), False),
        (_dbapi(OperationalError, "could not serialize access", "40001"), True),
        (_dbapi(OperationalError, "deadlock detected", "40P01"), True),
        (_dbapi(OperationalError, "the database system is shutting down", "57P03"), True),
        (_dbapi(IntegrityError, "UNIQUE constraint failed"), False),
        (_dbapi(IntegrityError, "duplicate key value", "23505"), False),
        (_dbapi(DataError, "value too long for type character varying(128)", "22001"), False),
        (_dbapi(ProgrammingError, 'relation "events" does not exist', "42P01"), False),
        (ValueError("not a database failure"), False),
    ],
)
def test_only_transient_failures_are_retryable(exc: BaseException, transient: bool) -> None:
    assert is_transient(exc) is transient
