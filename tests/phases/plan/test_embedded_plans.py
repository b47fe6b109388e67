"""Plans on the embedded model (Gemma 3 270M, too small to plan): the request's structure,
in the request's words, for every kind of request a new user types."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator

import pytest

from automatos import Engine, Settings
from automatos.domain.request import WorkflowRequest
from automatos.phases.events import EventBus
from automatos.phases.plan.decompose import DecomposeStage
from automatos.phases.plan.structure import ITEM_STEP
from automatos.phases.state import Runtime, WorkflowState

ALLOWED = frozenset(re.findall(r"\w+", ITEM_STEP.format(item="").lower()))
"""The only words a structured plan may add to the request's."""

_LONG_BRIEF = (
    "We are a small company that sells handmade furniture online. Our customers are mostly "
    "in Germany and Austria, and most of them find us through Instagram. Sales grew by 20% "
    "last year, but returns also grew, mainly because of damage in transport. "
) * 12 + (
    "Analyse why returns grew, propose three ways to reduce transport damage, and estimate "
    "what each would cost. Finally, write a one-page summary for the owners."
)

# (request, its separate deliverables, how many of them use no other's result)
REQUESTS: list[tuple[str, int, int]] = [
    ("What is 17 * 23?", 1, 1),
    ("Who wrote Hamlet?", 1, 1),
    ("hello", 1, 1),
    ("Photosynthesis", 1, 1),
    ("quick question: whats the capital of australia", 1, 1),
    ("Write a haiku about autumn 🍂🍁", 1, 1),
    ("🚀 Write a tweet announcing our launch 🎉 and draft a press release.", 2, 2),
    (
        "Plan a 5-day trip to Japan: find flights from London, suggest hotels in Tokyo and "
        "Kyoto, make a day-by-day itinerary, and estimate the total budget.",
        4,
        3,
    ),
    (
        "I'm visiting Lisbon for a weekend. Find cheap flights from Berlin, suggest a hotel "
        "near the old town, and list five restaurants worth a visit.",
        3,
        3,
    ),
    ("Describe PostgreSQL, Redis and SQLite, then compare them.", 4, 3),
    ("List the best restaurants in Paris and group them by district.", 2, 1),
    ("List two uses of a hash map, then summarise them.", 2, 1),
    (
        "Write a Python function that reverses a linked list, then write unit tests for it.",
        2,
        1,
    ),
    (
        "Fix this function:\n```python\ndef add(a, b):\n    return a - b\n```\nThen add tests "
        "for it.",
        2,
        1,
    ),
    (
        "Build a REST API in FastAPI with user login, a todo list and file uploads, then write "
        "the documentation for it.",
        2,
        1,
    ),
    ("Given the list [3, 1, 2], sort it in Python and explain the algorithm's complexity.", 1, 1),
    (
        "1) gather sales data for Q1 2) clean it 3) build a chart 4) write a short report",
        4,
        1,
    ),
    (
        "Analyse the attached sales data, identify the top 5 products, and create a chart of "
        "monthly revenue; also draft an email to the team summarising the findings.",
        4,
        3,
    ),
    (
        "Step 1: collect customer feedback from the survey.\nStep 2: categorise the feedback "
        "by theme.\nStep 3: write a summary of the top themes.",
        3,
        1,
    ),
    (
        "1. What is machine learning?\n2. What is deep learning?\n3. How do they differ?",
        3,
        2,
    ),
    (
        "Research the following companies:\n- Acme\n- Globex\n- Initech\nThen rank them by "
        "revenue.",
        4,
        3,
    ),
    ('Translate "Good morning, how are you?" into French, Spanish and German.', 3, 3),
    ("Explain the causes, effects and legacy of the French Revolution.", 3, 3),
    ("Compare PostgreSQL, Redis and SQLite for caching.", 1, 1),
    (
        "Research solar panels. Research heat pumps. Write a report comparing them. Finally, "
        "recommend one for a small house.",
        4,
        2,
    ),
    (
        "Please help me prepare for a job interview at Google. I need a list of likely "
        "questions, sample answers for each, and a study plan for the next two weeks.",
        3,
        2,
    ),
    ("Write a short story. Make it funny. Keep it under 300 words.", 1, 1),
    (
        "Summarise this email:\n\nHi team, please review the doc and send feedback by Friday. "
        "Also book the room.\n\nThanks",
        1,
        1,
    ),
    ("Beschreibe Berlin, München und Hamburg und vergleiche sie.", 1, 1),
    ("東京の観光スポットを教えてください。", 1, 1),
    (
        "Draft an agenda for Monday's meeting, book a room for 10 people, and send invitations "
        "to the team.",
        3,
        3,
    ),
    ("What's 2+2? And what's the square root of 16?", 2, 2),
    (_LONG_BRIEF, 4, 2),
    (
        "Research the top 3 competitors of Notion; for each, list pricing, features and target "
        "users; then recommend a positioning for our product.",
        3,
        1,
    ),
]


@pytest.fixture(scope="module")
def embedded() -> Iterator[Runtime]:
    """The default engine's runtime: the embedded model, one provider for every case."""
    settings = Settings()
    settings.store.enabled = False
    engine = Engine(settings)
    yield engine.runtime
    asyncio.run(engine.aclose())


@pytest.mark.parametrize(
    ("request_", "deliverables", "independent"), REQUESTS, ids=lambda v: str(v)[:24]
)
async def test_the_plan_follows_the_request(
    embedded: Runtime, request_: str, deliverables: int, independent: int
) -> None:
    assert not embedded.profile.plans_freely  # the embedded model: it does not plan freely
    state = WorkflowState(
        request=WorkflowRequest(text=request_), runtime=embedded, bus=EventBus("w")
    )
    started = time.perf_counter()
    await DecomposeStage().run(state)
    elapsed = time.perf_counter() - started
    plan = state.require_plan()
    assert not state.llm_calls  # the request's structure needs no model call
    assert elapsed < 0.5
    request_words = {w.lower() for w in re.findall(r"\w+", request_)}
    for subtask in plan.subtasks:
        words = [w.lower() for w in re.findall(r"\w+", subtask.description)]
        assert words, subtask
        leaked = [w for w in words if w not in request_words and w not in ALLOWED]
        assert not leaked, (subtask.description, leaked)
        assert words[-1] in request_words, subtask.description  # not cut mid-word
    assert len(plan.subtasks) >= deliverables
    assert len(plan.layers[0]) >= independent
