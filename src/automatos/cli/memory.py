"""``automatos memory``: what workflows left for later ones (stage 8): episodes of runs,
what each agent did with each task type, and the workspace's lessons.

``search`` asks memory as stage 3 recalls it (the nearest by cosine, of the configured
embedder); ``forget`` deletes memories that should no longer be recalled.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

import typer

from automatos.cli.kb import (
    checked_query,
    counted,
    embedder_of,
    json_line,
    mismatch,
    nearest,
    one_line,
    settings_with_store,
)
from automatos.cli.output import EXIT_USAGE, fail, warn
from automatos.cli.store import with_store

if TYPE_CHECKING:
    from automatos.memory.base import Memory, MemoryStore

__all__ = ["EMPTY_MEMORY", "memory_app"]

memory_app = typer.Typer(
    help="What workflows left for later ones: episodes, agents' experience, lessons.",
    no_args_is_help=True,
)

EMPTY_MEMORY = "no memories yet: workflows leave them as they finish (setting memory.enabled)"

_Kind = Literal["episodic", "agent", "collective"]
"""The kinds of :data:`automatos.memory.base.MEMORY_KINDS`, here so that ``--help`` does not
import the memory package (and numpy with it)."""
_MOST = 10_000
"""The most memories one read returns (the store's bound): ``list --limit`` is at most this,
and ``search`` counts the memories of other embedders among the newest this many."""


def _about(memory: Memory) -> str:
    """Whom and what a memory is about, and how it went."""
    parts = [part for part in (memory.agent, memory.task_type) if part]
    if memory.quality is not None:
        parts.append(f"Q {memory.quality:.2f}")
    if memory.succeeded is not None:
        parts.append("succeeded" if memory.succeeded else "failed")
    if memory.count > 1:
        parts.append(f"×{memory.count}")
    return ", ".join(parts)


def _line(memory: Memory) -> str:
    when = memory.updated_at or memory.created_at
    shown = f"{when:%Y-%m-%d %H:%M}" if when else "-"
    about = _about(memory)
    return (
        f"{memory.id:>6}  {memory.kind:<10} {shown}  {memory.workflow_id[:12]:<12}  "
        + (f"[{about}] " if about else "")
        + one_line(memory.text, 80)
    )


@memory_app.command("list")
def memory_list(
    kind: Annotated[_Kind | None, typer.Option(help="Only memories of this kind.")] = None,
    agent: Annotated[str | None, typer.Option(help="Only memories about this agent.")] = None,
    run: Annotated[
        str | None, typer.Option("--run", help="Only memories of this run (its workflow id).")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=_MOST, help="How many, newest first.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
) -> None:
    """List memories, newest first."""
    settings = settings_with_store()

    async def read(store: MemoryStore) -> list[Memory]:
        return await store.memories(kind, agent=agent, workflow_id=run, limit=limit)

    memories = with_store(settings.store, read)
    if as_json:
        for memory in memories:
            typer.echo(json_line(memory))
        return
    if not memories:
        filtered = kind is not None or agent is not None or run is not None
        typer.echo("no memories match" if filtered else EMPTY_MEMORY)
        return
    for memory in memories:
        typer.echo(_line(memory))


@memory_app.command("search")
def memory_search(
    query: Annotated[str, typer.Argument(help="What to recall.")],
    top: Annotated[int, typer.Option("--top", "-k", min=1, help="How many memories.")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
) -> None:
    """Show the memories nearest a query (cosine of their embeddings), best first."""
    from automatos.retrieval.factory import close_embedder

    text = checked_query(query)
    settings = settings_with_store()
    embedder = embedder_of(settings)

    async def search(store: MemoryStore) -> tuple[list[Memory], int, list[tuple[Memory, float]]]:
        try:
            newest = await store.memories(limit=_MOST)
            if not newest:
                return newest, 0, []
            memories, matrix = await store.memory_matrix(embedder.name)
            if not memories:
                return newest, 0, []
            hits = await nearest(embedder, text, matrix, top)
            return newest, len(memories), [(memories[hit.row], hit.score) for hit in hits]
        finally:
            await close_embedder(embedder)

    newest, searched, found = with_store(settings.store, search)
    if not newest:
        typer.echo(EMPTY_MEMORY)
        return
    others = [m.embedder for m in newest if m.embedder != embedder.name]
    if others:
        some = counted(len(others), "memory", "memories")
        unsearched = mismatch(
            f"at least {some}" if len(newest) == _MOST else some, others, embedder.name
        )
        if not searched:
            raise fail(unsearched)
        warn(unsearched)
    for rank, (memory, score) in enumerate(found, start=1):
        if as_json:
            typer.echo(json_line(memory, rank=rank, score=round(score, 4)))
            continue
        typer.echo(f"{rank}. {score:.3f} {_line(memory)}")


@memory_app.command("forget")
def memory_forget(
    ids: Annotated[
        list[int] | None, typer.Argument(help="Memory ids (automatos memory list).")
    ] = None,
    run: Annotated[
        str | None, typer.Option("--run", help="Every memory of this run (its workflow id).")
    ] = None,
    everything: Annotated[bool, typer.Option("--all", help="Every memory of the workspace.")] = (
        False
    ),
    yes: Annotated[bool, typer.Option("--yes", help="Confirm --all.")] = False,
) -> None:
    """Forget memories: these ids, every memory of a run (--run), or all of them (--all --yes)."""
    chosen = [bool(ids), run is not None, everything]
    if sum(chosen) != 1:
        raise fail("say what to forget one way: memory ids, --run ID, or --all --yes", EXIT_USAGE)
    if everything and not yes:
        raise fail("--all forgets every memory of the workspace: add --yes to confirm", EXIT_USAGE)
    settings = settings_with_store()

    async def forget(store: MemoryStore) -> int:
        return await store.forget(ids or (), workflow_id=run, everything=everything)

    gone = with_store(settings.store, forget)
    if gone == 0 and not everything:
        which = f"of run {run}" if run is not None else "with these ids"
        raise fail(f"there are no memories {which} (automatos memory list)")
    typer.echo(f"forgot {counted(gone, 'memory', 'memories')}")
