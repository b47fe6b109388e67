"""Adding files to the knowledge base: read, chunk, embed, keep, one file at a time.

A file is kept under its resolved path with the sha256 of its bytes, the embedder of its
vectors and the tokenizer of its counts: adding it again with the same three costs a read and
a hash, nothing else. Other bytes, another embedder or another tokenizer re-chunk and re-embed
it, and its chunks are replaced in one transaction.

A file that cannot be read or embedded is reported with the reason and the others go on. An
embedder that fails as a whole (unreachable, refusing the key, not set up: see
:func:`about_the_embedder`) stops the adding at once, as every other file would fail the same
way, and so does a store that fails; what was kept before stays kept, and so does what was
kept before a Ctrl-C: every file is its own transaction.

A directory is walked for the kinds read; the files of other kinds are counted by extension,
and a directory named that yields no file to read fails, saying what it holds. Documents kept
under the paths named whose files are gone from disk are reported, and removed if asked
(``prune``): without that, a deleted file would be searched forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from automatos.errors import (
    AutomatosError,
    ConfigurationError,
    InvalidRequestError,
    LLMTimeoutError,
    ProviderContractError,
    ProviderRequestError,
    ProviderUnavailableError,
    RateLimitedError,
)
from automatos.retrieval.base import ChunkRecord, KbDocument, KnowledgeStore, Vectors
from automatos.retrieval.chunking import Chunk, TokenCounter, chunk
from automatos.retrieval.documents import KINDS, Document, kinds_read, read_document
from automatos.retrieval.embedder import Embedder
from automatos.retrieval.optimizer import word_entropy
from automatos.settings import ContextSettings

__all__ = [
    "OUTCOMES",
    "FileCallback",
    "FileOutcome",
    "IngestReport",
    "Outcome",
    "ProgressCallback",
    "about_the_embedder",
    "ingest",
    "left_out_text",
]

Outcome = Literal["added", "replaced", "unchanged", "skipped", "failed", "removed"]
OUTCOMES: tuple[Outcome, ...] = ("added", "replaced", "unchanged", "skipped", "failed", "removed")

ProgressCallback = Callable[[int, int, int], None]
"""Called with (files done, files in all, chunks embedded so far)."""
FileCallback = Callable[["FileOutcome"], None]
"""Called with each file's outcome as soon as it is known (and kept, if it was)."""

_MAX_FILE_BYTES = "context.max_file_bytes"
_EMBED_BATCH = 256
"""Chunks embedded per call: a large file is embedded in steps that a Ctrl-C can stop."""
_SHORT_KINDS = {"markdown": "md", "text": "txt"}
"""The kinds a :class:`KbDocument` is kept as (``md``, ``txt``), by the reader's names."""
_MAX_WARNINGS = 3
_WHOLE_EMBEDDER_STATUSES = ("HTTP 401:", "HTTP 403:", "HTTP 404:")
"""Refusals of an endpoint that are about the key, its rights or the model, never about the
text sent (as :func:`automatos.llm.http_errors.error_for_status` words them)."""
_NO_EXTENSION = ""


@dataclass(frozen=True, slots=True)
class FileOutcome:
    """What became of one file.

    Attributes:
        path: the resolved path (POSIX form): its key in the knowledge base.
        outcome: ``added`` (new), ``replaced`` (its chunks were re-made), ``unchanged`` (the
            same bytes, embedder and tokenizer as kept), ``skipped`` (no text), ``failed``, or
            ``removed`` (kept, but gone from disk: removed as ``prune`` asked). A directory
            named that could not be listed, or that holds no file to read, is ``failed``.
        chunks: its chunks in the knowledge base (0 when skipped or failed; when removed,
            the chunks it had).
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
    """What :func:`ingest` did, file by file, in the order the files were read.

    Attributes:
        files: each file's outcome (documents removed first, then directories that failed).
        seconds: how long it took.
        left_out: the files of other kinds found under the directories walked (hidden entries
            aside), counted by extension (lower case, ``""`` for none), the most first.
        gone: documents kept at or under the paths named whose files no longer exist, and
            that stay kept (``prune`` was not asked).
        stopped: the error of the embedder that stopped the adding (one about the embedder as
            a whole: :func:`about_the_embedder`), else ``None``.
        unread: the files not read because of it, the one it stopped at first.
    """

    files: tuple[FileOutcome, ...]
    seconds: float
    left_out: tuple[tuple[str, int], ...] = ()
    gone: tuple[str, ...] = ()
    stopped: AutomatosError | None = None
    unread: tuple[str, ...] = ()

    def count(self, outcome: Outcome) -> int:
        """Files of this outcome."""
        return sum(1 for file in self.files if file.outcome == outcome)

    @property
    def totals(self) -> dict[str, int]:
        """Files of each outcome, the chunks and tokens embedded (of files added or
        replaced), and the files of other kinds left out."""
        made = [file for file in self.files if file.outcome in ("added", "replaced")]
        totals: dict[str, int] = {outcome: self.count(outcome) for outcome in OUTCOMES}
        totals["chunks"] = sum(file.chunks for file in made)
        totals["tokens"] = sum(file.tokens for file in made)
        totals["left_out"] = sum(count for _, count in self.left_out)
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
    prune: bool = False,
    on_progress: ProgressCallback | None = None,
    on_file: FileCallback | None = None,
) -> IngestReport:
    """Add files, and the supported files under directories, to the knowledge base.

    Directories are walked in sorted order; hidden entries (``.git``) and symbolic links to
    directories are left out, and so are files of other kinds (:data:`KINDS`), which are
    counted. A path named itself is always read: missing or of another kind, it fails with
    the reason; a directory named that yields no file to read fails too. A file named twice
    (or also found under a directory) is read once.

    Args:
        paths: files and directories.
        store: the knowledge base.
        embedder: what makes the vectors; kept under its name.
        tokenizer: the name of ``count_tokens`` (the model's profile's), kept with the counts.
        count_tokens: the model's tokenizer, which sizes the chunks.
        settings: chunk sizes and the largest file read.
        prune: remove the documents kept at or under ``paths`` whose files no longer exist
            (else they are only reported, in :attr:`IngestReport.gone`). A path named that
            is gone, or a directory now empty, does not fail when documents under it are
            removed: that is what was asked.
        on_progress: called once the files are known, then after each file.
        on_file: called with each outcome as it is known.

    Raises:
        ConfigurationError: ``chunk_overlap_tokens`` is not below ``chunk_tokens``.
        StoreError: the store failed; the files kept before it stay kept.
    """
    if settings.chunk_overlap_tokens >= settings.chunk_tokens:
        raise ConfigurationError(
            f"context.chunk_overlap_tokens ({settings.chunk_overlap_tokens}) must be below "
            f"context.chunk_tokens ({settings.chunk_tokens})"
        )
    started = time.perf_counter()
    found = await asyncio.to_thread(_collect, paths)
    outcomes: list[FileOutcome] = []

    def record(outcome: FileOutcome) -> None:
        outcomes.append(outcome)
        if on_file is not None:
            on_file(outcome)

    gone = await _gone(store, found.named)
    emptied: set[str] = set()  # paths named under which gone documents were removed
    if prune and gone:
        removed = await _prune(store, gone)
        for outcome in removed:
            record(outcome)
        pruned = {outcome.path for outcome in removed}
        emptied = {named for named in found.named if any(_under(p, named) for p in pruned)}
        gone = [document for document in gone if document.path not in pruned]
    for failure in found.failures:
        if failure.path not in emptied or failure.path not in found.empty:
            record(failure)
    files = [path for path in found.files if path.as_posix() not in emptied]
    chunks_done = 0
    if on_progress is not None:
        on_progress(0, len(files), 0)
    work = _FileWork(store, embedder, tokenizer, count_tokens, settings)
    stopped: AutomatosError | None = None
    unread: tuple[str, ...] = ()
    for done, path in enumerate(files, start=1):
        try:
            outcome = await work.run(path)
        except _EmbedderFailed as exc:
            stopped = exc.error
            unread = tuple(p.as_posix() for p in files[done - 1 :])
            break
        record(outcome)
        if outcome.outcome in ("added", "replaced"):
            chunks_done += outcome.chunks
        if on_progress is not None:
            on_progress(done, len(files), chunks_done)
    return IngestReport(
        tuple(outcomes),
        time.perf_counter() - started,
        left_out=_by_count(found.left_out.values()),
        gone=tuple(document.path for document in gone),
        stopped=stopped,
        unread=unread,
    )


def about_the_embedder(error: BaseException) -> bool:
    """Whether an embedder's error is about the embedder as a whole, not the texts it was
    given, so that every other text would fail the same way: it is not set up (its model,
    its settings), its endpoint cannot be reached, times out or limits the rate, or refuses
    the key, its rights or the model (HTTP 401, 403, 404). Other refusals (HTTP 400, a text
    too long) and a malformed answer are about what was sent."""
    if isinstance(
        error,
        ConfigurationError | ProviderUnavailableError | LLMTimeoutError | RateLimitedError,
    ):
        return True
    return isinstance(error, ProviderRequestError) and str(error).startswith(
        _WHOLE_EMBEDDER_STATUSES
    )


def left_out_text(left_out: Sequence[tuple[str, int]]) -> str:
    """``3 files left out: .py (2), .json; the kinds read are .htm, …``."""
    files = sum(count for _, count in left_out)
    kinds = ", ".join(
        (extension or "no extension") + (f" ({count})" if count > 1 else "")
        for extension, count in left_out
    )
    noun = "file" if files == 1 else "files"
    return f"{files} {noun} left out: {kinds}; the kinds read are {kinds_read()}"


class _EmbedderFailed(Exception):
    """Raised by :meth:`_FileWork.run` with an error about the embedder as a whole."""

    def __init__(self, error: AutomatosError) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass(slots=True)
class _Found:
    """What the paths named hold.

    Attributes:
        files: the resolved files to read, each once, in order.
        failures: the directories that could not be listed, or that hold no file to read.
        empty: the paths of the directories named that hold no file to read.
        left_out: the files of other kinds under the directories walked, with their
            extension (by path: a file under two directories named is counted once).
        named: the paths named, resolved (POSIX form), each once.
    """

    files: dict[Path, None] = field(default_factory=dict)
    failures: list[FileOutcome] = field(default_factory=list)
    empty: set[str] = field(default_factory=set)
    left_out: dict[str, str] = field(default_factory=dict)
    named: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Walk:
    """What one directory named holds, as its walk finds it."""

    files: list[Path] = field(default_factory=list)
    others: dict[str, str] = field(default_factory=dict)
    hidden: int = 0
    failures: list[FileOutcome] = field(default_factory=list)


def _collect(paths: Iterable[str | Path]) -> _Found:
    found = _Found()
    for given in paths:
        path = Path(given).resolve()
        key = path.as_posix()
        if key in found.named:
            continue
        found.named.append(key)
        if not path.is_dir():
            found.files.setdefault(path, None)  # reading it says what is wrong with it, if anything
            continue
        walk = _Walk()
        _walk(path, walk)
        for file in walk.files:
            found.files.setdefault(file.resolve(), None)
        found.left_out.update(walk.others)
        found.failures.extend(walk.failures)
        listed = not any(failure.path == key for failure in walk.failures)
        if not walk.files and listed:
            reason = f"nothing readable found: {_holds(walk)}"
            found.failures.append(FileOutcome(key, "failed", reason=reason))
            found.empty.add(key)
    return found


def _holds(walk: _Walk) -> str:
    """What a directory without a file to read holds instead."""
    if walk.others:
        return left_out_text(_by_count(walk.others.values()))
    if walk.hidden:
        return "it holds only hidden entries, which are left out"
    return "it holds no files"


def _by_count(extensions: Iterable[str]) -> tuple[tuple[str, int], ...]:
    """Each extension with its count, the most first, files without one last of a count."""
    counts = Counter(extensions)
    return tuple(sorted(counts.items(), key=lambda item: (-item[1], not item[0], item[0])))


def _walk(directory: Path, walk: _Walk) -> None:
    """The supported regular files under ``directory`` into ``walk``, in sorted order, depth
    first, and the files of other kinds beside them."""
    try:
        with os.scandir(directory) as listing:
            entries = sorted(listing, key=lambda entry: entry.name)
    except OSError as exc:
        reason = f"cannot list {directory}: {exc.strerror or exc}"
        walk.failures.append(FileOutcome(directory.as_posix(), "failed", reason=reason))
        return
    for entry in entries:
        if entry.name.startswith("."):
            walk.hidden += 1
            continue
        try:
            if entry.is_dir(follow_symlinks=False):
                _walk(Path(entry.path), walk)
            elif entry.is_file():  # follows a link to a file; a FIFO or socket is left out
                extension = Path(entry.name).suffix.lower()
                if extension in KINDS:
                    walk.files.append(Path(entry.path))
                else:
                    walk.others[entry.path] = extension or _NO_EXTENSION
        except OSError:
            continue  # gone, or a link that cannot be followed: nothing to read


def _under(path: str, named: str) -> bool:
    """Whether the kept ``path`` is ``named`` or under it."""
    return path == named or path.startswith(named.rstrip("/") + "/")


async def _gone(store: KnowledgeStore, named: Sequence[str]) -> list[KbDocument]:
    """The documents kept at or under the paths named whose files no longer exist."""
    if not named:
        return []
    kept = [d for d in await store.kb_documents() if any(_under(d.path, n) for n in named)]
    if not kept:
        return []
    missing = await asyncio.to_thread(lambda: [_missing(d.path) for d in kept])
    return [document for document, lost in zip(kept, missing, strict=True) if lost]


async def _prune(store: KnowledgeStore, gone: Sequence[KbDocument]) -> list[FileOutcome]:
    """Remove the documents gone from disk; the outcome of each removed."""
    removed = set(await store.kb_remove([document.path for document in gone]))
    return [
        FileOutcome(d.path, "removed", d.chunks, d.tokens, "no longer on disk")
        for d in gone
        if d.path in removed
    ]


def _missing(path: str) -> bool:
    """Whether nothing is at ``path`` any more. A file that cannot be looked at (a
    directory without the right to enter it) is not missing: it must not be pruned."""
    try:
        os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return True
    except OSError:
        return False
    return False


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
            key.encode("utf-8")
        except UnicodeEncodeError:
            shown = key.encode("utf-8", "backslashreplace").decode()
            return FileOutcome(shown, "failed", reason=f"{shown}: the file name is not UTF-8")
        stop = threading.Event()
        try:
            document, warnings = await asyncio.to_thread(
                _read, path, self.settings.max_file_bytes, self.settings.max_read_s, stop
            )
        except InvalidRequestError as exc:
            return FileOutcome(key, "failed", reason=str(exc))
        finally:
            stop.set()  # cancelled meanwhile: the reading thread ends after its page
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
        except AutomatosError as exc:
            if about_the_embedder(exc):  # every other file would fail the same way
                raise _EmbedderFailed(exc) from exc
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


def _read(
    path: Path, max_bytes: int, max_seconds: float, stop: threading.Event
) -> tuple[Document, str]:
    """The document, and the warnings its PDF reader logged (joined; empty if none)."""
    with _pdf_warnings() as caught:
        document = read_document(
            path, max_bytes, setting=_MAX_FILE_BYTES, max_seconds=max_seconds, stop=stop
        )
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
