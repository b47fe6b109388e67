"""Request analysis: deliverables, the references between them, enumerations, questions."""

from __future__ import annotations

import re
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from automatos.phases.plan.shape import RequestShape, shape_of

# (request, the parts' texts, each part's uses)
SEPARATE: list[tuple[str, list[str], list[tuple[int, ...]]]] = [
    (
        "Plan a 5-day trip to Japan: find flights from London, suggest hotels in Tokyo and "
        "Kyoto, make a day-by-day itinerary, and estimate the total budget.",
        [
            "Find flights from London",
            "Suggest hotels in Tokyo and Kyoto",
            "Make a day-by-day itinerary",
            "Estimate the total budget",
        ],
        [(), (), (), (0, 1, 2)],
    ),
    (
        "Describe PostgreSQL, Redis and SQLite, then compare them.",
        ["Describe PostgreSQL", "Describe Redis", "Describe SQLite", "Compare them"],
        [(), (), (), (0, 1, 2)],
    ),
    (
        "List the best restaurants in Paris and group them by district.",
        ["List the best restaurants in Paris", "Group them by district"],
        [(), (0,)],
    ),
    (
        "Write a Python function that reverses a linked list, then write unit tests for it.",
        ["Write a Python function that reverses a linked list", "Write unit tests for it"],
        [(), (0,)],
    ),
    (
        "List two uses of a hash map, then summarise them.",
        ["List two uses of a hash map", "Summarise them"],
        [(), (0,)],
    ),
    (
        "Research the following companies:\n- Acme\n- Globex\n- Initech\n"
        "Then rank them by revenue.",
        [
            "Research the following companies: Acme",
            "Research the following companies: Globex",
            "Research the following companies: Initech",
            "Rank them by revenue",
        ],
        [(), (), (), (0, 1, 2)],
    ),
    (
        "Plan my trip:\n1. Find flights from Berlin to Rome\n2. Book a hotel near the Colosseum\n"
        "3. Make a list of restaurants\n4. Summarise everything in a table",
        [
            "Find flights from Berlin to Rome",
            "Book a hotel near the Colosseum",
            "Make a list of restaurants",
            "Summarise everything in a table",
        ],
        [(), (), (), (0, 1, 2)],
    ),
    (
        'Translate "Hello. How are you?" into French, Spanish and German.',
        [
            'Translate "Hello. How are you?" into French',
            'Translate "Hello. How are you?" into Spanish',
            'Translate "Hello. How are you?" into German',
        ],
        [(), (), ()],
    ),
    (
        "Fix this function:\n```python\ndef add(a, b):\n    return a - b\n```\n"
        "Then add tests for it.",
        ["Fix this function", "Add tests for it"],
        [(), (0,)],
    ),
    (
        "Find the population of Paris, London and Rome, then rank the cities by size.",
        [
            "Find the population of Paris",
            "Find the population of London",
            "Find the population of Rome",
            "Rank the cities by size",
        ],
        [(), (), (), (0, 1, 2)],
    ),
    (
        "1) gather sales data for Q1 2) clean it 3) build a chart 4) write a short report",
        ["Gather sales data for Q1", "Clean it", "Build a chart", "Write a short report"],
        [(), (0,), (), (1, 2)],
    ),
    (
        "Research solar panels. Research heat pumps. Write a report comparing them. Finally, "
        "recommend one for a small house.",
        [
            "Research solar panels",
            "Research heat pumps",
            "Write a report comparing them",
            "Recommend one for a small house",
        ],
        [(), (), (0, 1), (2,)],
    ),
    (
        "Please help me prepare for a job interview at Google. I need a list of likely "
        "questions, sample answers for each, and a study plan for the next two weeks.",
        [
            "A list of likely questions",
            "Sample answers for each",
            "A study plan for the next two weeks",
        ],
        [(), (0,), ()],
    ),
    (
        "Analyse the attached sales data, identify the top 5 products, and create a chart of "
        "monthly revenue; also draft an email to the team summarising the findings.",
        [
            "Analyse the attached sales data",
            "Identify the top 5 products",
            "Create a chart of monthly revenue",
            "Draft an email to the team summarising the findings",
        ],
        [(), (), (), (0, 1, 2)],
    ),
    (
        "First, research the market for electric bikes in Germany. Second, identify the main "
        "competitors. Third, propose a pricing strategy based on the results.",
        [
            "Research the market for electric bikes in Germany",
            "Identify the main competitors",
            "Propose a pricing strategy based on the results",
        ],
        [(), (), (0, 1)],
    ),
    (
        "Research the top 3 competitors of Notion; for each, list pricing, features and target "
        "users; then recommend a positioning for our product.",
        [
            "Research the top 3 competitors of Notion",
            "For each, list pricing, features and target users",
            "Recommend a positioning for our product",
        ],
        [(), (0,), (1,)],
    ),
    (
        "Step 1: collect customer feedback from the survey.\nStep 2: categorise the feedback "
        "by theme.\nStep 3: write a summary of the top themes.",
        [
            "Collect customer feedback from the survey",
            "Categorise the feedback by theme",
            "Write a summary of the top themes",
        ],
        [(), (0,), (1,)],
    ),
    (
        "1. What is machine learning?\n2. What is deep learning?\n3. How do they differ?",
        ["What is machine learning?", "What is deep learning?", "How do they differ?"],
        [(), (), (0, 1)],
    ),
    (
        "Draft an agenda for Monday's meeting, book a room for 10 people, and send invitations "
        "to the team.",
        [
            "Draft an agenda for Monday's meeting",
            "Book a room for 10 people",
            "Send invitations to the team",
        ],
        [(), (), ()],
    ),
    (
        "Please proofread my essay and then rate it from 1 to 10.",
        ["Proofread my essay", "Rate it from 1 to 10"],
        [(), (0,)],
    ),
    (
        "Write a haiku about spring. Write a limerick about cats.",
        ["Write a haiku about spring", "Write a limerick about cats"],
        [(), ()],
    ),
    (
        "Calculate 15% of 240 and convert it to a fraction.",
        ["Calculate 15% of 240", "Convert it to a fraction"],
        [(), (0,)],
    ),
    (
        "Find flights to Rome and book a hotel near the station.",
        ["Find flights to Rome", "Book a hotel near the station"],
        [(), ()],
    ),
    (
        "What's 2+2? And what's the square root of 16?",
        ["What's 2+2?", "What's the square root of 16?"],
        [(), ()],
    ),
    (
        "- Summarise chapter 1\n- Summarise chapter 2\n- Compare the two chapters",
        ["Summarise chapter 1", "Summarise chapter 2", "Compare the two chapters"],
        [(), (), (0, 1)],
    ),
    (
        "Write the solution in Python; analyse its time complexity; use step 1 to write tests.",
        [
            "Write the solution in Python",
            "Analyse its time complexity",
            "Use step 1 to write tests",
        ],
        [(), (0,), (0,)],
    ),
    (
        "🚀 Write a tweet announcing our launch 🎉 and draft a press release.",
        ["🚀 Write a tweet announcing our launch 🎉", "Draft a press release"],
        [(), ()],
    ),
]


@pytest.mark.parametrize(("request_", "texts", "uses"), SEPARATE, ids=lambda v: str(v)[:30])
def test_separate_deliverables_and_their_references(
    request_: str, texts: list[str], uses: list[tuple[int, ...]]
) -> None:
    shape = shape_of(request_)
    assert [p.text for p in shape.parts] == texts
    assert [p.uses for p in shape.parts] == uses
    assert not shape.question
    assert_whole_words(request_, shape)


ONE_DELIVERABLE = [
    "Write a story about a dragon who learns to fly and finds a friend.",
    "Write a function that takes a list and returns the sum.",
    "Explain how to research and write a paper.",
    "Compare and contrast capitalism and socialism.",
    "Create a React component that fetches users and displays them in a table.",
    "Write a blog post about travel, food and culture in Italy.",
    "Write a program to read a CSV file and plot the data.",
    "Plan and execute a marketing campaign.",
    "Summarise the key points and implications of the new tax law.",
    "Find and fix the bug in this code: `x = [1, 2, 3]; print(x[3])`",
    "Write a cover letter for a data analyst job and make it sound confident.",
    "Translate this paragraph into French and keep the formatting.",
    "Tell me a joke about cats and dogs.",
    "Describe the water cycle and its stages.",
    "Write a function to sort a list and explain how it works.",
    "Design a logo for a coffee shop.",
    "Write a short story. Make it funny. Keep it under 300 words.",
    "I am a teacher. I need a lesson plan on fractions for 10-year-olds.",
    "Create a marketing plan for a new vegan restaurant in Berlin, including target audience, "
    "channels, budget and a 3-month timeline.",
    "Summarize the following article:\n\nThe city council voted on Tuesday to expand the bike "
    "lane network. Critics say it will hurt businesses. Find out more at the meeting.",
    "Summarise this email:\n\nHi team, please review the doc and send feedback by Friday. Also "
    "book the room.\n\nThanks",
    "Describe the design and test phases of a software project.",
    "Write an essay about war and peace.",
    "Sort these numbers: 5, 3, 9, 1.",
    "Requirements:\n- must support OAuth\n- must be fast\nBuild a login service.",
    "Beschreibe Berlin, München und Hamburg und vergleiche sie.",
    "東京の観光スポットを教えてください。",
    "hello",
    "Write a haiku about autumn 🍂🍁",
    "Can you write me a report on the state of AI regulation in the EU, US and China?",
    "x" * 5000,
    "",
]


@pytest.mark.parametrize("request_", ONE_DELIVERABLE, ids=lambda v: v[:30])
def test_one_deliverable_is_one_part_the_whole_request(request_: str) -> None:
    shape = shape_of(request_)
    assert len(shape.parts) == 1
    assert shape.parts[0].text == " ".join(request_.split())
    assert shape.parts[0].uses == ()


@pytest.mark.parametrize(
    ("request_", "question"),
    [
        ("What is 17 * 23?", True),
        ("Who wrote Hamlet?", True),
        ("How do I make pancakes?", True),
        ("quick question: whats the capital of australia", True),
        ("Tell me who painted the Mona Lisa.", True),
        ("Quelle est la capitale de la France ?", True),
        ("what is a closure in javascript", True),
        ("Can you write a poem about the sea?", False),
        ("Write a poem about the sea.", False),
        ("The sky is blue.", False),
        ("What is Docker? Then write a Dockerfile for a Flask app.", False),
    ],
)
def test_direct_questions(request_: str, question: bool) -> None:
    assert shape_of(request_).question is question


@pytest.mark.parametrize(
    ("request_", "items"),
    [
        ("Compare PostgreSQL, Redis and SQLite for caching.", ("PostgreSQL", "Redis", "SQLite")),
        ("Compare Python and Go for web services.", ("Python", "Go")),
        (
            "Compare three databases: PostgreSQL, Redis and SQLite.",
            ("PostgreSQL", "Redis", "SQLite"),
        ),
        ("Which is faster, Rust, Go, or Java?", ("Rust", "Go", "Java")),
        ("Compare these databases:\n- PostgreSQL\n- Redis", ("PostgreSQL", "Redis")),
        (
            "Explain the causes, effects and legacy of the French Revolution.",
            ("causes", "effects", "legacy"),
        ),
        (
            "Create a marketing plan including target audience, channels, budget and a timeline.",
            ("target audience", "channels", "budget", "timeline"),
        ),
        ("Explain the difference between TCP and UDP.", ("TCP", "UDP")),
        ("Write a poem about cats and dogs.", ()),
        ("Write an essay about war and peace.", ()),
        ("What is 17 * 23?", ()),
    ],
)
def test_enumerations(request_: str, items: tuple[str, ...]) -> None:
    assert shape_of(request_).items == items


def test_an_aggregate_with_named_items_is_one_part() -> None:
    shape = shape_of("Compare PostgreSQL, Redis and SQLite for caching.")
    assert len(shape.parts) == 1
    assert shape.parts[0].verb == "compare"


def test_an_enumeration_of_three_is_expanded_with_its_shared_tail() -> None:
    shape = shape_of("Explain the causes, effects and legacy of the French Revolution.")
    assert [p.text for p in shape.parts] == [
        "Explain the causes of the French Revolution",
        "Explain effects of the French Revolution",
        "Explain legacy of the French Revolution",
    ]
    assert shape.independent == (0, 1, 2)


def test_verbs_words_and_context() -> None:
    shape = shape_of(
        "I'm visiting Tokyo for 4 days in April. Find flights, suggest hotels, plan daily "
        "activities and estimate the total cost. Keep it short."
    )
    assert shape.verbs == {"find", "suggest", "plan", "estimate"}
    assert shape.words == 23
    assert [p.text for p in shape.parts] == [
        "Find flights",
        "Suggest hotels",
        "Plan daily activities",
        "Estimate the total cost",
    ]
    assert shape.parts[3].uses == (0, 1, 2)
    assert shape.context == ("I'm visiting Tokyo for 4 days in April.", "Keep it short.")


def test_spellings_share_a_base_form() -> None:
    assert shape_of("Analyze the data and summarize it.").verbs == {"analyse", "summarise"}


def test_a_goal_with_its_deliverables_is_context() -> None:
    shape = shape_of("Plan my trip:\n- find flights\n- book a hotel")
    assert [p.text for p in shape.parts] == ["Find flights", "Book a hotel"]
    assert shape.context == ("Plan my trip",)


# (request, the parts' texts): a marked list of things under an instruction is one
# independent deliverable per item, however short the item and whether or not it has a verb.
LISTED_THINGS: list[tuple[str, list[str]]] = [
    (
        "Write a handbook for new engineers with eight chapters: 1. The codebase 2. The build "
        "3. Testing 4. Code review 5. Deployment 6. On-call 7. Security 8. Team rituals",
        [
            f"Write a handbook for new engineers with eight chapters: {item}"
            for item in (
                "The codebase",
                "The build",
                "Testing",
                "Code review",
                "Deployment",
                "On-call",
                "Security",
                "Team rituals",
            )
        ],
    ),
    (
        "Cover:\n- Testing\n- Deployment\n- Security",
        ["Cover: Testing", "Cover: Deployment", "Cover: Security"],
    ),
    (
        "Write the onboarding guide chapters:\n1. The build\n2. Testing",
        [
            "Write the onboarding guide chapters: The build",
            "Write the onboarding guide chapters: Testing",
        ],
    ),
    (
        "Write chapters on: [Testing, Deployment, Code review]",
        [
            "Write chapters on: Testing",
            "Write chapters on: Deployment",
            "Write chapters on: Code review",
        ],
    ),
    (
        "Explain these concepts:\n* closures\n* generators",
        ["Explain these concepts: closures", "Explain these concepts: generators"],
    ),
    (
        "Translate into German: [cat; dog and bird].",
        ["Translate into German: cat", "Translate into German: dog", "Translate into German: bird"],
    ),
    (
        "Topics:\n- Testing\n- Deployment",
        ["Testing", "Deployment"],
    ),
    (
        "Draft the release notes sections\na) Fixes\nb) Features\nc) Known issues",
        [
            "Draft the release notes sections: Fixes",
            "Draft the release notes sections: Features",
            "Draft the release notes sections: Known issues",
        ],
    ),
]


@pytest.mark.parametrize(("request_", "texts"), LISTED_THINGS, ids=lambda v: str(v)[:30])
def test_each_listed_thing_is_a_deliverable(request_: str, texts: list[str]) -> None:
    shape = shape_of(request_)
    assert [p.text for p in shape.parts] == texts
    assert shape.independent == tuple(range(len(texts)))
    assert_whole_words(request_, shape)


@pytest.mark.parametrize(
    "request_",
    [
        "Compare these databases:\n- PostgreSQL\n- Redis",  # weighed together
        "Build a login service with these requirements:\n- must support OAuth\n- must be fast",
        "Create a landing page with these details:\n- Dark theme\n- Blue buttons",
        "Sort these numbers: [5, 3, 9, 1].",
    ],
)
def test_a_list_of_one_deliverables_details_stays_one_part(request_: str) -> None:
    assert len(shape_of(request_).parts) == 1


def test_a_long_list_is_one_part_per_item_and_fast() -> None:
    request = "\n".join(f"{n}. Summarise chapter {n} of the book" for n in range(1, 41))
    request += "\nFinally, compare all the chapters."
    started = time.perf_counter()
    shape = shape_of(request)
    elapsed = time.perf_counter() - started
    assert len(shape.parts) == 41
    assert shape.parts[-1].uses == tuple(range(40))
    assert elapsed < 0.05


def assert_whole_words(request: str, shape: RequestShape) -> None:
    """Every word of every part is a whole word of the request (the first may be
    capitalised)."""
    known = {w.lower() for w in re.findall(r"\w+", request)}
    for part in shape.parts:
        for word in re.findall(r"\w+", part.text):
            assert word.lower() in known, (word, part.text)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "Describe",
                "compare",
                "them",
                "it",
                "and",
                "then",
                ",",
                ";",
                ".",
                ":",
                "?",
                "\n",
                "\n- ",
                "\n1. ",
                "2)",
                "Paris",
                "Rome",
                "the results",
                "finally",
                "also",
                "write",
                "a report",
                "list",
                "each",
                "all",
                '"quoted. text"',
                "`code; here`",
                "(an aside, here)",
                "für",
                "東京",
                "🚀",
                "what",
                "is",
            ]
        ),
        max_size=40,
    ).map(" ".join)
)
def test_any_text_gives_a_sound_shape(request: str) -> None:
    shape = shape_of(request)
    assert shape.parts
    for i, part in enumerate(shape.parts):
        assert all(0 <= u < i for u in part.uses)
        assert part.text or not request.strip()
    assert_whole_words(request, shape)


def test_pathological_texts_take_linear_time() -> None:
    texts = [
        "x" * 100_000,
        " and ".join("find the data" for _ in range(6_000)),
        "\n".join(f"- write part {n}" for n in range(8_000)),
        ", ".join("alpha beta" for _ in range(10_000)),
        '"' * 50_000,
        "a@b" * 30_000,
    ]
    for text in texts:
        started = time.perf_counter()
        shape_of(text)
        assert time.perf_counter() - started < 3, text[:40]


def test_parts_never_end_mid_word() -> None:
    for request, _, _ in SEPARATE:
        words = set(re.findall(r"\w+", request))
        for part in shape_of(request).parts:
            last = re.findall(r"\w+", part.text)[-1]
            assert last in words, (part.text, request)
