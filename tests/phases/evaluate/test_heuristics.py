"""The heuristics on text unlike the benchmark's (a cooking task), so they are not tuned to it."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from automatos.domain.plan import GraphMetadata, Subtask
from automatos.phases.evaluate.heuristics import (
    Dimensions,
    contradiction,
    finished,
    heuristic_dimensions,
    is_deferral,
    is_refusal,
    novelty,
    relevance,
    repetition,
)
from automatos.phases.evaluate.quality import weighted
from automatos.phases.evaluate.scorers import HeuristicScorer, LLMJudgeScorer
from automatos.testing import ScriptedLLM

TASK = "Explain how to bake sourdough bread at home."
GOOD = (
    "Mix 500 g of bread flour with 350 g of water and 100 g of active sourdough starter, rest "
    "the dough for an hour, then add 10 g of salt. Over the next four hours, stretch and fold "
    "the dough every 30 minutes so the gluten develops. Shape it into a tight round, let it "
    "proof in a floured basket overnight in the fridge, and bake it in a preheated Dutch oven "
    "at 250 °C for 20 minutes with the lid on and 25 minutes without. Let the loaf cool for an "
    "hour before slicing, or the crumb will be gummy."
)
BAD = {
    "off topic": (
        "The stock market closed higher on Friday as investors weighed quarterly earnings "
        "reports from technology companies against concerns about interest rates and inflation."
    ),
    "truncated": "Mix 500 g of bread flour with 350 g of water and 100 g of active sourdough",
    "repetitive": " ".join(["Mix the flour with water and starter."] * 8),
    "contradicting": (
        "Sourdough bread cannot be baked at home; there is no such thing as a home sourdough, "
        "and the opposite is true: it is not possible without an industrial oven."
    ),
    "empty": "",
    "refusal": "I'm sorry, but I can't help with that request.",
    # what small models write in place of an answer: a promise, or the task said back
    "promise": (
        "Sure! I will explain how to bake sourdough bread at home, step by step, so that you "
        "can bake it yourself."
    ),
    "restatement": (
        "To explain how to bake sourdough bread at home, I would first describe the bread, "
        "then explain how to bake it at home."
    ),
}


def q(output: str) -> float:
    return weighted(heuristic_dimensions(TASK, output))


def test_a_good_answer_scores_high() -> None:
    assert q(GOOD) >= 0.8


@pytest.mark.parametrize("kind", sorted(BAD))
def test_each_kind_of_bad_answer_scores_well_below(kind: str) -> None:
    assert q(BAD[kind]) < q(GOOD) - 0.25


def test_signals() -> None:
    assert relevance(TASK, GOOD) > 0.6 > relevance(TASK, BAD["off topic"])
    assert repetition(BAD["repetitive"]) > 0.8 and repetition(GOOD) < 0.05
    assert is_refusal(BAD["refusal"]) and not is_refusal(GOOD)
    assert contradiction(TASK, BAD["contradicting"]) >= 0.6 and contradiction(TASK, GOOD) < 0.2
    assert finished(GOOD) and not finished(BAD["truncated"])
    assert finished("A list:\n```\ncode\n```")
    assert is_deferral(TASK, BAD["promise"]) and is_deferral(TASK, BAD["restatement"])
    assert novelty(TASK, BAD["restatement"]) < 0.1 < 0.6 < novelty(TASK, GOOD)


def test_an_answer_that_opens_like_a_promise_but_delivers_is_not_a_deferral() -> None:
    for opener in ("Here's how. ", "Sure! Let me walk you through it. ", "I would do this: "):
        assert not is_deferral(TASK, opener + GOOD)
        assert q(opener + GOOD) >= 0.8


def test_run_data_and_dependencies() -> None:
    clean = heuristic_dimensions(TASK, GOOD, efficiency=1.0, reliability=1.0)
    retried = heuristic_dimensions(TASK, GOOD, efficiency=0.2, reliability=0.5)
    assert weighted(retried) < weighted(clean)
    unrelated = heuristic_dimensions(TASK, GOOD, dependencies=["zzz qqq xxx"])
    supported = heuristic_dimensions(TASK, GOOD, dependencies=[GOOD[:200]])
    assert supported.accuracy > unrelated.accuracy


# Issue 10: scoring works on any text an agent may write, or none.
_ANY_TEXT = st.text(st.characters(blacklist_categories=()), max_size=400) | st.sampled_from(
    ["", " ", "\n\t", "\x00", "\ud800", "```", "...", "I'm sorry" * 40]
)


@settings(max_examples=300, deadline=None)
@given(
    task=_ANY_TEXT,
    output=_ANY_TEXT,
    request=_ANY_TEXT,
    dependencies=st.lists(_ANY_TEXT, max_size=3),
)
def test_any_text_scores_within_bounds(
    task: str, output: str, request: str, dependencies: list[str]
) -> None:
    dims = heuristic_dimensions(
        task, output, request=request, dependencies=dependencies, efficiency=0.5, reliability=1.0
    )
    for value in (dims.completeness, dims.accuracy, dims.coherence):
        assert 0.0 <= value <= 1.0
    assert 0.0 <= weighted(dims) <= 1.0
    for signal in (relevance(task, output), novelty(task, output), repetition(output)):
        assert 0.0 <= signal <= 1.0
    assert 0.0 <= contradiction(task, output) <= 1.0


async def test_the_scorers_take_empty_output() -> None:
    subtask = Subtask(
        "a", TASK, (), False, 2, "", None, GraphMetadata(0, 1, (), (), 0.0, 0.0, True)
    )
    assert await HeuristicScorer().score("", subtask, "") == 0.0
    assert await LLMJudgeScorer(ScriptedLLM()).score("", subtask, "") == 0.0
    assert heuristic_dimensions(TASK, "") == Dimensions(0.0, 0.0, None, None, 0.0)
