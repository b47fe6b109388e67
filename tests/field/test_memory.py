"""The in-process shared context: numbering, reading what is new, closing."""

from __future__ import annotations

import asyncio

import pytest

from automatos.domain.collaboration import Finding
from automatos.field.base import SharedContext
from automatos.field.memory import InProcessSharedContext


async def test_findings_are_numbered_from_one_in_the_order_they_were_shared() -> None:
    shared = InProcessSharedContext()
    assert isinstance(shared, SharedContext)
    first = await shared.add("fact", "the launch date moved", "research", "analyst")
    second = await shared.add("decision", "launch on 14 March", "plan", "planner", (1,))
    assert (first.id, second.id) == (1, 2)
    assert second.contradicts == (1,) and second.subtask_id == "plan" and second.agent == "planner"
    assert await shared.findings() == [first, second]
    assert await shared.findings(after=1) == [second]
    assert await shared.findings(after=2) == []
    # what a Redis context would store and read back
    assert Finding.model_validate_json(second.model_dump_json()) == second


async def test_concurrent_adds_never_share_an_id() -> None:
    shared = InProcessSharedContext()
    added = await asyncio.gather(
        *(shared.add("fact", f"fact {i}", f"s{i % 7}", "agent") for i in range(500))
    )
    assert sorted(f.id for f in added) == list(range(1, 501))
    assert [f.id for f in await shared.findings()] == list(range(1, 501))


async def test_a_closed_context_keeps_what_it_has_and_refuses_more() -> None:
    shared = InProcessSharedContext()
    await shared.add("fact", "kept", "s", "a")
    await shared.aclose()
    await shared.aclose()  # closing twice is allowed
    assert shared.closed and len(shared) == 1
    assert [f.text for f in await shared.findings()] == ["kept"]
    with pytest.raises(RuntimeError, match=r"closed.*subtask 'late' by 'b'"):
        await shared.add("fact", "too late", "late", "b")
