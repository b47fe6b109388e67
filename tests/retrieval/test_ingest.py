"""Adding files to the knowledge base for real: files written in the test's directory, read,
chunked, embedded by all-MiniLM-L6-v2 and kept in SQLite (PostgreSQL for one round trip).

What stands in for something is only what cannot fail on its own when asked to: an embedder
that counts (or breaks on) what it is given around the real one, and a store that breaks on
its second write around the real one.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path

import asyncpg
import numpy as np
import pytest

from automatos.errors import (
    AutomatosError,
    ConfigurationError,
    LLMTimeoutError,
    ProviderContractError,
    ProviderRequestError,
    ProviderUnavailableError,
    RateLimitedError,
    StoreError,
)
from automatos.llm.base import estimate_tokens
from automatos.retrieval.base import ChunkRecord, KbDocument, KnowledgeStore, Vectors
from automatos.retrieval.embedder import CachedEmbedder, Embedder, LocalEmbedder
from automatos.retrieval.factory import build_embedder, close_embedder, tokenizer_of
from automatos.retrieval.index import ExactIndex
from automatos.retrieval.ingest import FileOutcome, IngestReport, about_the_embedder, ingest
from automatos.retrieval.optimizer import word_entropy
from automatos.retrieval.remote_embedder import OpenAIEmbedder
from automatos.settings import (
    ContextSettings,
    EmbeddingSettings,
    LLMSettings,
    Settings,
    StoreSettings,
)
from automatos.store.sql import SqlStore
from tests.retrieval.test_documents import make_pdf
from tests.retrieval.test_remote_embedder import vectors as fake_vectors
from tests.support.fake_servers import FakeLLMServer, error

PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"
PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
CONTEXT = ContextSettings(chunk_tokens=60, chunk_overlap_tokens=10)

GUIDE = """# Install

Run pip install automatos to install the engine and its command line.

## From source

Clone the repository, then run make: it builds a virtual environment with every extra.

# Configure

Settings are read from AUTOMATOS_ variables, nested with two underscores.
"""
LLAMAS = """Llamas
======

Llamas are domesticated South American camelids, long used as pack animals by Andean
cultures. They are social animals and live in herds.
"""
TEA = "Green tea is made from leaves that are not oxidised; black tea from leaves that are.\n"
PAGE = """<html><head><title>ignored</title><script>var x = 1;</script></head><body>
<h1>Volcanoes</h1><p>A volcano is a rupture in the crust through which lava escapes.</p>
</body></html>"""


@pytest.fixture(scope="module")
def minilm() -> Iterator[LocalEmbedder]:
    embedder = LocalEmbedder()
    yield embedder
    embedder.close()


class Counting:
    """The real embedder, counting the texts it is asked; texts with ``boom`` in them are
    refused as an endpoint refuses a text too long, and texts with ``down`` fail as an
    unreachable endpoint would."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.name = inner.name
        self.dimension = inner.dimension
        self.asked: list[list[str]] = []

    async def embed(self, texts: Sequence[str]) -> Vectors:
        self.asked.append(list(texts))
        if any("boom" in text for text in texts):
            raise ProviderRequestError("HTTP 400: the input is too long")
        if any("down" in text for text in texts):
            raise ProviderUnavailableError("cannot reach the embeddings endpoint")
        return await self.inner.embed(texts)

    @property
    def texts(self) -> int:
        return sum(len(batch) for batch in self.asked)


@pytest.fixture
def counting(minilm: LocalEmbedder) -> Counting:
    return Counting(minilm)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlStore]:
    s = await SqlStore.open(StoreSettings(data_dir=tmp_path / "db"))
    yield s
    await s.aclose()


def write_docs(root: Path) -> Path:
    """A directory of every kind, with what a walk must leave out."""
    docs = root / "docs"
    (docs / "animals").mkdir(parents=True)
    (docs / ".git").mkdir()
    (docs / "guide.md").write_text(GUIDE)
    (docs / "animals" / "llamas.rst").write_text(LLAMAS)
    (docs / "animals" / "tea.txt").write_text(TEA)
    (docs / "volcanoes.HTML").write_text(PAGE)
    (docs / "scan.pdf").write_bytes(make_pdf([["Penguins live in the southern hemisphere."]]))
    (docs / ".draft.md").write_text("# Hidden\n\nNot to be read.\n")
    (docs / ".git" / "notes.md").write_text("# Git\n\nNot to be read either.\n")
    (docs / "data.json").write_text('{"not": "a document"}')
    outside = root / "outside"
    outside.mkdir()
    (outside / "linked.md").write_text("# Linked\n\nBehind a link to a directory.\n")
    (docs / "link").symlink_to(outside, target_is_directory=True)
    return docs


async def add(
    paths: Sequence[str | Path],
    store: KnowledgeStore,
    embedder: Embedder,
    *,
    tokenizer: str = "estimate",
    settings: ContextSettings = CONTEXT,
    progress: list[tuple[int, int, int]] | None = None,
    prune: bool = False,
    seen: list[FileOutcome] | None = None,
) -> IngestReport:
    return await ingest(
        paths,
        store,
        embedder,
        tokenizer=tokenizer,
        count_tokens=estimate_tokens,
        settings=settings,
        prune=prune,
        on_progress=None if progress is None else lambda *done: progress.append(done),
        on_file=None if seen is None else seen.append,
    )


def outcomes(report: IngestReport, root: Path) -> dict[str, str]:
    base = root.resolve().as_posix() + "/"
    return {file.path.removeprefix(base): file.outcome for file in report.files}


async def test_a_directory_is_walked_in_order_and_every_kind_kept(
    tmp_path: Path, store: SqlStore, counting: Counting
) -> None:
    docs = write_docs(tmp_path)
    progress: list[tuple[int, int, int]] = []
    report = await add([docs], store, counting, progress=progress)
    assert outcomes(report, docs) == {
        "animals/llamas.rst": "added",
        "animals/tea.txt": "added",
        "guide.md": "added",
        "scan.pdf": "added",
        "volcanoes.HTML": "added",
    }
    assert not report.failed
    totals = report.totals
    assert totals["added"] == 5 and totals["failed"] == 0
    assert report.left_out == ((".json", 1),) and totals["left_out"] == 1  # data.json
    assert report.gone == () and report.stopped is None
    assert totals["chunks"] == sum(file.chunks for file in report.files) >= 6
    assert progress[0] == (0, 5, 0)
    assert [done for done, _, _ in progress] == [0, 1, 2, 3, 4, 5]
    assert progress[-1] == (5, 5, totals["chunks"])

    documents = await store.kb_documents()
    assert [(Path(d.path).name, d.kind) for d in documents] == [
        ("llamas.rst", "rst"),
        ("tea.txt", "txt"),
        ("guide.md", "md"),
        ("scan.pdf", "pdf"),
        ("volcanoes.HTML", "html"),
    ]
    guide = await store.kb_document((docs / "guide.md").resolve().as_posix())
    assert guide is not None
    assert guide.embedder == "all-MiniLM-L6-v2" and guide.tokenizer == "estimate"
    assert guide.added_at is not None

    chunks, matrix = await store.kb_matrix("all-MiniLM-L6-v2")
    assert matrix.shape == (len(chunks), 384) == (totals["chunks"], 384)
    assert np.allclose(np.linalg.norm(matrix, axis=1), 1.0, atol=1e-4)
    by_heading = {c.heading: c for c in chunks if c.path == guide.path}
    assert set(by_heading) == {"Install", "Install > From source", "Configure"}
    source = by_heading["Install > From source"]
    assert source.text.startswith("Install > From source\n\nClone the repository")
    assert source.tokens == estimate_tokens(source.text)
    assert source.entropy == pytest.approx(word_entropy(source.text))
    assert guide.tokens == sum(c.tokens for c in chunks if c.path == guide.path)
    pdf = [c for c in chunks if c.path.endswith("scan.pdf")]
    assert [c.page for c in pdf] == [1] and "Penguins" in pdf[0].text
    kept = " ".join(c.text for c in chunks)
    assert "Hidden" not in kept and "Git" not in kept and "Linked" not in kept
    assert "var x" not in kept and "ignored" not in kept

    # the chunk about the question is found first, as stage 3 will search
    (query,) = await counting.embed(["how do I build it from a git checkout?"])
    best = ExactIndex(matrix).search(query, 1)[0]
    assert chunks[best.row] == source


async def test_adding_again_unchanged_embeds_and_writes_nothing(
    tmp_path: Path, store: SqlStore, counting: Counting
) -> None:
    docs = write_docs(tmp_path)
    first = await add([docs], store, counting)
    embedded = counting.texts
    assert embedded == first.totals["chunks"]
    generation = await store.kb_generation()
    again = await add([docs, docs / "guide.md"], store, counting)  # named twice: read once
    assert set(outcomes(again, docs).values()) == {"unchanged"}
    assert len(again.files) == 5
    assert counting.texts == embedded
    assert await store.kb_generation() == generation
    assert [f.chunks for f in again.files] == [f.chunks for f in first.files]
    assert again.totals["chunks"] == 0  # nothing embedded


async def test_a_changed_file_is_replaced_and_its_old_chunks_are_gone(
    tmp_path: Path, store: SqlStore, counting: Counting
) -> None:
    docs = write_docs(tmp_path)
    await add([docs], store, counting)
    guide = (docs / "guide.md").resolve().as_posix()
    old = [c for c in (await store.kb_matrix(counting.name))[0] if c.path == guide]
    (docs / "guide.md").write_text("# Uninstall\n\nRemove the package with pip uninstall.\n")
    before = counting.texts
    report = await add([docs], store, counting)
    assert outcomes(report, docs)["guide.md"] == "replaced"
    assert [f.outcome for f in report.files].count("unchanged") == 4
    assert counting.texts - before == 1  # only the changed file was embedded
    assert await store.kb_chunks([c.id for c in old]) == []
    chunks, _ = await store.kb_matrix(counting.name)
    (new,) = [c for c in chunks if c.path == guide]
    assert new.heading == "Uninstall" and "pip uninstall" in new.text

    # another tokenizer counts the chunks anew: the file is re-chunked and re-embedded
    report = await add([docs / "guide.md"], store, counting, tokenizer="llama.cpp:other")
    assert [f.outcome for f in report.files] == ["replaced"]
    kept = await store.kb_document(guide)
    assert kept is not None and kept.tokenizer == "llama.cpp:other"

    # and so does another embedder: its vectors are kept under its name
    renamed = Counting(counting.inner)
    renamed.name = "another-embedder"
    report = await add([docs / "guide.md"], store, renamed, tokenizer="llama.cpp:other")
    assert [f.outcome for f in report.files] == ["replaced"] and renamed.texts == 1
    assert [c.path for c in (await store.kb_matrix("another-embedder"))[0]] == [guide]
    assert guide not in {c.path for c in (await store.kb_matrix(counting.name))[0]}


async def test_bad_inputs_fail_alone_naming_the_file(
    tmp_path: Path, store: SqlStore, counting: Counting
) -> None:
    good = tmp_path / "good.md"
    good.write_text(GUIDE)
    latin = tmp_path / "latin.txt"
    latin.write_bytes("café crème".encode("latin-1"))
    large = tmp_path / "large.txt"
    large.write_text("word " * 400)
    other = tmp_path / "table.csv"
    other.write_text("a,b\n1,2\n")
    missing = tmp_path / "missing.md"
    settings = CONTEXT.model_copy(update={"max_file_bytes": 1000})
    report = await add([missing, other, latin, good, large], store, counting, settings=settings)
    failed = {Path(f.path).name: f.reason for f in report.failed}
    assert set(failed) == {"missing.md", "table.csv", "latin.txt", "large.txt"}
    for name, reason in failed.items():
        assert name in reason
    assert "No such file" in failed["missing.md"]
    assert "cannot read .csv files" in failed["table.csv"]
    assert "not UTF-8" in failed["latin.txt"]
    assert "context.max_file_bytes" in failed["large.txt"]
    assert [f.outcome for f in report.files if f.path.endswith("good.md")] == ["added"]
    assert [Path(d.path).name for d in await store.kb_documents()] == ["good.md"]


async def test_an_empty_file_is_skipped_and_an_emptied_one_leaves(
    tmp_path: Path, store: SqlStore, counting: Counting
) -> None:
    blank = tmp_path / "blank.md"
    blank.write_text("\n\n   \n")
    notes = tmp_path / "notes.txt"
    notes.write_text(TEA)
    report = await add([blank, notes], store, counting)
    assert [(f.outcome, f.reason) for f in report.files] == [
        ("skipped", "no text"),
        ("added", ""),
    ]
    notes.write_text("")
    report = await add([notes], store, counting)
    assert report.files[0].outcome == "skipped"
    assert "removed" in report.files[0].reason
    assert await store.kb_documents() == []


async def test_an_embedder_refusing_a_text_fails_its_file_and_the_others_go_on(
    tmp_path: Path, store: SqlStore, counting: Counting
) -> None:
    (tmp_path / "a.txt").write_text(TEA)
    (tmp_path / "b.txt").write_text("This file makes the endpoint go boom.\n")
    (tmp_path / "c.txt").write_text(LLAMAS)
    report = await add([tmp_path], store, counting)
    assert [(Path(f.path).name, f.outcome) for f in report.files] == [
        ("a.txt", "added"),
        ("b.txt", "failed"),
        ("c.txt", "added"),
    ]
    assert report.failed[0].reason == "ProviderRequestError: HTTP 400: the input is too long"
    assert report.stopped is None and report.unread == ()
    assert len(await store.kb_documents()) == 2


async def test_an_embedder_failing_as_a_whole_stops_at_once_and_keeps_what_was_added(
    tmp_path: Path, store: SqlStore, counting: Counting
) -> None:
    (tmp_path / "a.txt").write_text(TEA)
    (tmp_path / "b.txt").write_text("The endpoint goes down here.\n")
    (tmp_path / "c.txt").write_text(LLAMAS)
    (tmp_path / "d.txt").write_text("And this would be refused: boom.\n")
    seen: list[FileOutcome] = []
    report = await add([tmp_path], store, counting, seen=seen)
    assert [(Path(f.path).name, f.outcome) for f in report.files] == [("a.txt", "added")]
    assert seen == list(report.files)
    assert isinstance(report.stopped, ProviderUnavailableError)
    assert [Path(p).name for p in report.unread] == ["b.txt", "c.txt", "d.txt"]
    assert len(counting.asked) == 2  # c.txt and d.txt were never sent
    assert [Path(d.path).name for d in await store.kb_documents()] == ["a.txt"]


async def test_a_refused_key_stops_at_the_first_file_through_the_real_sdk(
    tmp_path: Path, store: SqlStore
) -> None:
    for name in ("a.txt", "b.txt", "c.txt"):
        (tmp_path / name).write_text(f"{name}: {TEA}")
    with FakeLLMServer(lambda path, body: error(401, "invalid api key")) as server:
        endpoint = OpenAIEmbedder(model="embed-test", dimension=3, base_url=server.base_url)
        report = await add([tmp_path], store, endpoint)
        await endpoint.aclose()
    assert isinstance(report.stopped, ProviderRequestError)
    assert "HTTP 401" in str(report.stopped) and len(report.unread) == 3
    assert len(server.requests) == 1 and report.files == ()


@pytest.mark.parametrize(
    ("error", "whole"),
    [
        (ConfigurationError("the model does not load"), True),
        (ProviderUnavailableError("cannot reach the embeddings endpoint"), True),
        (LLMTimeoutError("the embeddings endpoint timed out"), True),
        (RateLimitedError("HTTP 429: slow down"), True),
        (ProviderRequestError("HTTP 401: invalid api key"), True),
        (ProviderRequestError("HTTP 403: not allowed"), True),
        (ProviderRequestError("HTTP 404: no such model"), True),
        (ProviderRequestError("HTTP 400: the input is too long"), False),
        (ProviderRequestError("HTTP 413: payload too large"), False),
        (ProviderContractError("a zero vector"), False),
    ],
)
def test_which_errors_are_about_the_embedder_as_a_whole(error: AutomatosError, whole: bool) -> None:
    assert about_the_embedder(error) is whole


async def test_an_embedder_that_cannot_work_and_bad_chunk_sizes_stop_at_once(
    tmp_path: Path, store: SqlStore
) -> None:
    (tmp_path / "a.txt").write_text(TEA)
    (tmp_path / "b.txt").write_text(LLAMAS)
    broken = LocalEmbedder(model_dir=tmp_path / "no-model")
    report = await add([tmp_path], store, broken)
    assert isinstance(report.stopped, ConfigurationError)
    assert "does not load" in str(report.stopped) and len(report.unread) == 2
    broken.close()
    overlapping = ContextSettings(chunk_tokens=20, chunk_overlap_tokens=20)
    with pytest.raises(ConfigurationError, match=r"context\.chunk_overlap_tokens"):
        await add([tmp_path], store, broken, settings=overlapping)
    assert await store.kb_documents() == []


async def test_directories_named_that_hold_nothing_readable_fail_saying_what_they_hold(
    tmp_path: Path, store: SqlStore, counting: Counting
) -> None:
    code = tmp_path / "code"
    (code / "pkg").mkdir(parents=True)
    for name in ("a.py", "pkg/b.PY", "report.docx", "data.json", "Makefile", ".env"):
        (code / name).write_text("x = 1\n")
    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    hidden = tmp_path / "hidden"
    hidden.mkdir()
    (hidden / ".notes.md").write_text(GUIDE)
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    (mixed / "tea.txt").write_text(TEA)
    (mixed / "tea.csv").write_text("a,b\n")
    report = await add([code, empty, hidden, mixed, code], store, counting)
    reasons = {Path(f.path).name: f.reason for f in report.failed}
    assert reasons == {
        "code": "nothing readable found: 5 files left out: .py (2), .docx, .json, no extension; "
        "the kinds read are .htm, .html, .markdown, .md, .pdf, .rst, .txt",
        "empty": "nothing readable found: it holds no files",
        "hidden": "nothing readable found: it holds only hidden entries, which are left out",
    }
    assert [Path(f.path).name for f in report.files if f.outcome == "added"] == ["tea.txt"]
    assert report.left_out == ((".py", 2), (".csv", 1), (".docx", 1), (".json", 1), ("", 1))
    assert report.totals["left_out"] == 6 and report.totals["failed"] == 3


async def test_documents_gone_from_disk_are_reported_and_pruned_when_asked(
    tmp_path: Path, store: SqlStore, counting: Counting
) -> None:
    docs = write_docs(tmp_path)
    other = tmp_path / "other.md"
    other.write_text(GUIDE)
    await add([docs, other], store, counting)
    (docs / "guide.md").unlink()
    other.unlink()
    key = docs.resolve().as_posix()
    report = await add([docs], store, counting)
    assert report.gone == (f"{key}/guide.md",)  # other.md is not under the path named
    assert {f.outcome for f in report.files} == {"unchanged"}
    assert len(await store.kb_documents()) == 6

    seen: list[FileOutcome] = []
    pruned = await add([docs], store, counting, prune=True, seen=seen)
    (removed,) = [f for f in pruned.files if f.outcome == "removed"]
    assert removed.path == f"{key}/guide.md" and removed.chunks == 3
    assert removed in seen and pruned.gone == () and pruned.totals["removed"] == 1
    paths = {d.path for d in await store.kb_documents()}
    assert f"{key}/guide.md" not in paths and len(paths) == 5

    # a directory that is gone, or emptied, names nothing to read: no failure when pruned
    for name in ("llamas.rst", "tea.txt"):
        (docs / "animals" / name).unlink()
    emptied = await add([docs / "animals", other], store, counting)
    assert [Path(f.path).name for f in emptied.failed] == ["animals", "other.md"]
    assert [Path(p).name for p in emptied.gone] == ["llamas.rst", "tea.txt", "other.md"]
    emptied = await add([docs / "animals", other], store, counting, prune=True)
    assert [(Path(f.path).name, f.outcome) for f in emptied.files] == [
        ("llamas.rst", "removed"),
        ("tea.txt", "removed"),
        ("other.md", "removed"),
    ]
    assert not emptied.failed and len(await store.kb_documents()) == 2
    missing = await add([tmp_path / "missing"], store, counting, prune=True)
    assert [f.reason for f in missing.failed] == [
        f"cannot read {(tmp_path / 'missing').resolve()}: No such file or directory"
    ]


async def test_a_file_that_cannot_be_looked_at_is_not_gone(
    tmp_path: Path, store: SqlStore, counting: Counting
) -> None:
    if os.geteuid() == 0:
        pytest.skip("root looks at any file")
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "secret.md").write_text(GUIDE)
    await add([locked], store, counting)
    locked.chmod(0)
    try:
        report = await add([locked], store, counting, prune=True)
    finally:
        locked.chmod(0o755)
    assert report.gone == () and not [f for f in report.files if f.outcome == "removed"]
    assert len(await store.kb_documents()) == 1


class FailingSecondPut:
    """The real store, whose second ``kb_put`` fails as a lost database would."""

    def __init__(self, inner: SqlStore) -> None:
        self.inner = inner
        self.puts = 0

    async def kb_document(self, path: str) -> KbDocument | None:
        return await self.inner.kb_document(path)

    async def kb_put(
        self, document: KbDocument, chunks: Sequence[ChunkRecord], vectors: Vectors
    ) -> None:
        self.puts += 1
        if self.puts == 2:
            raise StoreError("the database went away")
        await self.inner.kb_put(document, chunks, vectors)

    async def kb_remove(self, paths: Sequence[str]) -> list[str]:
        return await self.inner.kb_remove(paths)

    async def kb_documents(self) -> list[KbDocument]:
        return await self.inner.kb_documents()

    async def kb_chunks(self, ids: Sequence[str]) -> list[ChunkRecord]:
        return await self.inner.kb_chunks(ids)

    async def kb_matrix(self, embedder: str) -> tuple[list[ChunkRecord], Vectors]:
        return await self.inner.kb_matrix(embedder)

    async def kb_generation(self) -> int:
        return await self.inner.kb_generation()


async def test_a_store_error_stops_and_keeps_what_was_put(
    tmp_path: Path, store: SqlStore, counting: Counting
) -> None:
    for name in ("a.txt", "b.txt", "c.txt"):
        (tmp_path / name).write_text(f"{name}: {TEA}")
    failing = FailingSecondPut(store)
    with pytest.raises(StoreError, match="went away"):
        await add([tmp_path], failing, counting)
    assert [Path(d.path).name for d in await store.kb_documents()] == ["a.txt"]


class Stalling:
    """The real embedder, which never answers its second call (until cancelled)."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.name = inner.name
        self.dimension = inner.dimension
        self.calls = 0
        self.stalled = asyncio.Event()

    async def embed(self, texts: Sequence[str]) -> Vectors:
        self.calls += 1
        if self.calls == 2:
            self.stalled.set()
            await asyncio.Event().wait()
        return await self.inner.embed(texts)


async def test_cancelling_keeps_the_files_already_put(
    tmp_path: Path, store: SqlStore, minilm: LocalEmbedder
) -> None:
    (tmp_path / "a.txt").write_text(TEA)
    (tmp_path / "b.txt").write_text(LLAMAS)
    stalling = Stalling(minilm)
    task = asyncio.create_task(add([tmp_path], store, stalling))
    await asyncio.wait_for(stalling.stalled.wait(), 60)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert [Path(d.path).name for d in await store.kb_documents()] == ["a.txt"]
    report = await add([tmp_path], store, minilm)  # the next add finishes the work
    assert [f.outcome for f in report.files] == ["unchanged", "added"]


async def test_pdf_warnings_stay_off_the_log_and_are_kept_as_the_reason(
    tmp_path: Path, store: SqlStore, counting: Counting, caplog: pytest.LogCaptureFixture
) -> None:
    data = make_pdf([["Penguins live in the southern hemisphere."]])
    cut = data.rindex(b"startxref")
    (tmp_path / "damaged.pdf").write_bytes(data[:cut] + b"startxref\n99999\n%%EOF\n")
    with caplog.at_level(logging.WARNING):
        report = await add([tmp_path / "damaged.pdf"], store, counting)
    (file,) = report.files
    assert file.outcome == "added" and file.chunks == 1
    assert file.reason.startswith("pypdf: ") and "startxref" in file.reason
    assert not [r for r in caplog.records if r.name.startswith("pypdf")]
    assert logging.getLogger("pypdf").propagate  # given back as it was


async def test_a_directory_that_cannot_be_listed_is_reported(
    tmp_path: Path, store: SqlStore, counting: Counting
) -> None:
    if os.geteuid() == 0:
        pytest.skip("root lists any directory")
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "secret.md").write_text(GUIDE)
    (tmp_path / "open.txt").write_text(TEA)
    locked.chmod(0)
    try:
        report = await add([tmp_path], store, counting)
    finally:
        locked.chmod(0o755)
    assert [(Path(f.path).name, f.outcome) for f in report.files] == [
        ("locked", "failed"),
        ("open.txt", "added"),
    ]
    assert "cannot list" in report.files[0].reason


async def test_postgresql_round_trip(tmp_path: Path, counting: Counting) -> None:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(PG_DSN)
    await admin.execute(f'CREATE SCHEMA "{schema}"')
    try:
        store = await SqlStore.open(
            StoreSettings(url=PG_URL),
            connect_args={"server_settings": {"search_path": schema}},
        )
        try:
            docs = write_docs(tmp_path)
            first = await add([docs], store, counting)
            assert {f.outcome for f in first.files} == {"added"}
            again = await add([docs], store, counting)
            assert {f.outcome for f in again.files} == {"unchanged"}
            chunks, matrix = await store.kb_matrix(counting.name)
            assert matrix.shape == (first.totals["chunks"], 384)
            assert {c.path for c in chunks} == {d.path for d in await store.kb_documents()}
        finally:
            await store.aclose()
    finally:
        await admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await admin.close()


async def test_build_embedder_local_cached_or_bare() -> None:
    cached = build_embedder(Settings(embeddings=EmbeddingSettings(batch_size=8, cache_size=10)))
    assert isinstance(cached, CachedEmbedder) and cached.capacity == 10
    assert isinstance(cached.inner, LocalEmbedder) and cached.name == "all-MiniLM-L6-v2"
    await close_embedder(cached)
    bare = build_embedder(Settings(embeddings=EmbeddingSettings(cache_size=0)))
    assert isinstance(bare, LocalEmbedder) and bare.dimension == 384
    await close_embedder(bare)


async def test_build_embedder_openai_endpoint_and_dimensions() -> None:
    known = build_embedder(
        Settings(
            llm=LLMSettings(base_url="http://127.0.0.1:9/v1"),
            embeddings=EmbeddingSettings(provider="openai", model="text-embedding-3-large"),
        )
    )
    assert known.name == "text-embedding-3-large" and known.dimension == 3072
    await close_embedder(known)
    with pytest.raises(ConfigurationError, match=r"embeddings\.dimension"):
        build_embedder(
            Settings(embeddings=EmbeddingSettings(provider="openai", model="nomic-embed-text"))
        )
    with FakeLLMServer(fake_vectors) as llm_server, FakeLLMServer(fake_vectors) as own_server:
        # the embeddings' endpoint, else the model's
        for embeddings_url, server in ((None, llm_server), (own_server.base_url, own_server)):
            embedder = build_embedder(
                Settings(
                    llm=LLMSettings(base_url=llm_server.base_url, api_key="sk-test"),
                    embeddings=EmbeddingSettings(
                        provider="openai",
                        model="embed-test",
                        dimension=3,
                        base_url=embeddings_url,
                        cache_size=0,
                    ),
                )
            )
            assert isinstance(embedder, OpenAIEmbedder)
            got = await embedder.embed(["abc"])
            assert got.shape == (1, 3)
            assert server.requests[-1][1]["model"] == "embed-test"
            await close_embedder(embedder)
        assert len(llm_server.requests) == len(own_server.requests) == 1


def test_tokenizer_of_the_configured_model() -> None:
    hosted = Settings(llm=LLMSettings(provider="openai", base_url="http://127.0.0.1:9/v1"))
    assert tokenizer_of(hosted) == ("estimate", estimate_tokens)
    # OpenAI's own endpoint without a key cannot be built: counted by estimate
    assert tokenizer_of(Settings(llm=LLMSettings(provider="openai"))) == (
        "estimate",
        estimate_tokens,
    )
    # the embedded model: its own vocabulary (not read here: llama.cpp's module leaves files
    # open that the interpreter complains of at exit)
    name, count = tokenizer_of(Settings())
    assert name == "llama.cpp:gemma-3-270m-q4_k_m"
    assert count is not estimate_tokens and callable(count)


async def test_a_file_name_that_is_not_utf8_fails_alone(
    tmp_path: Path, store: SqlStore, counting: Counting
) -> None:
    docs = tmp_path / "names"
    docs.mkdir()
    (docs / "good.md").write_text(GUIDE)
    (docs / "bad\udcff.txt").write_text(TEA)  # the byte 0xff in the name, as Linux allows
    report = await add([docs], store, counting)
    assert [f.outcome for f in report.files if f.path.endswith("good.md")] == ["added"]
    [bad] = report.failed
    assert "the file name is not UTF-8" in bad.reason and "bad\\udcff.txt" in bad.reason
    assert [Path(d.path).name for d in await store.kb_documents()] == ["good.md"]
