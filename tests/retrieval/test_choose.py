"""One subtask's context from a constructed pool: every item has exactly one fate."""

from __future__ import annotations

import numpy as np
import pytest

from automatos.retrieval.choose import choose
from automatos.retrieval.pool import Pool
from automatos.settings import ContextSettings

RICH = " ".join(f"word{i}" for i in range(40))  # 40 distinct words: log2 40 ≈ 5.3 bits
POOR = "the the the the cat"


def _unit(*values: float) -> np.ndarray:
    v = np.asarray(values, dtype=np.float32)
    return v / np.linalg.norm(v)


def _pool(
    rows: list[tuple[str, str, np.ndarray, int, str]], agents: list[str] | None = None
) -> Pool:
    """rows: (id, kind, vector, tokens, text)."""
    from automatos.retrieval.optimizer import word_entropy

    return Pool(
        ids=tuple(r[0] for r in rows),
        kinds=tuple(r[1] for r in rows),
        titles=tuple(f"title of {r[0]}" for r in rows),
        sources=tuple(f"source of {r[0]}" for r in rows),
        texts=tuple(r[4] for r in rows),
        tokens=np.asarray([r[3] for r in rows], dtype=np.int64),
        tokenizers=tuple("tok" for _ in rows),
        entropy=np.asarray([word_entropy(r[4]) for r in rows]),
        agents=tuple(agents or ["" for _ in rows]),
        matrix=np.vstack([r[2] for r in rows]).astype(np.float32),
        embedder="test",
    )


def _choose(pool: Pool, query: np.ndarray, budget: int = 1000, **settings: object):
    return choose(
        pool,
        query,
        subtask_id="s",
        agent="writer",
        budget=budget,
        settings=ContextSettings(**settings),  # type: ignore[arg-type]
        tokenizer="tok",
        count_tokens=lambda text: 7,
    )


def test_each_step_drops_what_it_should_and_counts_it() -> None:
    q = _unit(1, 0, 0)
    pool = _pool(
        [
            ("kb:near", "chunk", _unit(1, 0.1, 0), 50, RICH),
            ("kb:twin", "chunk", _unit(1, 0.1, 0.001), 50, RICH + " extra"),  # near-duplicate
            ("kb:poor", "chunk", _unit(1, 0, 0), 5, POOR),  # relevant but no information
            ("kb:far", "chunk", _unit(0, 1, 0), 50, RICH),  # not relevant
            ("kb:big", "chunk", _unit(1, 0, 0.6), 5000, RICH + " big"),  # over the budget
        ]
    )
    record = _choose(pool, q, budget=200, relevance_margin=None, min_relevance=0.7)
    assert [i.id for i in record.items] == ["kb:near"]
    assert record.tokens == 50 + 7 <= record.budget == 200  # its text and its header line
    assert record.dropped_by == {"entropy": 1, "relevance": 1, "mmr": 1, "knapsack": 1}
    steps = {d.id: d.step for d in record.dropped}
    # the entropy step's drops that were relevant are listed; the relevance step's only counted
    assert steps == {
        "kb:poor": "entropy",
        "kb:far": "relevance",
        "kb:twin": "mmr",
        "kb:big": "knapsack",
    }
    assert "title of kb:near" in next(d.reason for d in record.dropped if d.id == "kb:twin")
    assert record.candidates == 5
    assert sum(record.dropped_by.values()) + len(record.items) == record.candidates


def test_another_agents_memories_are_not_candidates() -> None:
    q = _unit(1, 0)
    pool = _pool(
        [
            ("memory:1", "agent", _unit(1, 0.01), 10, RICH),
            ("memory:2", "agent", _unit(1, 0.02), 10, RICH + " mine"),
            ("memory:3", "collective", _unit(1, 0.5), 10, RICH + " shared lesson"),
        ],
        agents=["critic", "writer", ""],
    )
    record = _choose(pool, q, duplicate_cosine=None, relevance_margin=None)
    assert {i.id for i in record.items} == {"memory:2", "memory:3"}
    assert record.candidates == 2
    assert {i.kind for i in record.items} == {"agent", "collective"}


def test_the_nearest_max_candidates_reach_the_optimiser_the_rest_are_listed() -> None:
    rng = np.random.default_rng(3)
    q = _unit(1, 0, 0, 0)
    rows = []
    for n in range(12):
        v = _unit(1, *(rng.normal(size=3) * 0.2))
        rows.append((f"kb:{n}", "chunk", v, 10, f"{RICH} {n}"))
    record = _choose(
        _pool(rows),
        q,
        max_candidates=5,
        min_relevance=0.0,
        relevance_margin=None,
        duplicate_cosine=None,
    )
    listed = [d for d in record.dropped if d.step == "candidates"]
    assert len(listed) == record.dropped_by["candidates"] == 7
    cos = {r[0]: float(r[2] @ q) for r in rows}
    kept = {i.id for i in record.items}
    assert min(cos[k] for k in kept) >= max(cos[d.id] for d in listed)


def test_counts_by_another_tokenizer_are_recounted() -> None:
    q = _unit(1, 0)
    pool = _pool([("kb:a", "chunk", _unit(1, 0), 500, RICH)])
    pool = Pool(**{**{f: getattr(pool, f) for f in pool.__slots__}, "tokenizers": ("other",)})
    record = _choose(pool, q, budget=20)
    assert record.items[0].tokens == 7 + 7  # the counter's (text and header), not the stored 500


def test_nothing_relevant_says_so() -> None:
    record = _choose(_pool([("kb:a", "chunk", _unit(0, 1), 5, RICH)]), _unit(1, 0))
    assert record.items == ()
    assert "context.min_relevance" in record.reason


@pytest.mark.parametrize("budget", [0, 60, 1000])
def test_without_the_optimiser_top_k_within_the_budget(budget: int) -> None:
    q = _unit(1, 0)
    rows = [(f"kb:{n}", "chunk", _unit(1, n / 10), 25, POOR) for n in range(8)]
    record = _choose(_pool(rows), q, budget=budget, optimize=False, naive_k=3)
    # 25 tokens of text and 7 of header each
    assert [i.id for i in record.items] == ["kb:0", "kb:1", "kb:2"][: budget // 32]
    assert record.tokens <= budget
    assert record.dropped_by.get("candidates") == 5


def test_the_margin_drops_what_is_far_behind_the_best_match() -> None:
    q = _unit(1, 0)
    rows = [
        ("kb:best", "chunk", _unit(1, 0.3), 10, RICH),  # cos 0.958
        ("kb:close", "chunk", _unit(1, 0.5), 10, RICH + " close"),  # cos 0.894
        ("kb:behind", "chunk", _unit(1, 0.8), 10, RICH + " behind"),  # cos 0.781
        ("kb:poor", "chunk", _unit(1, 0.8), 10, POOR),  # entropy first: not the best either
    ]
    record = _choose(_pool(rows), q, min_relevance=0.4, relevance_margin=0.1, duplicate_cosine=None)
    assert [i.id for i in record.items] == ["kb:best", "kb:close"]
    assert record.dropped_by == {"entropy": 1, "relevance": 1}
    # the floor still holds when the best match is itself weak
    weak = [("kb:a", "chunk", _unit(1, 3), 10, RICH), ("kb:b", "chunk", _unit(1, 3.2), 10, RICH)]
    record = _choose(_pool(weak), q, min_relevance=0.4, relevance_margin=0.1)
    assert record.items == () and "context.min_relevance" in record.reason


def test_the_optimiser_names_the_margin_in_its_reason() -> None:
    from automatos.retrieval.optimizer import Candidate, OptimizerSettings, optimize

    q = _unit(1, 0)
    items = [
        Candidate("a", RICH, 10, _unit(1, 0.3)),
        Candidate("b", RICH + " b", 10, _unit(1, 0.8)),
    ]
    selection = optimize(q, items, 100, OptimizerSettings(min_relevance=0.4, relevance_margin=0.1))
    [dropped] = selection.dropped
    assert dropped.id == "b" and dropped.step.value == "relevance"
    assert "more than 0.1 below the best match's 0.958" in dropped.reason


def test_a_short_sentence_that_answers_is_kept_boilerplate_is_not() -> None:
    q = _unit(1, 0)
    short = "Facilities > Bike shed\n\nThe bike shed is behind building C."
    rows = [
        ("kb:short", "chunk", _unit(1, 0.05), 12, short),  # 2.9 bits, but not repetitive
        ("kb:nav", "chunk", _unit(1, 0.1), 6, "Home | Home | Home | Home | Home | HR"),
        ("kb:tiny", "chunk", _unit(1, 0.15), 3, "Home | HR"),  # too few words to judge
    ]
    record = _choose(_pool(rows), q, relevance_margin=None, duplicate_cosine=None)
    assert [i.id for i in record.items] == ["kb:short"]
    assert record.dropped_by == {"entropy": 2}
    assert all("too short or too repetitive" in d.reason for d in record.dropped)
    strict = _choose(_pool(rows), q, min_evenness=None)
    assert strict.items == () and "say too little" in strict.reason


def test_chinese_and_japanese_count_each_character_as_a_word() -> None:
    from automatos.retrieval.optimizer import word_entropy

    assert word_entropy("有給休暇は年間二十日です。申請には上長の承認が必要です。") > 4.0
    assert word_entropy("abc漢字") == 1.584962500721156  # abc, 漢, 字
