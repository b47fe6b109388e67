"""The contradiction heuristic: what it marks, what it leaves, and the limits it admits."""

from __future__ import annotations

import time

import pytest

from automatos.field import contradiction
from automatos.field.contradiction import (
    MAX_CANDIDATES,
    MAX_MARKS,
    Claim,
    ContradictionIndex,
    claim_of,
    contradicts,
)


@pytest.mark.parametrize(
    ("earlier", "later"),
    [
        # numbers that differ about the same thing
        ("the launch date moved to 14 March", "the launch date is 21 March"),
        ("the launch date moved to 14 March", "the launch date moved to 21st March"),
        ("Use PostgreSQL 16 for the store", "use PostgreSQL 15 for the store"),
        ("The budget is 1,000 EUR", "The budget is 1,500 EUR"),
        ("Latency target is 3.5 seconds", "latency target is 2 seconds"),
        # polarity: a negation in one only
        ("The API supports pagination", "The API does not support pagination"),
        ("Postgres is required for the store", "Postgres isn't required for the store"),
        ("the launch date moved to 14 March", "the launch date has never moved"),
        ("customers can export their data", "customers cannot export their data"),
    ],
)
def test_a_disagreement_about_the_same_thing_is_a_contradiction(earlier: str, later: str) -> None:
    assert contradicts(claim_of(later), claim_of(earlier))
    assert contradicts(claim_of(earlier), claim_of(later))  # either way round


@pytest.mark.parametrize(
    ("earlier", "later"),
    [
        ("the launch date moved to 14 March", "the venue is booked for 300 people"),  # unrelated
        ("the launch date moved to 14 March", "the launch date moved"),  # one states no number
        ("the launch date moved to 14 March", "the launch date moved to 14th March"),  # same value
        ("The budget is 1,000 EUR", "the budget is 1000 EUR"),  # the same number written twice
        ("The API supports pagination", "The API supports filtering"),  # other thing, no clash
        ("We need 3 servers for the API", "We need 5 engineers for the API"),  # other things
        (
            "The API does not support pagination",
            "The API never supports pagination",
        ),  # both negative
        ("No refunds after 30 days", "no refunds after 30 days for sale items"),  # agreement
        ("Costs rose", "Costs did not rise"),  # one shared content word is too few to judge
    ],
)
def test_findings_that_do_not_disagree_are_not_marked(earlier: str, later: str) -> None:
    assert not contradicts(claim_of(later), claim_of(earlier))


def test_the_limits_the_docstring_admits() -> None:
    # Missed: a paraphrase, an antonym.
    assert not contradicts(claim_of("the launch was postponed"), claim_of("the launch moved later"))
    assert not contradicts(claim_of("sales increased in May"), claim_of("sales decreased in May"))
    # Marked though they agree: numbers compared without what they count.
    assert contradicts(claim_of("revenue grew 5% in 2023"), claim_of("revenue grew 8% in 2024"))


def test_the_index_checks_against_every_earlier_fact_and_decision_not_questions() -> None:
    index = ContradictionIndex()
    index.add(1, "fact", "the launch date moved to 14 March")
    index.add(2, "question", "is the launch date 21 March?")  # claims nothing
    index.add(3, "decision", "the venue is booked")
    index.add(4, "fact", "the launch date moved to 14 March, confirmed")
    assert index.check("fact", "the launch date is 21 March") == (1, 4)
    assert index.check("decision", "the venue is not booked") == (3,)
    assert index.check("question", "the launch date is 21 March?") == ()
    assert index.check("fact", "the caterer confirmed") == ()


def test_the_index_checks_candidates_not_every_finding() -> None:
    index = ContradictionIndex()
    for i in range(20_000):
        index.add(i + 1, "fact", f"service{i} stores table{i} rows in region{i}")
    started = time.perf_counter()
    for i in range(2_000):
        index.check("fact", f"service{i} does not store table{i} rows in region{i}")
    # A scan of all 20,000 claims per check would be 40 million comparisons.
    assert time.perf_counter() - started < 1.0
    assert index.check("fact", "service7 does not store table7 rows in region7") == (8,)


def test_many_findings_about_one_topic_cost_a_bounded_check_each(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 5,000 findings about the same thing, each with its own number: each contradicts every
    # earlier one. Unbounded, the last alone was compared with 4,999 and named them all.
    compared = 0
    disagree = contradiction._disagree

    def counting(new: Claim, old: Claim, shared: int) -> bool:
        nonlocal compared
        compared += 1
        return disagree(new, old, shared)

    monkeypatch.setattr(contradiction, "_disagree", counting)
    index = ContradictionIndex()
    most = 0
    started = time.perf_counter()
    for i in range(1, 5_001):
        before = compared
        marks = index.check("fact", f"the launch date moved to day {i}")
        most = max(most, compared - before)
        assert len(marks) == min(i - 1, MAX_MARKS)
        index.add(i, "fact", f"the launch date moved to day {i}")
    assert time.perf_counter() - started < 5.0  # ~0.5 s here; unbounded, it took 5.75 s
    assert most == MAX_CANDIDATES
    # the most recent it contradicts, in order
    assert index.check("fact", "the launch date moved to day 0") == tuple(range(4_996, 5_001))
