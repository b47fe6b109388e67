"""The exact vector index against a brute-force sort, on random and constructed data."""

from __future__ import annotations

import numpy as np
import pytest

from automatos.retrieval.base import Hit, VectorIndex
from automatos.retrieval.index import ExactIndex


def unit_rows(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    m = rng.standard_normal((n, d)).astype(np.float32)
    m /= np.linalg.norm(m, axis=1, keepdims=True)
    return m


def brute_force(matrix: np.ndarray, query: np.ndarray, k: int, min_score: float) -> list[Hit]:
    scores = matrix @ query
    ranked = sorted(range(len(matrix)), key=lambda row: (-scores[row], row))
    return [Hit(row, float(scores[row])) for row in ranked if scores[row] > min_score][:k]


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("k", [1, 7, 50, 300, 1000])
def test_search_is_a_brute_force_sort(seed: int, k: int) -> None:
    rng = np.random.default_rng(seed)
    matrix = unit_rows(rng, 300, 24)
    query = unit_rows(rng, 1, 24)[0]
    index: VectorIndex = ExactIndex(matrix)  # the seam, checked by mypy
    assert len(index) == 300
    for min_score in (-1.0, 0.0, 0.3):
        assert index.search(query, k, min_score) == brute_force(matrix, query, k, min_score)
    np.testing.assert_array_equal(index.scores(query), matrix @ query)
    assert index.scores(query).dtype == np.float32


def test_ties_go_to_the_lower_row_also_at_the_kth_place() -> None:
    # rows 1, 3, 4, 6 tie at 1.0; rows 0, 5 tie at 0.6; rows 2, 7 are orthogonal
    a, b = np.array([1, 0], np.float32), np.array([0, 1], np.float32)
    c = np.array([0.6, 0.8], np.float32)
    matrix = np.stack([c, a, b, a, a, c, a, b])
    index = ExactIndex(matrix)
    assert [h.row for h in index.search(a, 3)] == [1, 3, 4]
    assert [h.row for h in index.search(a, 5)] == [1, 3, 4, 6, 0]
    assert [h.row for h in index.search(a, 8)] == [1, 3, 4, 6, 0, 5, 2, 7]
    # many more ties than k, many times over: always the same, lowest rows
    many = np.tile(a, (1000, 1))
    assert [h.row for h in ExactIndex(many).search(a, 10)] == list(range(10))


def test_min_score_is_a_strict_bound() -> None:
    a, b = np.array([1, 0], np.float32), np.array([0, 1], np.float32)
    index = ExactIndex(np.stack([a, b, -a]))
    assert [h.row for h in index.search(a, 10, min_score=0.0)] == [0]  # b's 0.0 is not above
    assert [h.row for h in index.search(a, 10, min_score=-0.5)] == [0, 1]
    assert index.search(a, 10, min_score=1.0) == []
    assert [(h.row, h.score) for h in index.search(a, 10)] == [(0, 1.0), (1, 0.0)]


def test_k_at_most_zero_finds_nothing() -> None:
    index = ExactIndex(np.eye(3, dtype=np.float32))
    assert index.search(np.eye(3, dtype=np.float32)[0], 0) == []
    assert index.search(np.eye(3, dtype=np.float32)[0], -2) == []


def test_a_query_may_be_one_row() -> None:
    matrix = np.eye(3, dtype=np.float32)
    index = ExactIndex(matrix)
    assert index.search(matrix[1:2], 1) == [Hit(1, 1.0)]
    assert index.search(matrix[1].astype(np.float64), 1) == [Hit(1, 1.0)]


@pytest.mark.parametrize("shape", [(0, 0), (0, 5)])
def test_an_empty_index_finds_nothing(shape: tuple[int, int]) -> None:
    index = ExactIndex(np.zeros(shape, dtype=np.float32))
    assert len(index) == 0
    query = np.ones(5, dtype=np.float32) / np.sqrt(5)
    assert index.search(query, 10) == []
    assert index.scores(query).shape == (0,)


def test_a_query_of_another_dimension_is_refused() -> None:
    index = ExactIndex(np.eye(4, dtype=np.float32))
    with pytest.raises(
        ValueError, match="the query has 3 dimensions but the index's vectors have 4"
    ):
        index.search(np.ones(3, dtype=np.float32), 1)
    with pytest.raises(ValueError, match="one vector"):
        index.scores(np.ones((2, 4), dtype=np.float32))
    with pytest.raises(ValueError, match="NaN or infinite"):
        index.search(np.array([np.nan, 0, 0, 0], dtype=np.float32), 1)


def test_a_bad_matrix_is_refused() -> None:
    with pytest.raises(ValueError, match="2-D"):
        ExactIndex(np.ones(4, dtype=np.float32))
    with pytest.raises(ValueError, match="float32"):
        ExactIndex(np.eye(4))  # type: ignore[arg-type]
    bad = np.eye(4, dtype=np.float32)
    bad[2, 1] = np.inf
    with pytest.raises(ValueError, match="NaN or infinite"):
        ExactIndex(bad)
