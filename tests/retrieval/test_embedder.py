"""The embedded embedder for real (all-MiniLM-L6-v2 on the CPU, from its PyPI package), and
the content-hash cache in front of any embedder."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import pytest

from automatos.errors import ConfigurationError
from automatos.retrieval.embedder import CachedEmbedder, Embedder, LocalEmbedder, Vectors


@pytest.fixture(scope="module")
def minilm() -> Iterator[LocalEmbedder]:
    embedder = LocalEmbedder()
    yield embedder
    embedder.close()


async def test_the_embedded_model_gives_unit_vectors_that_rank_by_meaning(
    minilm: LocalEmbedder,
) -> None:
    assert isinstance(minilm, Embedder)
    texts = [
        "PostgreSQL is a relational database server.",
        "Postgres stores tables of rows and runs SQL queries.",
        "The recipe needs two eggs and a cup of flour.",
    ]
    vectors = await minilm.embed(texts)
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    similar, unrelated = vectors[0] @ vectors[1], vectors[0] @ vectors[2]
    assert similar > 0.6 > 0.2 > unrelated
    again = await minilm.embed(texts[:1])
    assert np.allclose(again[0], vectors[0], atol=1e-5)  # deterministic
    assert (await minilm.embed([])).shape == (0, 384)


async def test_a_model_directory_that_does_not_load_is_named(tmp_path: object) -> None:
    broken = LocalEmbedder(model_dir=tmp_path)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="does not load"):
        await broken.embed(["x"])
    broken.close()


class Counting:
    """A stand-in embedder that counts what it is asked."""

    name = "counting"
    dimension = 3

    def __init__(self) -> None:
        self.asked: list[list[str]] = []

    async def embed(self, texts: Sequence[str]) -> Vectors:
        self.asked.append(list(texts))
        rows = [[float(len(t)), 1.0, 0.0] for t in texts]
        array = np.asarray(rows, dtype=np.float32).reshape(len(texts), 3)
        return array / np.linalg.norm(array, axis=1, keepdims=True)


async def test_the_cache_embeds_each_text_once_and_keeps_the_order() -> None:
    inner = Counting()
    cached = CachedEmbedder(inner, capacity=3)
    first = await cached.embed(["a", "bb", "a"])
    assert inner.asked == [["a", "bb"]]
    assert np.allclose(first[0], first[2]) and not np.allclose(first[0], first[1])
    second = await cached.embed(["bb", "ccc"])
    assert inner.asked[-1] == ["ccc"] and cached.hits == 2
    assert np.allclose(second[0], first[1])
    await cached.embed(["dddd"])  # over capacity: the least recently used ("a") goes
    await cached.embed(["a"])
    assert inner.asked[-1] == ["a"]


async def test_an_embedder_that_returns_the_wrong_shape_is_named() -> None:
    class Short(Counting):
        async def embed(self, texts: Sequence[str]) -> Vectors:
            return np.zeros((1, 3), dtype=np.float32)

    with pytest.raises(ConfigurationError, match=r"returned an array of shape \(1, 3\) for 2"):
        await CachedEmbedder(Short()).embed(["a", "b"])
