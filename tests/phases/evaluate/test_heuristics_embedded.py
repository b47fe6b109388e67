"""Issue 11, item 7: honest scores on the embedded path.

An answer about another subject than its request, one that only says its task back, and a
wrong result of the sum asked score below the quality gate, with or without the run's own
figures (a quick, first-time success adds up to 0.2); a right answer, bare ones to short
questions included ("391", "Paris"), scores above it. The examples are what the embedded
model wrote (``tests/data/embedded.jsonl``), and a few written to the same pattern.
"""

import importlib.util
import json
from pathlib import Path
from statistics import fmean
from types import ModuleType

import pytest

from automatos.phases.evaluate.heuristics import ScoringPass, heuristic_dimensions
from automatos.phases.evaluate.labelled import Labelled, read_labelled, score_lines
from automatos.phases.evaluate.quality import auc, weighted
from automatos.phases.evaluate.scorers import HeuristicScorer
from automatos.settings import QualitySettings

GATE = QualitySettings().gate
DATA = Path(__file__).parents[2] / "data"


def q(task: str, output: str, request: str = "") -> float:
    """Q of an output scored on its own."""
    return weighted(heuristic_dimensions(task, output, request=request))


def q_run(task: str, output: str, request: str = "") -> float:
    """Q as the engine has it for a quick first-time success: the most the run can add."""
    dims = heuristic_dimensions(task, output, request=request, efficiency=1.0, reliability=1.0)
    return weighted(dims)


def below_gate(task: str, output: str, request: str = "") -> bool:
    return q(task, output, request) < GATE and q_run(task, output, request) < GATE


FRENCH_REVOLUTION = (
    "The French Revolution began in 1789, when the Estates-General met at Versailles and the "
    "Third Estate declared itself the National Assembly. It ended the absolute monarchy of "
    "Louis XVI, abolished feudal privileges and spread the ideas of liberty and equality "
    "across Europe."
)


@pytest.mark.parametrize(
    ("task", "answer"),
    [
        ("What is 17 * 23?", "391"),
        ("What is 17 * 23?", "17 * 23 = 391"),
        ("What is 17 * 23?", "The answer is 391."),
        ("What is the capital of France?", "Paris"),
        ("What is the capital of France?", "Paris."),
        ("What is the capital of France?", "The capital of France is Paris."),
        ("How many legs does a spider have?", "Eight."),
        ("Who painted the Mona Lisa?", "Leonardo da Vinci."),
        ("Name the three states of matter.", "Solid, liquid and gas."),
        ("What is 2 to the power of 10?", "1024"),
        ("How much is 15% of 80?", "12"),
        ("What is the reason phrase of HTTP status 404?", "Not Found"),
    ],
)
def test_a_right_short_answer_to_a_short_question_passes_the_gate(task: str, answer: str) -> None:
    assert q(task, answer) >= 0.75
    assert q_run(task, answer) >= 0.75


def test_an_answer_about_another_subject_is_below_the_gate() -> None:
    assert below_gate("What is 17 * 23?", FRENCH_REVOLUTION)
    assert below_gate("How many legs does a spider have?", FRENCH_REVOLUTION)
    assert below_gate("What is 144 / 12?", "144 is the number of times a row in an array appears.")
    # The same paragraph is a good answer to its own question.
    assert q("Summarise how the French Revolution began.", FRENCH_REVOLUTION) >= 0.75


@pytest.mark.parametrize(
    ("task", "restated"),
    [
        ("List the facts about the Moon.", "The task is to list the facts about the Moon."),
        ("List the facts about the Moon.", "List the facts about the Moon."),
        ("How do I boil an egg?", "Boil an egg."),
        ("Write a Python function that adds two numbers.", "The function should add two numbers."),
        ("Plan a three-day trip to Rome.", "Plan a three-day trip to Rome."),
        ("Why is the ocean salty?", "The ocean is salty."),
        ("Explain how vaccines work.", "The request is to explain how vaccines work."),
    ],
)
def test_an_answer_that_only_restates_its_task_is_below_the_gate(task: str, restated: str) -> None:
    assert below_gate(task, restated)


@pytest.mark.parametrize(
    ("task", "defined"),
    [
        (
            "Write a slogan for a coffee shop.",
            "A slogan is a short phrase that describes the product or service you offer.",
        ),
        ("Suggest a name for a bakery.", "The bakery is a place where people can buy baked goods."),
        (
            "Write a short thank-you note to a colleague.",
            "A thank-you note is a formal letter that you send to your colleague.",
        ),
        ("List the planets of the solar system.", "The planets are the bodies that orbit our sun."),
    ],
)
def test_saying_what_the_thing_asked_for_is_instead_of_making_it_is_below_the_gate(
    task: str, defined: str
) -> None:
    assert below_gate(task, defined)


@pytest.mark.parametrize(
    ("task", "answer"),
    [
        # Asked for facts about a thing, an answer may open by saying what it is.
        (
            "List three facts about the Moon.",
            "The Moon is Earth's only natural satellite. It is about 384,400 km away. It has "
            "almost no atmosphere.",
        ),
        # A definition that goes on to do what was asked is an answer.
        (
            "List the planets of the solar system.",
            "The planets are the eight bodies that orbit the Sun: Mercury, Venus, Earth, Mars, "
            "Jupiter, Saturn, Uranus and Neptune.",
        ),
        (
            "Write a Python function that adds two numbers.",
            "The function is a one-liner: def add(a, b): return a + b",
        ),
        # Asked for a piece of writing, a sentence about its subject may be the piece.
        ("Write a slogan for a coffee shop.", '"Coffee is the best thing you\'ve ever had."'),
        # Asked what a thing is, saying what it is answers.
        (
            "Explain what a hash table is.",
            "A hash table is a data structure that maps keys to values: a hash function picks "
            "the bucket of each key, so that a lookup takes constant time on average.",
        ),
    ],
)
def test_a_definition_that_answers_is_not_taken_for_one_that_does_not(
    task: str, answer: str
) -> None:
    assert q(task, answer) >= GATE


@pytest.mark.parametrize(
    ("task", "wrong"),
    [
        ("What is 17 * 23?", "17 * (23 - 4) = 50."),
        ("What is 58 + 77?", "58 + 77 = 102."),
        ("What is 125 * 4?", "125 * 4 = 609."),
        ("Compute 1024 / 4.", "1024 / 4 = 3.68"),
        ("How much is 15% of 80?", "15% of $80 = $2."),
        ("What is 2 to the power of 10?", "2 to the power of 10 is a function of an integer."),
    ],
)
def test_a_wrong_result_of_the_sum_asked_is_below_the_gate(task: str, wrong: str) -> None:
    assert below_gate(task, wrong)


def test_a_number_range_is_no_sum_to_check() -> None:
    answer = (
        "Cats are small carnivorous mammals that people have kept for thousands of years. "
        "They sleep for most of the day and hunt at dawn and dusk."
    )
    assert q("Write 3-5 sentences about cats.", answer) >= 0.75


def test_what_a_base_model_writes_after_its_answer_is_not_scored_as_the_answer() -> None:
    task = "What is the capital of France?"
    went_on = "Paris.\n\nTask 2 (10 points): Write an algorithm for finding all palindromes."
    assert q(task, went_on) == pytest.approx(q(task, "Paris."))
    echoed = "Task(s) to be completed on your own time:\n\n1. What is the capital of France?"
    assert below_gate(task, echoed)
    # A numbered list of tasks is an answer, not a prompt the model went on with.
    plan = "Task 1: book the flights.\nTask 2: book a hotel near the Colosseum in Rome."
    assert q("Plan a three-day trip to Rome.", plan) >= GATE


def test_a_quote_of_the_task_says_nothing_by_itself() -> None:
    task = "What is the capital of France?"
    assert q(task, "What is the capital of France? Paris.") >= 0.75
    assert below_gate(task, "What is the capital of France?")


def test_a_step_that_drifted_off_the_request_is_judged_by_the_request() -> None:
    request = "How many legs does a spider have?"
    drifted = "The causes of the French Revolution: write a summary"
    # What a small model wrote for a step it copied from its prompt's example: below the gate.
    assert below_gate(drifted, FRENCH_REVOLUTION, request)
    # The same output for a step on the request's subject: the request is about spiders.
    assert below_gate("Spiders: list the facts", FRENCH_REVOLUTION, request)
    # An answer on the request's subject is good, whatever the step drifted to.
    spiders = "Spiders have eight legs, attached to the cephalothorax; insects have six."
    assert q(drifted, spiders, request) >= 0.75
    assert q("Spiders: list the facts", spiders, request) >= 0.75


def test_a_long_text_to_work_on_is_not_said_back_by_using_its_words() -> None:
    source = (
        "The Great Barrier Reef, off the coast of Queensland in Australia, is the largest coral "
        "reef system in the world. It is made of nearly three thousand individual reefs and "
        "hundreds of islands, stretches for over two thousand kilometres and can be seen from "
        "space. Rising sea temperatures have caused mass coral bleaching several times since "
        "1998, and the reef's coral cover has fallen sharply in some regions."
    )
    summary = (
        "The Great Barrier Reef off Queensland is the largest coral reef system in the world, "
        "made of nearly three thousand reefs; rising sea temperatures have caused mass coral "
        "bleaching since 1998."
    )
    assert q(f"Summarise this text: {source}", summary) >= GATE


# The labelled set: what the embedded model wrote, by kind.


@pytest.fixture(scope="module")
def scored() -> dict[str, list[tuple[float, float]]]:
    """Each embedded and short-answer kind's scores: on their own, and with run figures."""
    by_kind: dict[str, list[tuple[float, float]]] = {}
    scoring = ScoringPass()
    for line in read_labelled(DATA / "quality.jsonl"):
        kind = str((line.model_extra or {})["kind"])
        if not kind.startswith(("embedded_", "short_")):
            continue
        request = line.request or line.task
        alone = scoring.dimensions(line.task, line.output, request=request)
        run = scoring.dimensions(
            line.task, line.output, request=request, efficiency=1.0, reliability=1.0
        )
        by_kind.setdefault(kind, []).append((weighted(alone), weighted(run)))
    return by_kind


@pytest.mark.parametrize(
    "kind", ["embedded_off_subject", "embedded_restatement", "embedded_wrong_result"]
)
def test_each_bad_kind_of_the_embedded_model_scores_below_the_gate(
    scored: dict[str, list[tuple[float, float]]], kind: str
) -> None:
    alone = [a for a, _ in scored[kind]]
    run = [r for _, r in scored[kind]]
    assert len(alone) >= 15
    assert fmean(alone) < 0.45 and fmean(run) < 0.55
    # Most of each kind, one by one, not only on average.
    assert sum(r < GATE for r in run) / len(run) >= 0.75


@pytest.mark.parametrize("kind", ["embedded_good", "short_answer"])
def test_each_good_kind_scores_above_the_gate(
    scored: dict[str, list[tuple[float, float]]], kind: str
) -> None:
    alone = [a for a, _ in scored[kind]]
    assert len(alone) >= 50
    assert fmean(alone) >= 0.85
    assert sum(a >= GATE for a in alone) / len(alone) >= 0.95


def test_the_embedded_models_good_answers_outrank_its_bad_ones(
    scored: dict[str, list[tuple[float, float]]],
) -> None:
    good = [a for a, _ in scored["embedded_good"]]
    bad = [
        a
        for kind in ("embedded_off_subject", "embedded_restatement", "embedded_wrong_result")
        for a, _ in scored[kind]
    ]
    assert auc([1] * len(good) + [0] * len(bad), good + bad) >= 0.9


async def test_a_line_is_scored_within_its_request() -> None:
    request = "How many legs does a spider have?"
    task = "The causes of the French Revolution: write a summary"
    alone = Labelled(task=task, output=FRENCH_REVOLUTION)
    within = Labelled(task=task, output=FRENCH_REVOLUTION, request=request)
    report = await score_lines([alone, within], HeuristicScorer())
    assert report.scores[0] >= 0.75 > GATE > report.scores[1]


def _script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, DATA / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_quality_set_holds_every_labelled_output_of_the_embedded_model() -> None:
    lines = [json.loads(raw) for raw in (DATA / "quality.jsonl").read_text().splitlines()]
    embedded = _script("make_quality_set").embedded()
    assert len(embedded) >= 250
    assert lines[-len(embedded) :] == embedded
    kinds = {line["kind"] for line in embedded}
    assert kinds == {
        "embedded_good",
        "embedded_off_subject",
        "embedded_restatement",
        "embedded_wrong_result",
        "embedded_poor",
    }
