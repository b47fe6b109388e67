"""Freezing a long-running process's start-up heap."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from automatos.heap import freeze_startup_heap


class Node:
    """An object that can sit in a reference cycle and be watched."""

    other: Node | None = None


@pytest.fixture
def unfrozen() -> Iterator[None]:
    """The test's process as it was: nothing this test froze stays frozen."""
    gc.unfreeze()
    yield
    gc.unfreeze()


def cycle() -> weakref.ref[Node]:
    a, b = Node(), Node()
    a.other, b.other = b, a
    return weakref.ref(a)


def test_what_is_alive_at_start_up_leaves_the_collectors_walks(unfrozen: None) -> None:
    kept = Node()
    garbage_before = cycle()  # garbage already: collected first, not frozen with the rest
    moved = freeze_startup_heap()
    assert garbage_before() is None
    assert moved == gc.get_freeze_count() > 1000  # the modules and classes of start-up
    assert not any(o is kept for o in gc.get_objects())  # out of every generation
    # made afterwards: collected as always
    later = cycle()
    gc.collect()
    assert later() is None


def test_a_second_freeze_takes_only_what_came_since(unfrozen: None) -> None:
    first = freeze_startup_heap()
    made = [Node() for _ in range(100)]
    second = freeze_startup_heap()
    assert second >= first + len(made)
