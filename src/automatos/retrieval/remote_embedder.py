"""Embeddings from an OpenAI-compatible ``/embeddings`` endpoint (OpenAI, Ollama, vLLM,
llama.cpp's server), through the official SDK, with the errors of the LLM providers."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import openai

from automatos.errors import LLMTimeoutError, ProviderContractError, ProviderUnavailableError
from automatos.llm.http_errors import error_for_status
from automatos.retrieval.embedder import Vectors

__all__ = ["OpenAIEmbedder"]


class OpenAIEmbedder:
    """An :class:`~automatos.retrieval.embedder.Embedder` over an embeddings endpoint.

    ``dimension`` is the model's (``text-embedding-3-small``: 1536); an answer of another
    length, or with a vector that is not finite, is refused as the server's contract broken.
    With ``shorten``, the endpoint is asked for vectors of ``dimension`` (its ``dimensions``
    parameter, which OpenAI's third-generation models take), and the name says so
    (``text-embedding-3-small@512``): vectors of two lengths are never kept under one name.
    """

    def __init__(
        self,
        *,
        model: str,
        dimension: int,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout_s: float = 60.0,
        batch_size: int = 256,
        shorten: bool = False,
    ) -> None:
        self.model = model
        self.name = f"{model}@{dimension}" if shorten else model
        self.dimension = dimension
        self._shorten = shorten
        self._batch_size = batch_size
        self._client = openai.AsyncOpenAI(
            base_url=base_url, api_key=api_key or "unused", max_retries=0, timeout=timeout_s
        )

    async def embed(self, texts: Sequence[str]) -> Vectors:
        """Unit vectors of ``texts``, asked in batches of ``batch_size``.

        Raises:
            LLMError: the server could not be reached, timed out, refused the call
                (by status), or answered with vectors of the wrong number or shape.
        """
        rows: list[Vectors] = []
        for start in range(0, len(texts), self._batch_size):
            rows.append(await self._batch(list(texts[start : start + self._batch_size])))
        if not rows:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.concatenate(rows)

    async def _batch(self, texts: list[str]) -> Vectors:
        try:
            if self._shorten:
                response = await self._client.embeddings.create(
                    model=self.model, input=texts, dimensions=self.dimension
                )
            else:
                response = await self._client.embeddings.create(model=self.model, input=texts)
        except openai.APITimeoutError as exc:
            raise LLMTimeoutError(f"the embeddings endpoint timed out: {exc}") from exc
        except openai.APIConnectionError as exc:
            raise ProviderUnavailableError(f"cannot reach the embeddings endpoint: {exc}") from exc
        except openai.APIStatusError as exc:
            raise error_for_status(
                exc.status_code, exc.message, dict(exc.response.headers)
            ) from exc
        data = sorted(response.data, key=lambda d: d.index)
        if len(data) != len(texts):
            raise ProviderContractError(
                f"the embeddings endpoint returned {len(data)} vectors for {len(texts)} texts"
            )
        vectors = np.asarray([d.embedding for d in data], dtype=np.float32)
        if vectors.shape != (len(texts), self.dimension):
            raise ProviderContractError(
                f"the embeddings endpoint returned vectors of shape {vectors.shape}; "
                f"{self.name} was configured with dimension {self.dimension}"
            )
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        if not all(math.isfinite(n) and n > 0 for n in norms.ravel()):
            raise ProviderContractError(
                "the embeddings endpoint returned a zero or non-finite vector"
            )
        unit: Vectors = (vectors / norms).astype(np.float32, copy=False)
        return unit

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self._client.close()
