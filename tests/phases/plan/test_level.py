"""The level from the request's own features: one call for a sum, the whole team for a project."""

from __future__ import annotations

import time

import pytest

from automatos import Level
from automatos.phases.plan.level import by_features

TRIP = (
    "Plan a weekend in Lisbon: 1. find three hotels near the old town, 2. list the museums "
    "open on Sunday, 3. suggest two restaurants for dinner, 4. make a day-by-day itinerary "
    "using them."
)


@pytest.mark.parametrize(
    ("text", "level"),
    [
        ("What is 12 * 14?", Level.ATOM),
        ("What is 17 * 23?", Level.ATOM),
        ("What is the capital of France?", Level.ATOM),
        ("Who wrote Hamlet?", Level.ATOM),
        ("Write a haiku about autumn.", Level.MOLECULE),
        ("Explain how vaccines train the immune system.", Level.MOLECULE),
        ("Summarise the causes of the French Revolution.", Level.MOLECULE),
        ("Research the history of the printing press.", Level.CELL),
        ("Design a database schema for a small library.", Level.CELL),
        (TRIP, Level.ORGAN),
        (
            "Describe PostgreSQL, Redis and SQLite, then write a short comparison of them.",
            Level.ORGAN,
        ),
    ],
)
def test_the_features_give_the_level(text: str, level: Level) -> None:
    choice = by_features(text)
    assert choice.level is level, choice.reasons
    assert choice.source == "features"
    assert choice.reasons


def test_many_deliverables_are_an_organism() -> None:
    text = "\n".join(f"{i}. Write section {i} of the handbook." for i in range(1, 9))
    assert by_features(text).level is Level.ORGANISM


def test_a_recipe_counts_its_subtasks() -> None:
    assert by_features("What is 12 * 14?", recipe_steps=3).level is Level.ORGAN
    choice = by_features("What is 12 * 14?", recipe_steps=1)
    assert choice.level is Level.ATOM
    assert choice.reasons[0] == "a recipe of 1 subtask"


def test_the_reasons_name_the_deliverables() -> None:
    reasons = by_features(TRIP).reasons
    assert reasons[0].startswith("4 deliverables") or reasons[0].startswith("5 deliverables")


def test_classifying_a_request_at_the_length_limit_is_fast() -> None:
    text = "Compare the two approaches and list their costs. " * 2000  # 100,000 characters
    started = time.perf_counter()
    choice = by_features(text)
    assert time.perf_counter() - started < 1.0
    assert choice.level in (Level.ORGAN, Level.ORGANISM)
