"""The embeddings endpoint through the real OpenAI SDK and real HTTP, against a local server
that answers from a script (what is mocked is only the remote model)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from automatos.errors import ProviderContractError, RateLimitedError
from automatos.retrieval.remote_embedder import OpenAIEmbedder
from tests.support.fake_servers import FakeLLMServer, Reply, error


def vectors(path: str, body: dict[str, Any]) -> Reply:
    assert path == "/v1/embeddings"
    inputs = body["input"]
    data = [
        {"object": "embedding", "index": i, "embedding": [float(len(t)), 3.0, 4.0]}
        for i, t in reversed(list(enumerate(inputs)))  # out of order: the index decides
    ]
    return Reply(body={"object": "list", "data": data, "model": body["model"], "usage": {}})


async def test_vectors_come_back_in_order_normalised_and_in_batches() -> None:
    with FakeLLMServer(vectors) as server:
        embedder = OpenAIEmbedder(
            model="embed-test", dimension=3, base_url=server.base_url, batch_size=2
        )
        got = await embedder.embed(["", "a", "abc"])
        await embedder.aclose()
    assert got.shape == (3, 3) and got.dtype == np.float32
    assert np.allclose(got[0], [0.0, 0.6, 0.8])
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0)
    assert [len(body["input"]) for _, body in server.requests] == [2, 1]


async def test_a_wrong_dimension_and_a_refusal_are_typed() -> None:
    with FakeLLMServer(vectors) as server:
        wrong = OpenAIEmbedder(model="embed-test", dimension=384, base_url=server.base_url)
        with pytest.raises(ProviderContractError, match=r"shape \(1, 3\).*dimension 384"):
            await wrong.embed(["x"])
        await wrong.aclose()
        server.queue.append(error(429, "slow down", headers={"retry-after": "2"}))
        limited = OpenAIEmbedder(model="embed-test", dimension=3, base_url=server.base_url)
        with pytest.raises(RateLimitedError):
            await limited.embed(["x"])
        await limited.aclose()
