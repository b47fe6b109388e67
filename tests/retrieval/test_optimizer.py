"""The context optimiser on constructed inputs: each step, the knapsack against brute force."""

from __future__ import annotations

import itertools
import math
import random

import numpy as np
import pytest

from automatos.retrieval.optimizer import (
    Candidate,
    OptimizerSettings,
    Step,
    optimize,
    pack,
    word_entropy,
)

RICH = " ".join(f"word{i}" for i in range(40))  # 40 distinct words: log2(40) ≈ 5.32 bits
OPEN = OptimizerSettings(min_entropy=0.0, min_relevance=-1.0, duplicate_cosine=None)


def vec(*xs: float) -> np.ndarray:
    return np.array(xs, dtype=np.float32)


def item(id_: str, embedding: np.ndarray, tokens: int = 10, text: str = RICH) -> Candidate:
    return Candidate(id_, text, tokens, embedding)


def test_word_entropy_by_hand() -> None:
    assert word_entropy("") == 0.0
    assert word_entropy("same same same") == 0.0
    assert word_entropy("a b") == 1.0
    assert word_entropy("A a, B b!") == 1.0  # case-folded, punctuation is not a word
    # p = (3/4, 1/4): −(0.75·log2 0.75 + 0.25·log2 0.25) = 0.811278…
    assert word_entropy("x x x y") == pytest.approx(0.8112781244591328, abs=1e-12)
    # p = (1/2, 1/4, 1/4): 0.5 + 0.5 + 0.5 = 1.5 bits
    assert word_entropy("a a b c") == 1.5
    assert word_entropy(" ".join(f"w{i}" for i in range(16))) == 4.0


def test_entropy_equal_to_the_threshold_is_dropped() -> None:
    sixteen = " ".join(f"w{i}" for i in range(16))  # exactly 4.0 bits
    seventeen = " ".join(f"w{i}" for i in range(17))  # log2 17 ≈ 4.09 bits
    q = vec(1, 0)
    got = optimize(
        q,
        [item("at", vec(1, 0), text=sixteen), item("above", vec(1, 0.01), text=seventeen)],
        100,
        OptimizerSettings(min_relevance=0.0, duplicate_cosine=None),
    )
    assert [p.candidate.id for p in got.chosen] == ["above"]
    (drop,) = got.dropped
    assert (drop.id, drop.step, drop.reason) == ("at", Step.ENTROPY, "entropy 4.00 bits ≤ 4.0")


def test_cosine_equal_to_the_threshold_is_dropped() -> None:
    q = vec(1, 0, 0, 0)
    half = vec(1, 1, 1, 1)  # cosine exactly 0.5 with q
    more = vec(1, 1, 1, 0.99)  # a little more than 0.5
    got = optimize(
        q,
        [item("at", half), item("above", more)],
        100,
        OptimizerSettings(min_relevance=0.5, duplicate_cosine=None),
    )
    assert [p.candidate.id for p in got.chosen] == ["above"]
    assert [(d.id, d.step, d.reason) for d in got.dropped] == [
        ("at", Step.RELEVANCE, "cosine 0.500 ≤ 0.5")
    ]


def test_mmr_orders_relevance_against_redundancy_in_two_dimensions() -> None:
    # a is nearest the query; b is almost a; c is further from q but points elsewhere.
    q = vec(1, 0)
    a = vec(math.cos(0.1), math.sin(0.1))
    b = vec(math.cos(0.15), math.sin(0.15))
    c = vec(math.cos(0.6), -math.sin(0.6))
    cands = [item("b", b), item("c", c), item("a", a)]
    got = optimize(q, cands, 1_000, OPEN)
    # λ = 0.7, after a: b scores 0.7·cos .15 − 0.3·cos .05 = 0.392,
    # c scores 0.7·cos .6 − 0.3·cos .7 = 0.348 → b next.
    # λ = 0.5: b 0.5·0.989 − 0.5·0.999 < 0, c 0.5·0.825 − 0.5·0.765 > 0 → c next.
    assert [p.candidate.id for p in got.chosen] == ["a", "b", "c"]
    diverse = optimize(
        q, cands, 1_000, OptimizerSettings(0.0, -1.0, mmr_lambda=0.5, duplicate_cosine=None)
    )
    assert [p.candidate.id for p in diverse.chosen] == ["a", "c", "b"]


def test_near_duplicates_are_dropped_with_the_item_they_repeat() -> None:
    q = vec(1, 0)
    got = optimize(
        q,
        [item("copy", vec(1, 0.001)), item("orig", vec(1, 0)), item("other", vec(1, 0.5))],
        1_000,
        OptimizerSettings(min_entropy=0.0, min_relevance=0.0, duplicate_cosine=0.99),
    )
    assert [p.candidate.id for p in got.chosen] == ["orig", "other"]
    (drop,) = got.dropped
    assert drop.step is Step.MMR and drop.reason.startswith("near-duplicate of orig: cosine 1.000")


def brute_force(values: list[float], tokens: list[int], budget: int) -> float:
    best = 0.0
    for mask in itertools.product([0, 1], repeat=len(values)):
        if sum(t for t, m in zip(tokens, mask, strict=True) if m) <= budget:
            best = max(best, sum(v for v, m in zip(values, mask, strict=True) if m))
    return best


@pytest.mark.parametrize("seed", range(300))
def test_knapsack_matches_brute_force_and_the_approximation_keeps_its_bound(seed: int) -> None:
    rng = random.Random(seed)
    n = rng.randint(0, 10)
    values = [rng.choice([rng.uniform(-0.2, 1.0), rng.uniform(0, 1)]) for _ in range(n)]
    tokens = [rng.choice([0, rng.randint(1, 60)]) for _ in range(n)]
    budget = rng.randint(0, 120)
    optimum = brute_force(values, tokens, budget)
    for cells in (10**9, 0):  # the exact programme, then the approximation forced
        got = pack(values, tokens, budget, max_exact_cells=cells)
        assert sum(tokens[i] for i in got.chosen) <= budget
        assert got.value == pytest.approx(sum(values[i] for i in got.chosen))
        assert got.upper_bound >= optimum - 1e-9
        if got.exact:
            assert got.value == pytest.approx(optimum, abs=1e-9)
        else:
            assert got.value >= got.upper_bound / 2 - 1e-9
            assert got.value >= optimum / 2 - 1e-9


def test_the_approximation_is_used_above_the_cell_limit_and_can_be_suboptimal() -> None:
    # Greedy by density takes the small dense item and cannot fit the big one.
    got = pack([1.0, 10.0 - 1e-6, 0.0], [1, 10, 5], 10, max_exact_cells=0)
    assert not got.exact and got.chosen == (1,)  # the best single item wins
    exact = pack([1.0, 10.0 - 1e-6], [1, 10], 10)
    assert exact.exact and exact.chosen == (1,)


def random_candidates(rng: np.random.Generator, n: int, dim: int) -> list[Candidate]:
    words = [f"w{i}" for i in range(60)]
    out = []
    for i in range(n):
        text = " ".join(rng.choice(words, size=int(rng.integers(1, 80))))
        out.append(Candidate(f"c{i}", text, int(rng.integers(0, 50)), rng.normal(size=dim)))
    return out


@pytest.mark.parametrize("seed", range(40))
def test_every_candidate_is_chosen_or_dropped_exactly_once_within_the_budget(seed: int) -> None:
    rng = np.random.default_rng(seed)
    dim = int(rng.integers(2, 6))
    cands = random_candidates(rng, int(rng.integers(0, 40)), dim)
    settings = OptimizerSettings(
        min_entropy=float(rng.uniform(0, 5)),
        min_relevance=float(rng.uniform(-1, 0.5)),
        duplicate_cosine=float(rng.uniform(0.8, 1.0)),
    )
    budget = int(rng.integers(0, 200))
    got = optimize(rng.normal(size=dim).astype(np.float32), cands, budget, settings)
    chosen = [p.candidate.id for p in got.chosen]
    dropped = [d.id for d in got.dropped]
    assert sorted(chosen + dropped) == sorted(c.id for c in cands)
    assert len(set(chosen + dropped)) == len(cands)
    assert got.tokens == sum(p.candidate.tokens for p in got.chosen) <= budget
    order = {c.id: i for i, c in enumerate(cands)}
    assert dropped == sorted(dropped, key=order.__getitem__)  # records in input order


def test_the_knapsack_step_says_why_it_left_an_item_out() -> None:
    q = vec(1, 0)
    got = optimize(
        q,
        [item("big", vec(1, 0), tokens=500), item("fits", vec(1, 0.3), tokens=80)],
        100,
        OptimizerSettings(min_relevance=0.0, duplicate_cosine=None),
    )
    assert [p.candidate.id for p in got.chosen] == ["fits"]
    assert got.dropped[0].step is Step.KNAPSACK
    assert got.dropped[0].reason == "500 tokens > budget 100"


def test_value_is_cosine_times_entropy_per_token_scaled_to_the_densest() -> None:
    q = vec(1, 0)
    got = optimize(q, [item("a", vec(1, 0), tokens=10), item("b", vec(1, 1), tokens=20)], 100, OPEN)
    by_id = {p.candidate.id: p for p in got.chosen}
    assert by_id["a"].value == pytest.approx(1.0)  # densest, cosine 1
    assert by_id["b"].value == pytest.approx(math.sqrt(0.5) * 0.5)


def test_empty_input_zero_budget_and_zero_vectors() -> None:
    empty = optimize(vec(1, 0), [], 100)
    assert empty.chosen == () and empty.dropped == () and empty.tokens == 0
    none = optimize(vec(1, 0), [item("a", vec(1, 0))], 0, OPEN)
    assert none.chosen == () and none.dropped[0].reason == "10 tokens > budget 0"
    zero = optimize(vec(1, 0), [item("z", vec(0, 0))], 100, OptimizerSettings(min_entropy=0))
    assert zero.dropped[0].reason == "cosine 0.000 ≤ 0.7"
    nowhere = optimize(vec(0, 0), [item("a", vec(1, 0))], 100, OptimizerSettings(min_entropy=0))
    assert nowhere.dropped[0].step is Step.RELEVANCE


def test_huge_but_finite_vectors_are_scaled_not_refused() -> None:
    got = optimize(vec(1, 0), [item("big", vec(3e38, 1e38))], 100, OPEN)
    assert got.chosen[0].relevance == pytest.approx(3 / math.sqrt(10), rel=1e-5)


@pytest.mark.parametrize(
    ("query", "cands", "message"),
    [
        (vec(1, 0), [item("bad", vec(np.nan, 1))], "'bad' has NaN or infinite"),
        (vec(1, 0), [item("bad", vec(np.inf, 1))], "'bad' has NaN or infinite"),
        (vec(np.nan, 0), [item("a", vec(1, 0))], "query vector has NaN"),
        (vec(1, 0), [item("a", vec(1, 0)), item("a", vec(0, 1))], "id 'a' appears more"),
        (vec(1, 0), [item("flat", vec(1, 0, 0))], "'flat' has an embedding of shape"),
        (vec(1, 0), [item("neg", vec(1, 0), tokens=-1)], "'neg' has a negative token count"),
    ],
)
def test_bad_input_is_refused_naming_the_item(
    query: np.ndarray, cands: list[Candidate], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        optimize(query, cands, 100)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_entropy": -1.0},
        {"min_entropy": math.inf},
        {"min_relevance": 1.0},
        {"min_relevance": -1.5},
        {"mmr_lambda": 1.1},
        {"duplicate_cosine": 0.0},
    ],
)
def test_settings_are_validated(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        OptimizerSettings(**kwargs)


def test_negative_budget_is_refused() -> None:
    with pytest.raises(ValueError, match="budget"):
        optimize(vec(1, 0), [], -1)
