"""Plans built from the request's structure: steps, ids, parallel layers, limits."""

from __future__ import annotations

import pytest

from automatos import PlanLimitError
from automatos.phases.plan.shape import Part, RequestShape, shape_of
from automatos.phases.plan.structure import ITEM_STEP, Step, plan_from_shape, steps_of
from automatos.settings import PlanLimits


def shape(*parts: Part, items: tuple[str, ...] = ()) -> RequestShape:
    return RequestShape(parts, items, frozenset(), 10, False)


def test_one_step_per_deliverable_with_its_uses() -> None:
    plan = plan_from_shape(
        shape_of(
            "Plan a 5-day trip to Japan: find flights from London, suggest hotels in Tokyo and "
            "Kyoto, make a day-by-day itinerary, and estimate the total budget."
        ),
        PlanLimits(),
    )
    assert plan.layers == (
        ("find_flights_london", "suggest_hotels_tokyo", "make_day_by_day_itinerary"),
        ("estimate_total_budget",),
    )
    assert plan.by_id["estimate_total_budget"].depends_on == (
        "find_flights_london",
        "suggest_hotels_tokyo",
        "make_day_by_day_itinerary",
    )
    assert plan.by_id["make_day_by_day_itinerary"].description == "Make a day-by-day itinerary"


def test_a_listed_thing_is_a_parallel_step_named_for_its_item() -> None:
    plan = plan_from_shape(
        shape_of(
            "Write a handbook for new engineers with eight chapters: 1. The codebase 2. The "
            "build 3. Testing 4. Code review 5. Deployment 6. On-call 7. Security 8. Team rituals"
        ),
        PlanLimits(max_subtasks=8),
    )
    assert plan.layers == (
        (
            "write_codebase",
            "write_build",
            "write_testing",
            "write_code_review",
            "write_deployment",
            "write_on_call",
            "write_security",
            "write_team_rituals",
        ),
    )
    assert plan.by_id["write_testing"].description == (
        "Write a handbook for new engineers with eight chapters: Testing"
    )


def test_a_single_deliverable_is_one_step_in_the_requests_words() -> None:
    plan = plan_from_shape(shape_of("What is 17 * 23?"), PlanLimits())
    assert [(s.id, s.description) for s in plan.subtasks] == [("what_17_23", "What is 17 * 23?")]


def test_weighed_items_get_a_fact_step_each_before_the_request() -> None:
    request = "Compare PostgreSQL, Redis and SQLite for caching."
    assert steps_of(shape_of(request)) == [
        Step("Key facts about PostgreSQL"),
        Step("Key facts about Redis"),
        Step("Key facts about SQLite"),
        Step(request, (0, 1, 2)),
    ]
    assert ITEM_STEP.format(item="X") == "Key facts about X"


def test_items_of_a_request_that_does_not_weigh_them_stay_in_one_step() -> None:
    request = "Write a function to parse CSV, JSON and XML files."
    assert steps_of(shape_of(request)) == [Step(request)]


def test_ids_are_content_words_unique_ascii_and_fall_back_to_numbers() -> None:
    plan = plan_from_shape(
        shape(
            Part("Écris un poème"),
            Part("Écris un poème"),
            Part("東京"),
            Part("🚀 🚀"),
            Part("Key facts about the Tower of London"),
            Part("Then compare them"),
        ),
        PlanLimits(),
    )
    assert [s.id for s in plan.subtasks] == [
        "ecris_un_poeme",
        "ecris_un_poeme_2",
        "step_3",
        "step_4",
        "tower_london",
        "compare",
    ]


def test_too_many_deliverables_are_merged_in_order_within_the_limit() -> None:
    parts = [Part(f"Summarise chapter {n}") for n in range(1, 13)]
    parts.append(Part("Compare all chapters", tuple(range(12))))
    plan = plan_from_shape(shape(*parts), PlanLimits(max_subtasks=5))
    assert len(plan.subtasks) <= 5
    descriptions = "; ".join(s.description for s in plan.subtasks)
    assert descriptions == "; ".join(p.text for p in parts)
    last = plan.subtasks[-1]
    assert "Compare all chapters" in last.description
    assert len(last.depends_on) >= 1


def test_a_chain_deeper_than_the_limit_is_merged() -> None:
    parts = [Part("Step zero")] + [Part(f"Then step {n}", (n - 1,)) for n in range(1, 30)]
    plan = plan_from_shape(shape(*parts), PlanLimits(max_depth=8))
    assert max(s.graph.depth for s in plan.subtasks) <= 8
    assert "; ".join(s.description for s in plan.subtasks) == "; ".join(p.text for p in parts)


def test_a_description_over_the_limit_is_cut_after_a_whole_word() -> None:
    text = "Summarise " + "the history of Rome " * 200
    plan = plan_from_shape(shape(Part(text)), PlanLimits(max_field_chars=100))
    description = plan.subtasks[0].description
    assert len(description) <= 100
    assert text.startswith(description)
    assert text[len(description)] == " "


def test_a_limit_no_merge_can_meet_is_raised() -> None:
    with pytest.raises(PlanLimitError):
        plan_from_shape(shape(Part("x" * 50)), PlanLimits(max_field_chars=10))
