"""The question set of ``benchmarks/context.py``: every answer fact is really in the corpus.

The corpus is ``pydoc_data.topics`` (the language reference topics CPython ships for
``help()``); a fact is compared case-folded with its whitespace collapsed, as the benchmark
compares it. No embedder here: this checks the data, fast.
"""

from __future__ import annotations

import json
import pydoc_data.topics
import re
from pathlib import Path
from typing import Any

import pytest

QUESTIONS = Path(__file__).parent.parent / "benchmarks" / "context_questions.json"


def _normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text).casefold().strip()


def _questions() -> list[dict[str, Any]]:
    questions: list[dict[str, Any]] = json.loads(QUESTIONS.read_text(encoding="utf-8"))["questions"]
    return questions


def test_the_set_has_at_least_40_distinct_questions_over_many_topics() -> None:
    questions = _questions()
    assert len(questions) >= 40
    assert len({q["id"] for q in questions}) == len(questions)
    assert len({_normalise(q["question"]) for q in questions}) == len(questions)
    assert len({q["topic"] for q in questions}) >= 30


@pytest.mark.parametrize("question", _questions(), ids=lambda q: q["id"])
def test_every_fact_is_in_the_topic_it_names(question: dict[str, Any]) -> None:
    topics: dict[str, str] = pydoc_data.topics.topics
    assert question["topic"] in topics
    assert 1 <= len(question["facts"]) <= 3
    text = _normalise(topics[question["topic"]])
    for fact in question["facts"]:
        assert len(fact.split()) >= 2, f"{fact!r} is too short to show the answer is there"
        assert _normalise(fact) in text, f"{fact!r} is not in topic {question['topic']!r}"
