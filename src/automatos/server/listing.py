"""``GET /v1/workflows`` a page at a time: the newest runs first, a page's ``next`` cursor
leading to the page after it.

The cursor is opaque to clients: it holds the start time and id of a page's last run, so the
next page starts right after it even when new runs started in between (an offset would show
a run twice). The status filter is part of the store's query, so a page of ``failed`` runs is
full however many other runs there are.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Literal

from fastapi import HTTPException
from pydantic import BaseModel, Field

from automatos.store.base import RunSummary
from automatos.store.sql import SqlStore

__all__ = ["RunPage", "RunStatus", "decode_cursor", "encode_cursor", "list_page"]

RunStatus = Literal["running", "succeeded", "partial", "failed", "cancelled", "interrupted"]
"""A stored run's status: how its workflow ended (``WorkflowStatus``), ``running``, or
``interrupted`` (its process died; see :class:`~automatos.store.base.RunSummary`)."""


class RunPage(BaseModel):
    """One page of stored runs, newest first."""

    items: list[RunSummary]
    next: str | None = Field(
        description="The cursor of the next page (pass it as `cursor`); null on the last page."
    )


def encode_cursor(run: RunSummary) -> str:
    """The cursor of the page after ``run`` (its times in UTC)."""
    raw = f"{run.started_at.isoformat()}|{run.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The ``(started_at, id)`` a cursor holds.

    Raises:
        HTTPException: 422, the cursor is not one this server gave.
    """
    bad = HTTPException(422, "cursor is not one this server gave: pass a page's `next`")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, _, wid = raw.partition("|")
        moment = datetime.fromisoformat(at)
        moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    except (binascii.Error, UnicodeDecodeError, ValueError, OverflowError):
        raise bad from None
    if not wid or not wid.isprintable():
        raise bad
    return moment, wid


async def list_page(
    store: SqlStore, limit: int, status: RunStatus | None, cursor: str | None
) -> RunPage:
    """The page of ``limit`` runs after ``cursor`` (the first page if ``None``)."""
    before = decode_cursor(cursor) if cursor is not None else None
    found = await store.list_runs(limit + 1, status=status, before=before)
    items = found[:limit]
    more = len(found) > limit
    return RunPage(items=items, next=encode_cursor(items[-1]) if more else None)
