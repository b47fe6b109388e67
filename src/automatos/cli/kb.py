"""``automatos kb``: the knowledge base: files read, chunked and embedded for stage 3.

``add`` keeps each file under its resolved path: adding it again after an edit replaces its
chunks, adding it unchanged costs a read. ``search`` asks the knowledge base as stage 3 does
(the nearest chunks by cosine), to see what a subtask about the query would be given.

Vectors are searched only against those of the same embedder: after a change of
``embeddings.*`` the files must be added again, and ``search`` says so rather than finding
nothing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from automatos.cli.output import EXIT_FAILED, EXIT_INTERRUPTED, fail, load_settings, warn
from automatos.cli.store import STORE_DISABLED, with_store

if TYPE_CHECKING:
    from automatos.retrieval.base import Hit, KbDocument, KnowledgeStore, Vectors
    from automatos.retrieval.embedder import Embedder
    from automatos.retrieval.ingest import IngestReport, ProgressCallback
    from automatos.settings import Settings

__all__ = [
    "EMPTY_KB",
    "checked_query",
    "counted",
    "embedder_of",
    "json_line",
    "kb_app",
    "mismatch",
    "nearest",
    "one_line",
    "settings_with_store",
    "shown_path",
]

kb_app = typer.Typer(
    help="The knowledge base: files chunked and embedded, searched for each subtask's context.",
    no_args_is_help=True,
)

EMPTY_KB = "the knowledge base is empty: automatos kb add PATH"
_SNIPPET_CHARS = 100


def settings_with_store() -> Settings:
    """The settings, for a command that needs the store (ended at once if it is disabled)."""
    settings = load_settings()
    if not settings.store.enabled:
        raise fail(STORE_DISABLED)
    return settings


def embedder_of(settings: Settings) -> Embedder:
    """The configured embedder, or one error line naming the setting that is wrong."""
    from automatos.errors import ConfigurationError
    from automatos.retrieval.factory import build_embedder

    try:
        return build_embedder(settings)
    except ConfigurationError as exc:
        raise fail(exc) from None


def shown_path(path: str) -> str:
    """A stored path as the user would type it: relative to the working directory when it is
    under it, else as stored (absolute)."""
    try:
        return Path(path).relative_to(Path.cwd()).as_posix()
    except ValueError:
        return path


def one_line(text: str, width: int = _SNIPPET_CHARS) -> str:
    """``text`` with its whitespace collapsed, cut to ``width`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1].rstrip() + "…"


def json_line(record: Any, **first: object) -> str:
    """A dataclass as one line of JSON (after the fields ``first``), its dates in ISO 8601."""

    def default(value: object) -> str:
        if isinstance(value, datetime):
            return value.isoformat()
        raise TypeError(type(value).__name__)

    fields = {**first, **dataclasses.asdict(record)}
    return json.dumps(fields, default=default, ensure_ascii=False)


async def nearest(embedder: Embedder, query: str, matrix: Vectors, k: int) -> list[Hit]:
    """The ``k`` rows of ``matrix`` nearest ``query`` by cosine, best first.

    Raises:
        ConfigurationError: the kept vectors are not of the embedder's dimension (the same
            model asked for another ``embeddings.dimension``).
    """
    from automatos.errors import ConfigurationError
    from automatos.retrieval.index import ExactIndex

    if matrix.shape[1] != embedder.dimension:
        raise ConfigurationError(
            f"the vectors kept under {embedder.name} have {matrix.shape[1]} dimensions but the "
            f"configured embedder gives {embedder.dimension} (setting embeddings.dimension): "
            "add them again to search them"
        )
    vectors = await embedder.embed([query])
    return ExactIndex(matrix).search(vectors[0], k)


def checked_query(text: str) -> str:
    """The query of a search, or one error line: empty, or not UTF-8."""
    from automatos.errors import InvalidRequestError
    from automatos.files import check_utf8

    try:
        check_utf8(text, "the query")
    except InvalidRequestError as exc:
        raise fail(str(exc)) from None
    if not text.strip():
        raise fail("the query is empty")
    return text


def counted(count: int, one: str, many: str) -> str:
    """``1 document``, ``2 documents``."""
    return f"{count} {one if count == 1 else many}"


def mismatch(items: str, embedders: Sequence[str], configured: str) -> str:
    """Why ``items`` (``"3 documents"``) are not searched: their vectors are another
    embedder's."""
    names = ", ".join(sorted(set(embedders)))
    return (
        f"{items} embedded by {names}, not by the configured embedder {configured} "
        "(settings embeddings.*), cannot be searched"
    )


@kb_app.command("add")
def kb_add(
    paths: Annotated[
        list[Path],
        typer.Argument(help="Files, and directories to read the supported files under."),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Add files to the knowledge base (Markdown, reStructuredText, text, HTML, PDF).

    Directories are read recursively, hidden entries left out. A file added again unchanged
    is left as it is; a changed one has its chunks replaced.
    """
    from rich.console import Console

    from automatos.retrieval.factory import close_embedder, tokenizer_of
    from automatos.retrieval.ingest import ingest

    settings = settings_with_store()
    embedder = embedder_of(settings)
    tokenizer, count_tokens = tokenizer_of(settings)
    err = Console(stderr=True)

    async def add(store: KnowledgeStore) -> IngestReport:
        try:
            with _progress(err, shown=not as_json and err.is_terminal) as on_progress:
                return await ingest(
                    paths,
                    store,
                    embedder,
                    tokenizer=tokenizer,
                    count_tokens=count_tokens,
                    settings=settings.context,
                    on_progress=on_progress,
                )
        finally:
            await close_embedder(embedder)

    try:
        report = with_store(settings.store, add)
    except KeyboardInterrupt:
        raise fail(
            "interrupted; the files added before it stay in the knowledge base", EXIT_INTERRUPTED
        ) from None
    if as_json:
        files = [dataclasses.asdict(file) for file in report.files]
        shown = {"files": files, "totals": report.totals, "seconds": round(report.seconds, 3)}
        typer.echo(json.dumps(shown, ensure_ascii=False))
    else:
        _print_report(report)
    if report.failed:
        raise typer.Exit(EXIT_FAILED)


def _progress(console: Any, *, shown: bool) -> contextlib.AbstractContextManager[ProgressCallback]:
    """A progress bar of files (and chunks) on standard error, while ``shown``."""

    @contextlib.contextmanager
    def bar() -> Iterator[ProgressCallback]:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        with Progress(
            TextColumn("adding"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("files, {task.fields[chunks]} chunks"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as progress:
            task = progress.add_task("adding", total=None, chunks=0)

            def update(done: int, total: int, chunks: int) -> None:
                progress.update(task, completed=done, total=total, chunks=chunks)

            yield update

    @contextlib.contextmanager
    def silent() -> Iterator[ProgressCallback]:
        yield lambda done, total, chunks: None

    return bar() if shown else silent()


def _print_report(report: IngestReport) -> None:
    for file in report.files:
        path = shown_path(file.path)
        if file.outcome == "failed":
            reason = file.reason if file.path in file.reason else f"{path}: {file.reason}"
            typer.secho("error: ", fg="red", bold=True, err=True, nl=False)
            typer.echo(reason, err=True)
        elif file.outcome == "skipped":
            typer.echo(f"skipped   {path}: {file.reason}")
        elif file.outcome != "unchanged":
            typer.echo(f"{file.outcome:<9} {path}  ({file.chunks} chunks, {file.tokens} tokens)")
            if file.reason:
                warn(f"{path}: {file.reason}")
    totals = report.totals
    counts = ", ".join(
        f"{totals[outcome]} {outcome}"
        for outcome in ("added", "replaced", "unchanged", "skipped", "failed")
    )
    typer.echo(
        f"{counts}; {totals['chunks']} chunks ({totals['tokens']} tokens) embedded "
        f"in {report.seconds:.1f}s"
    )


@kb_app.command("search")
def kb_search(
    query: Annotated[str, typer.Argument(help="What to look for.")],
    top: Annotated[int, typer.Option("--top", "-k", min=1, help="How many chunks.")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
) -> None:
    """Show the chunks nearest a query (cosine of their embeddings), best first."""
    from automatos.retrieval.base import ChunkRecord
    from automatos.retrieval.factory import close_embedder

    text = checked_query(query)
    settings = settings_with_store()
    embedder = embedder_of(settings)

    async def search(
        store: KnowledgeStore,
    ) -> tuple[list[KbDocument], list[tuple[ChunkRecord, float]]]:
        try:
            documents = await store.kb_documents()
            if not documents:
                return documents, []
            chunks, matrix = await store.kb_matrix(embedder.name)
            if not chunks:
                return documents, []
            hits = await nearest(embedder, text, matrix, top)
            return documents, [(chunks[hit.row], hit.score) for hit in hits]
        finally:
            await close_embedder(embedder)

    documents, found = with_store(settings.store, search)
    if not documents:
        typer.echo(EMPTY_KB)
        return
    others = [d.embedder for d in documents if d.embedder != embedder.name]
    if others:
        unsearched = mismatch(counted(len(others), "document", "documents"), others, embedder.name)
        if len(others) == len(documents):
            raise fail(f"{unsearched}: add the files again (automatos kb add PATH...)")
        warn(f"{unsearched}; add the files again to search them too")
    for rank, (chunk, score) in enumerate(found, start=1):
        if as_json:
            typer.echo(json_line(chunk, rank=rank, score=round(score, 4)))
            continue
        where = shown_path(chunk.path) + (f" > {chunk.heading}" if chunk.heading else "")
        page = f" (page {chunk.page})" if chunk.page is not None else ""
        typer.echo(f"{rank}. {score:.3f}  {where}{page}")
        typer.echo(f"   {one_line(_passage(chunk.text, chunk.heading))}")


def _passage(text: str, heading: str) -> str:
    """A chunk's text without the heading path it starts with (shown already)."""
    head, sep, rest = text.partition("\n\n")
    return rest if sep and heading and heading.endswith(head) else text


@kb_app.command("list")
def kb_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
) -> None:
    """List the documents of the knowledge base with their chunks, tokens and embedder."""
    settings = settings_with_store()

    async def read(store: KnowledgeStore) -> list[KbDocument]:
        return await store.kb_documents()

    documents = with_store(settings.store, read)
    if as_json:
        for document in documents:
            typer.echo(json_line(document))
        return
    if not documents:
        typer.echo(EMPTY_KB)
        return
    shown = [shown_path(d.path) for d in documents]
    width = max(len(path) for path in shown)
    for path, d in zip(shown, documents, strict=True):
        added = f"{d.added_at:%Y-%m-%d %H:%M}" if d.added_at else "-"
        typer.echo(
            f"{path:<{width}}  {d.kind:<4} {d.chunks:>5} chunks {d.tokens:>8} tokens  "
            f"{d.embedder}  {added}"
        )
    chunks = sum(d.chunks for d in documents)
    tokens = sum(d.tokens for d in documents)
    typer.echo(f"{len(documents)} documents, {chunks} chunks, {tokens} tokens")


@kb_app.command("remove")
def kb_remove(
    paths: Annotated[
        list[Path], typer.Argument(help="Files, or directories to remove every file under.")
    ],
) -> None:
    """Remove documents (and their chunks) from the knowledge base; the files stay."""
    settings = settings_with_store()
    keys = [path.resolve().as_posix() for path in paths]

    async def remove(store: KnowledgeStore) -> list[str]:
        return await store.kb_remove(keys)

    removed = with_store(settings.store, remove)
    missed = [
        key
        for key in keys
        if not any(path == key or path.startswith(key.rstrip("/") + "/") for path in removed)
    ]
    if not removed:
        raise fail(
            f"the knowledge base holds nothing at or under {', '.join(missed)} "
            "(automatos kb list shows what it holds)"
        )
    for key in missed:
        warn(f"the knowledge base holds nothing at or under {key}")
    for path in removed:
        typer.echo(f"removed {shown_path(path)}")
    typer.echo(f"removed {counted(len(removed), 'document', 'documents')}")
