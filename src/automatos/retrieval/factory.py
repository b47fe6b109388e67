"""Building the configured embedder, and naming the tokenizer that counts chunks' tokens.

Both read :class:`~automatos.settings.Settings` only: the CLI's ``kb`` and ``memory``
commands, stage 3 and stage 8 build the same embedder from the same settings, so that what one
stored the other can search (vectors are kept under the embedder's name).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from automatos.errors import ConfigurationError
from automatos.llm.base import estimate_tokens

if TYPE_CHECKING:
    from automatos.retrieval.embedder import Embedder
    from automatos.settings import Settings

__all__ = ["KNOWN_DIMENSIONS", "build_embedder", "close_embedder", "tokenizer_of"]

KNOWN_DIMENSIONS: dict[str, int] = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}
"""The vector length of OpenAI's embedding models, for ``embeddings.dimension`` left unset."""


def build_embedder(settings: Settings) -> Embedder:
    """The embedder ``settings.embeddings`` names, behind a cache of ``cache_size`` vectors.

    ``local`` is all-MiniLM-L6-v2 on the CPU (loaded on first use, not here); ``openai`` an
    OpenAI-compatible endpoint, at ``embeddings.base_url`` (else ``llm.base_url``) with
    ``embeddings.api_key`` (else ``llm.api_key``).

    Raises:
        ConfigurationError: ``openai`` with a model whose dimension is not known and
            ``embeddings.dimension`` unset.
    """
    from automatos.retrieval.embedder import CachedEmbedder, LocalEmbedder

    config = settings.embeddings
    embedder: Embedder
    if config.provider == "local":
        embedder = LocalEmbedder(batch_size=config.batch_size)
    else:
        # imported here: the OpenAI SDK is large, and the local embedder does not need it
        from automatos.retrieval.remote_embedder import OpenAIEmbedder

        dimension = config.dimension or KNOWN_DIMENSIONS.get(config.model)
        if dimension is None:
            known = ", ".join(f"{model} {size}" for model, size in KNOWN_DIMENSIONS.items())
            raise ConfigurationError(
                f"the dimension of the embedding model {config.model!r} is not known: set "
                f"embeddings.dimension (AUTOMATOS_EMBEDDINGS__DIMENSION) to the length of its "
                f"vectors (known: {known})"
            )
        key = config.api_key or settings.llm.api_key
        embedder = OpenAIEmbedder(
            model=config.model,
            dimension=dimension,
            base_url=config.base_url or settings.llm.base_url,
            api_key=key.get_secret_value() if key else None,
            timeout_s=settings.llm.timeout_s,
            batch_size=config.batch_size,
            shorten=config.model in KNOWN_DIMENSIONS
            and dimension != KNOWN_DIMENSIONS[config.model],
        )
    if config.cache_size > 0:
        return CachedEmbedder(embedder, capacity=config.cache_size)
    return embedder


async def close_embedder(embedder: Embedder) -> None:
    """Release what ``embedder`` holds (the local model's worker thread, an endpoint's
    connections), through a cache in front of it; an embedder with nothing to close is left."""
    from automatos.retrieval.embedder import CachedEmbedder

    inner: object = embedder.inner if isinstance(embedder, CachedEmbedder) else embedder
    aclose = getattr(inner, "aclose", None)
    if callable(aclose):
        await aclose()
        return
    close = getattr(inner, "close", None)
    if callable(close):
        close()


def tokenizer_of(settings: Settings) -> tuple[str, Callable[[str], int]]:
    """The name and the counter of the configured model's tokenizer (its profile's).

    The knowledge base keeps token counts under this name, so that a change of model
    re-counts them. Building the provider does not load the model (the embedded one reads
    its vocabulary alone, on the first count); where no model can be built the count is
    :func:`~automatos.llm.base.estimate_tokens`, named ``estimate``.
    """
    from automatos.llm.factory import build_provider
    from automatos.llm.profile import profile_of

    try:
        provider = build_provider(settings.llm)
        profile = profile_of(provider, settings.llm.profile)
    except ConfigurationError:
        return "estimate", estimate_tokens
    return profile.tokenizer, profile.count_tokens
