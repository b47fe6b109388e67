"""``automatos kb``: the knowledge base: files read, chunked and embedded for stage 3.

``add`` keeps each file under its resolved path: adding it again after an edit replaces its
chunks, adding it unchanged costs a read, and ``--prune`` removes the documents whose files
are gone. ``search`` asks the knowledge base as stage 3 does (the nearest chunks by cosine),
to see what a subtask about the query would be given.

With ``--json`` standard output is only JSON (JSON lines for ``list`` and ``search``: no
line when there is nothing to show); what is said to the reader goes to standard error.

Vectors are searched only against those of the same embedder: after a change of
``embeddings.*`` the files must be added again, and ``search`` says so rather than finding
nothing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shlex
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from automatos.cli.output import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    describe,
    fail,
    load_settings,
    warn,
)
from automatos.cli.store import STORE_DISABLED, with_store

if TYPE_CHECKING:
    from automatos.retrieval.base import Hit, KbDocument, KnowledgeStore, Vectors
    from automatos.retrieval.embedder import Embedder
    from automatos.retrieval.ingest import FileOutcome, IngestReport, ProgressCallback
    from automatos.settings import Settings

__all__ = [
    "EMPTY_KB",
    "checked_query",
    "counted",
    "embedder_errors",
    "embedder_of",
    "embedder_problem",
    "json_line",
    "kb_app",
    "mismatch",
    "nearest",
    "one_line",
    "say",
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


def say(message: str, *, as_json: bool) -> None:
    """A message for the reader (``the knowledge base is empty``): on standard output, or on
    standard error when standard output is JSON, which it must stay for a program reading it
    (no records: no line)."""
    typer.echo(message, err=as_json)


@contextlib.contextmanager
def embedder_errors(settings: Settings) -> Iterator[None]:
    """End the command with one line naming the settings when the embedder fails as a
    whole (its endpoint unreachable, its key refused)."""
    from automatos.errors import AutomatosError
    from automatos.retrieval.ingest import about_the_embedder

    try:
        yield
    except AutomatosError as exc:
        if not about_the_embedder(exc):
            raise
        raise fail(embedder_problem(settings, exc)) from None


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
    prune: Annotated[
        bool,
        typer.Option(
            "--prune",
            help="Remove the documents kept under these paths whose files no longer exist.",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Add files to the knowledge base (Markdown, reStructuredText, text, HTML, PDF).

    Directories are read recursively; hidden entries and files of other kinds are left out.

    A file added again unchanged is left as it is; a changed one has its chunks replaced.
    """
    from rich.console import Console

    from automatos.retrieval.factory import close_embedder, tokenizer_of
    from automatos.retrieval.ingest import ingest

    settings = settings_with_store()
    embedder = embedder_of(settings)
    tokenizer, count_tokens = tokenizer_of(settings)
    err = Console(stderr=True)
    done: list[FileOutcome] = []  # what was kept before a Ctrl-C, to say so

    async def add(store: KnowledgeStore) -> IngestReport:
        try:
            with _progress(err, shown=not as_json and err.is_terminal) as bar:
                loads = settings.embeddings.provider == "local"  # seconds before the first file
                return await ingest(
                    paths,
                    store,
                    _FirstCallShown(embedder, bar.loading) if loads else embedder,
                    tokenizer=tokenizer,
                    count_tokens=count_tokens,
                    settings=settings.context,
                    prune=prune,
                    on_progress=bar.update,
                    on_file=done.append,
                )
        finally:
            await close_embedder(embedder)

    try:
        report = with_store(settings.store, add)
    except KeyboardInterrupt:
        raise fail(_interrupted(done), EXIT_INTERRUPTED) from None
    stopped = None if report.stopped is None else _stopped(settings, report, report.stopped)
    if as_json:
        typer.echo(json.dumps(_json_report(report, stopped), ensure_ascii=False))
    else:
        _print_report(report, paths)
    if stopped is not None:
        raise fail(stopped)
    if report.failed:
        raise typer.Exit(EXIT_FAILED)


def embedder_problem(settings: Settings, error: BaseException) -> str:
    """An embedder's error as one line, with, for an endpoint's, where the endpoint comes
    from (the setting that names it) and the settings of the key when none is set."""
    from automatos.errors import LLMError

    text = describe(error).rstrip(".")
    config = settings.embeddings
    if config.provider != "openai" or not isinstance(error, LLMError):
        return text
    if config.base_url:
        where = f"{config.base_url} (AUTOMATOS_EMBEDDINGS__BASE_URL)"
    elif settings.llm.base_url:
        where = (
            f"the LLM's, {settings.llm.base_url} (AUTOMATOS_LLM__BASE_URL), as "
            "AUTOMATOS_EMBEDDINGS__BASE_URL is not set"
        )
    else:
        where = (
            "OpenAI's, as neither AUTOMATOS_EMBEDDINGS__BASE_URL nor AUTOMATOS_LLM__BASE_URL is set"
        )
    text += f"; the embeddings endpoint is {where}"
    keys = [key for key in (config.api_key, settings.llm.api_key) if key is not None]
    if not any(key.get_secret_value() for key in keys):
        text += "; no API key is set (AUTOMATOS_EMBEDDINGS__API_KEY, else AUTOMATOS_LLM__API_KEY)"
    return text


def _stopped(settings: Settings, report: IngestReport, error: BaseException) -> str:
    """Why the adding stopped, and what became of the files."""
    kept = report.count("added") + report.count("replaced")
    unread = counted(len(report.unread), "file", "files")
    before = (
        f"{counted(kept, 'file', 'files')} added before it stay" if kept else "nothing was added"
    )
    return (
        f"the embedder failed, so the adding stopped ({before}; {unread} not read: add them "
        f"again once it works): {embedder_problem(settings, error)}"
    )


def _interrupted(done: Sequence[FileOutcome]) -> str:
    """What a Ctrl-C left: every file is kept in its own transaction, so those done stay."""
    added = sum(1 for file in done if file.outcome == "added")
    replaced = sum(1 for file in done if file.outcome == "replaced")
    if not added and not replaced:
        return "interrupted before any file was added; add the same paths again"
    parts = [f"{added} added"] if added else []
    parts += [f"{replaced} replaced"] if replaced else []
    files = counted(added + replaced, "file", "files")
    return (
        f"interrupted: {files} ({', '.join(parts)}) before it stay in the knowledge base; "
        "add the same paths again for the rest"
    )


def _json_report(report: IngestReport, stopped: str | None) -> dict[str, Any]:
    return {
        "files": [dataclasses.asdict(file) for file in report.files],
        "totals": report.totals,
        "left_out": dict(report.left_out),
        "gone": list(report.gone),
        "stopped": stopped,
        "not_read": list(report.unread),
        "seconds": round(report.seconds, 3),
    }


class _FirstCallShown:
    """An embedder that says when its first call starts and ends: the local model loads
    during it, for seconds in which no file is done and the bar would seem stuck."""

    def __init__(self, inner: Embedder, loading: Callable[[bool], None]) -> None:
        self.inner = inner
        self.name = inner.name
        self.dimension = inner.dimension
        self._loading: Callable[[bool], None] | None = loading

    async def embed(self, texts: Sequence[str]) -> Vectors:
        loading, self._loading = self._loading, None
        if loading is None:
            return await self.inner.embed(texts)
        loading(True)
        try:
            return await self.inner.embed(texts)
        finally:
            loading(False)


@dataclasses.dataclass(frozen=True, slots=True)
class _Bar:
    """What ``kb add`` tells its progress bar."""

    update: ProgressCallback
    loading: Callable[[bool], None]


def _progress(console: Any, *, shown: bool) -> contextlib.AbstractContextManager[_Bar]:
    """A progress bar of files (and chunks) on standard error, while ``shown``."""

    @contextlib.contextmanager
    def bar() -> Iterator[_Bar]:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[done]}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as progress:
            task = progress.add_task("adding", total=None, done="files")

            def update(done: int, total: int, chunks: int) -> None:
                files = "file" if total == 1 else "files"
                made = counted(chunks, "chunk", "chunks")
                progress.update(task, completed=done, total=total, done=f"{files}, {made}")

            def loading(started: bool) -> None:
                what = "loading the embedding model…" if started else "adding"
                progress.update(task, description=what)

            yield _Bar(update, loading)

    @contextlib.contextmanager
    def silent() -> Iterator[_Bar]:
        yield _Bar(lambda done, total, chunks: None, lambda started: None)

    return bar() if shown else silent()


_SHOWN_GONE = 5
"""How many of the documents gone from disk are named."""


def _print_report(report: IngestReport, named: Sequence[Path]) -> None:
    from automatos.retrieval.ingest import left_out_text

    for file in report.files:
        path = shown_path(file.path)
        if file.outcome == "failed":
            reason = file.reason if file.path in file.reason else f"{path}: {file.reason}"
            typer.secho("error: ", fg="red", bold=True, err=True, nl=False)
            typer.echo(reason, err=True)
        elif file.outcome == "skipped":
            typer.echo(f"skipped   {path}: {file.reason}")
        elif file.outcome == "removed":
            typer.echo(f"removed   {path}  ({file.reason})")
        elif file.outcome != "unchanged":
            typer.echo(
                f"{file.outcome:<9} {path}  ({counted(file.chunks, 'chunk', 'chunks')}, "
                f"{counted(file.tokens, 'token', 'tokens')})"
            )
            if file.reason:
                warn(f"{path}: {file.reason}")
    if report.left_out:
        typer.echo(left_out_text(report.left_out))
    totals = report.totals
    outcomes = ["added", "replaced", "unchanged", "skipped", "failed"]
    if totals["removed"]:
        outcomes.append("removed")
    counts = ", ".join(f"{totals[outcome]} {outcome}" for outcome in outcomes)
    typer.echo(
        f"{counts}; {counted(totals['chunks'], 'chunk', 'chunks')} "
        f"({counted(totals['tokens'], 'token', 'tokens')}) embedded in {report.seconds:.1f}s"
    )
    if report.gone:
        warn(_gone(report.gone, named))


def _gone(gone: Sequence[str], named: Sequence[Path]) -> str:
    """``2 stored documents under docs no longer exist: …; `automatos kb add --prune docs`
    removes them``."""
    shown = ", ".join(shown_path(path) for path in gone[:_SHOWN_GONE])
    if len(gone) > _SHOWN_GONE:
        shown += f" and {len(gone) - _SHOWN_GONE} more"
    typed = [str(path) for path in named]
    exist = "exists" if len(gone) == 1 else "exist"
    them = "it" if len(gone) == 1 else "them"
    return (
        f"{counted(len(gone), 'stored document', 'stored documents')} under "
        f"{', '.join(typed)} no longer {exist} on disk: {shown}; "
        f"`automatos kb add --prune {shlex.join(typed)}` removes {them}"
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
            with embedder_errors(settings):
                hits = await nearest(embedder, text, matrix, top)
            return documents, [(chunks[hit.row], hit.score) for hit in hits]
        finally:
            await close_embedder(embedder)

    documents, found = with_store(settings.store, search)
    if not documents:
        say(EMPTY_KB, as_json=as_json)
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
    if not documents:
        say(EMPTY_KB, as_json=as_json)
        return
    if as_json:
        for document in documents:
            typer.echo(json_line(document))
        return
    shown = [shown_path(d.path) for d in documents]
    width = max(len(path) for path in shown)
    for path, d in zip(shown, documents, strict=True):
        added = f"{d.added_at:%Y-%m-%d %H:%M}" if d.added_at else "-"
        chunks = "chunk" if d.chunks == 1 else "chunks"
        tokens = "token" if d.tokens == 1 else "tokens"
        typer.echo(
            f"{path:<{width}}  {d.kind:<4} {d.chunks:>5} {chunks:<6} {d.tokens:>8} {tokens:<6}  "
            f"{d.embedder}  {added}"
        )
    typer.echo(
        f"{counted(len(documents), 'document', 'documents')}, "
        f"{counted(sum(d.chunks for d in documents), 'chunk', 'chunks')}, "
        f"{counted(sum(d.tokens for d in documents), 'token', 'tokens')}"
    )


@kb_app.command("remove")
def kb_remove(
    paths: Annotated[
        list[Path], typer.Argument(help="Files, or directories to remove every file under.")
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the paths removed, and not found, as JSON.")
    ] = False,
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
    if as_json:
        typer.echo(json.dumps({"removed": removed, "not_found": missed}, ensure_ascii=False))
    if not removed:
        raise fail(
            f"the knowledge base holds nothing at or under {', '.join(missed)} "
            "(automatos kb list shows what it holds)"
        )
    for key in missed:
        warn(f"the knowledge base holds nothing at or under {key}")
    if as_json:
        return
    for path in removed:
        typer.echo(f"removed {shown_path(path)}")
    typer.echo(f"removed {counted(len(removed), 'document', 'documents')}")
