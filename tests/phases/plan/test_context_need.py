"""The rule that sets ``requires_context`` on plans no model wrote."""

from __future__ import annotations

import pytest

from automatos.phases.plan.context_need import needs_context
from automatos.phases.plan.shape import shape_of
from automatos.phases.plan.structure import plan_from_shape
from automatos.settings import PlanLimits


@pytest.mark.parametrize(
    "step",
    [
        "What is 12 * 14?",
        "Calculate 15% of 240",
        "what's 2**10",
    ],
)
def test_steps_with_nothing_to_look_up_need_no_context(step: str) -> None:
    assert not needs_context(step)
    assert not needs_context(step, has_dependencies=True)


@pytest.mark.parametrize(
    "step",
    [
        "Write a short comparison of the two answers above",
        "Group them by district",
        "Compare the results",
        "Turn the list into a table",
        "Summarise the findings",
        "Write a summary of them",
        "Rank these options by cost",
    ],
)
def test_steps_that_work_on_earlier_results_need_none(step: str) -> None:
    assert not needs_context(step, has_dependencies=True)


@pytest.mark.parametrize(
    "step",
    [
        "What does the nonlocal statement do?",
        "Key facts about PostgreSQL",
        "Explain how Python generators work",
        "How many moons does Mars have?",
        "Describe the retry settings of the engine",
        "Research the top three vector databases",
        "What is 12 * 14 in the Roman numerals chapter of the style guide?",
        "Write a poem about the frobnicator retry policy",  # a subject: its facts may be there
    ],
)
def test_questions_and_subjects_need_context(step: str) -> None:
    assert needs_context(step)


def test_a_subject_of_its_own_needs_context_even_after_other_steps() -> None:
    assert needs_context("Write a report on the history of Rome", has_dependencies=True)
    # Without dependencies "compare" has nothing before it to work on: it looks things up.
    assert needs_context("Compare PostgreSQL and SQLite")


def test_structural_plans_set_the_field_per_step() -> None:
    request = "Describe PostgreSQL, Redis and SQLite, then write a short comparison of them."
    plan = plan_from_shape(shape_of(request), PlanLimits())
    needs = {s.description: s.requires_context for s in plan.subtasks}
    assert [v for k, v in needs.items() if "comparison" not in k.lower()] == [True] * 3
    assert [v for k, v in needs.items() if "comparison" in k.lower()] == [False]
