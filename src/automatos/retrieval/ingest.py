"""Adding files to the knowledge base: read, chunk, embed, keep, one file at a time.

A file is kept under its resolved path with the sha256 of its bytes, the embedder of its
vectors and the tokenizer of its counts: adding it again with the same three costs a read and
a hash, nothing else. Other bytes, another embedder or another tokenizer re-chunk and re-embed
it, and its chunks are replaced in one transaction.

A file that cannot be read or embedded is reported with the reason and the others go on; a
store that fails stops the whole (what it kept before stays kept, and so does what was kept
before a Ctrl-C: every file is its own transaction).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from automatos.errors import (
    AutomatosError,
    ConfigurationError,
    InvalidRequestError,
    ProviderContractError,
)
from automatos.retrieval.base import ChunkRecord, KbDocument, KnowledgeStore, Vectors
from automatos.retrieval.chunking import Chunk, TokenCounter, chunk
from automatos.retrieval.documents import KINDS, Document, read_document
from automatos.retrieval.embedder import Embedder
from automatos.retrieval.optimizer import word_entropy
from automatos.settings import ContextSettings

__all__ = ["OUTCOMES", "FileOutcome", "IngestReport", "Outcome", "ProgressCallback", "ingest"]

Outcome = Literal["added", "replaced", "unchanged", "skipped", "failed"]
OUTCOMES: tuple[Outcome, ...] = ("added", "replaced", "unchanged", "skipped", "failed")

ProgressCallback = Callable[[int, int, int], None]
"""Called with (files done, files in all, chunks embedded so far)."""

_MAX_FILE_BYTES = "context.max_file_bytes"
_EMBED_BATCH = 256
"""Chunks embedded per call: a large file is embedded in steps that a Ctrl-C can stop."""
_SHORT_KINDS = {"markdown": "md", "text": "txt"}
"""The kinds a :class:`KbDocument` is kept as (``md``, ``txt``), by the reader's names."""
_MAX_WARNINGS = 3


@dataclass(frozen=True, slots=True)
class FileOutcome:
    """What became of one file.

    Attributes:
        path: the resolved path (POSIX form): its key in the knowledge base.
        outcome: ``added`` (new), ``replaced`` (its chunks were re-made), ``unchanged`` (the
            same bytes, embedder and tokenizer as kept), ``skipped`` (no text) or ``failed``.
        chunks: its chunks in the knowledge base (0 when skipped or failed).
        tokens: their tokens in all.
        reason: why it failed or was skipped; warnings of its reader (a damaged PDF) for a
            file kept anyway; else empty.
    """

    path: str
    outcome: Outcome
    chunks: int = 0
    tokens: int = 0
    reason: str = ""


@dataclass(frozen=True, slots=True)
class IngestReport:
    """What :func:`ingest` did, file by file, in the order the files were read."""

    files: tuple[FileOutcome, ...]
    seconds: float

    def count(self, outcome: Outcome) -> int:
        """Files of this outcome."""
        return sum(1 for file in self.files if file.outcome == outcome)

    @property
    def totals(self) -> dict[str, int]:
        """Files of each outcome, and the chunks and tokens embedded (of files added or
        replaced)."""
        made = [file for file in self.files if file.outcome in ("added", "replaced")]
        totals: dict[str, int] = {outcome: self.count(outcome) for outcome in OUTCOMES}
        totals["chunks"] = sum(file.chunks for file in made)
        totals["tokens"] = sum(file.tokens for file in made)
        return totals

    @property
    def failed(self) -> list[FileOutcome]:
        """The files that failed."""
        return [file for file in self.files if file.outcome == "failed"]


async def ingest(
    paths: Iterable[str | Path],
    store: KnowledgeStore,
    embedder: Embedder,
    *,
    tokenizer: str,
    count_tokens: TokenCounter,
    settings: ContextSettings,
    on_progress: ProgressCallback | None = None,
) -> IngestReport:
    """Add files, and the supported files under directories, to the knowledge base.

    Directories are walked in sorted order; hidden entries (``.git``) and symbolic links to
    directories are left out, and so are files of other kinds (:data:`KINDS`). A path named
    itself is always read: missing or of another kind, it fails with the reason. A file named
    twice (or also found under a directory) is read once.

    Args:
        paths: files and directories.
        store: the knowledge base.
        embedder: what makes the vectors; kept under its name.
        tokenizer: the name of ``count_tokens`` (the model's profile's), kept with the counts.
        count_tokens: the model's tokenizer, which sizes the chunks.
        settings: chunk sizes and the largest file read.
        on_progress: called once the files are known, then after each file.

    Raises:
        ConfigurationError: ``chunk_overlap_tokens`` is not below ``chunk_tokens``, or the
            embedder cannot be set up (its packages or model files are missing).
        StoreError: the store failed; the files kept before it stay kept.
    """
    if settings.chunk_overlap_tokens >= settings.chunk_tokens:
        raise ConfigurationError(
            f"context.chunk_overlap_tokens ({settings.chunk_overlap_tokens}) must be below "
            f"context.chunk_tokens ({settings.chunk_tokens})"
        )
    started = time.perf_counter()
    files, outcomes = await asyncio.to_thread(_collect, paths)
    chunks_done = 0
    if on_progress is not None:
        on_progress(0, len(files), 0)
    work = _FileWork(store, embedder, tokenizer, count_tokens, settings)
    for done, path in enumerate(files, start=1):
        outcome = await work.run(path)
        outcomes.append(outcome)
        if outcome.outcome in ("added", "replaced"):
            chunks_done += outcome.chunks
        if on_progress is not None:
            on_progress(done, len(files), chunks_done)
    return IngestReport(tuple(outcomes), time.perf_counter() - started)


def _collect(paths: Iterable[str | Path]) -> tuple[list[Path], list[FileOutcome]]:
    """The resolved files to read, each once, and a failure for each directory that could
    not be listed."""
    files: dict[Path, None] = {}
    failures: list[FileOutcome] = []
    for given in paths:
        path = Path(given).resolve()
        if path.is_dir():
            for found in _walk(path, failures):
                files.setdefault(found.resolve(), None)
        else:
            files.setdefault(path, None)  # reading it says what is wrong with it, if anything
    return list(files), failures


def _walk(directory: Path, failures: list[FileOutcome]) -> Iterator[Path]:
    """The supported regular files under ``directory``, in sorted order, depth first."""
    try:
        with os.scandir(directory) as listing:
            entries = sorted(listing, key=lambda entry: entry.name)
    except OSError as exc:
        reason = f"cannot list {directory}: {exc.strerror or exc}"
        failures.append(FileOutcome(directory.as_posix(), "failed", reason=reason))
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        try:
            if entry.is_dir(follow_symlinks=False):
                yield from _walk(Path(entry.path), failures)
            elif (
                entry.is_file()  # follows a link to a file; a FIFO or socket is left out
                and Path(entry.name).suffix.lower() in KINDS
            ):
                yield Path(entry.path)
        except OSError:
            continue  # gone, or a link that cannot be followed: nothing to read


@dataclass(frozen=True, slots=True)
class _FileWork:
    """Reading, chunking, embedding and keeping one file."""

    store: KnowledgeStore
    embedder: Embedder
    tokenizer: str
    count_tokens: TokenCounter
    settings: ContextSettings

    async def run(self, path: Path) -> FileOutcome:
        key = path.as_posix()
        try:
            document, warnings = await asyncio.to_thread(_read, path, self.settings.max_file_bytes)
        except InvalidRequestError as exc:
            return FileOutcome(key, "failed", reason=str(exc))
        kept = await self.store.kb_document(key)
        if (
            kept is not None
            and kept.sha256 == document.sha256
            and kept.embedder == self.embedder.name
            and kept.tokenizer == self.tokenizer
        ):
            return FileOutcome(key, "unchanged", kept.chunks, kept.tokens, warnings)
        chunks = await asyncio.to_thread(
            chunk,
            document,
            self.settings.chunk_tokens,
            self.settings.chunk_overlap_tokens,
            self.count_tokens,
        )
        if not chunks:
            reason = "no text"
            if kept is not None:  # its old chunks would be searched as if it still said them
                await self.store.kb_remove([key])
                reason = "no text (what it held before was removed)"
            return FileOutcome(key, "skipped", reason=_joined(reason, warnings))
        try:
            vectors = await self._embed([c.text for c in chunks])
        except ConfigurationError:
            raise  # the embedder cannot work at all: every other file would fail the same
        except AutomatosError as exc:
            return FileOutcome(key, "failed", reason=f"{type(exc).__name__}: {exc}")
        records = [_record(key, c) for c in chunks]
        tokens = sum(c.tokens for c in chunks)
        await self.store.kb_put(
            KbDocument(
                path=key,
                kind=_SHORT_KINDS.get(document.kind, document.kind),
                sha256=document.sha256,
                chunks=len(records),
                tokens=tokens,
                embedder=self.embedder.name,
                tokenizer=self.tokenizer,
            ),
            records,
            vectors,
        )
        outcome: Outcome = "added" if kept is None else "replaced"
        return FileOutcome(key, outcome, len(records), tokens, warnings)

    async def _embed(self, texts: list[str]) -> Vectors:
        parts: list[Vectors] = []
        for start in range(0, len(texts), _EMBED_BATCH):
            batch = texts[start : start + _EMBED_BATCH]
            vectors = await self.embedder.embed(batch)
            if vectors.shape != (len(batch), self.embedder.dimension):
                raise ProviderContractError(
                    f"the embedder {self.embedder.name} returned an array of shape "
                    f"{vectors.shape} for {len(batch)} texts of dimension "
                    f"{self.embedder.dimension}"
                )
            parts.append(vectors)
        matrix: Vectors = np.concatenate(parts).astype(np.float32, copy=False)
        return matrix


def _record(path: str, piece: Chunk) -> ChunkRecord:
    return ChunkRecord(
        id=piece.id,
        path=path,
        ordinal=piece.ordinal,
        heading=" > ".join(piece.heading_path),
        text=piece.text,
        tokens=piece.tokens,
        entropy=word_entropy(piece.text),
        page=piece.page,
    )


def _read(path: Path, max_bytes: int) -> tuple[Document, str]:
    """The document, and the warnings its PDF reader logged (joined; empty if none)."""
    with _pdf_warnings() as caught:
        document = read_document(path, max_bytes, setting=_MAX_FILE_BYTES)
    distinct = list(dict.fromkeys(caught))
    shown = "; ".join(distinct[:_MAX_WARNINGS])
    if len(distinct) > _MAX_WARNINGS:
        shown += f"; and {len(distinct) - _MAX_WARNINGS} more"
    return document, f"pypdf: {shown}" if shown else ""


def _joined(reason: str, warnings: str) -> str:
    return f"{reason}; {warnings}" if warnings else reason


class _Collect(logging.Handler):
    def __init__(self, into: list[str]) -> None:
        super().__init__(logging.WARNING)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):  # a record whose message cannot be formatted
            self.into.append(record.getMessage().strip())


@contextlib.contextmanager
def _pdf_warnings() -> Iterator[list[str]]:
    """Keep pypdf's warnings (a damaged cross-reference table, a missing font) off the
    terminal, where they would break the progress bar, and hand them to the caller. Files are
    read one at a time, so the logger is only ever borrowed by one read."""
    logger = logging.getLogger("pypdf")
    caught: list[str] = []
    handler = _Collect(caught)
    propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield caught
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate
