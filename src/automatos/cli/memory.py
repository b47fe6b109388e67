"""``automatos memory``: what workflows left for later ones (stage 8): episodes of runs,
what each agent did with each task type, and the workspace's lessons.

``search`` asks memory as stage 3 recalls it (the nearest by cosine, of the configured
embedder, above a floor); ``forget`` deletes memories that should no longer be recalled. A
run is named by its workflow id or a unique prefix of it, as ``automatos runs show`` takes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

import typer

from automatos.cli.kb import (
    checked_query,
    counted,
    embedder_errors,
    embedder_of,
    json_line,
    mismatch,
    nearest,
    one_line,
    say,
    settings_with_store,
)
from automatos.cli.output import EXIT_USAGE, fail, warn
from automatos.cli.store import with_store

if TYPE_CHECKING:
    from automatos.memory.base import Memory, MemoryStore
    from automatos.store.sql import SqlStore

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
_MIN_SCORE = 0.2
"""``search``'s floor: all-MiniLM-L6-v2 scores unrelated texts below about 0.3, and a memory
at cosine 0.01 is not recalled, only listed because it is the least far."""
_ALL_RUNS = 2**31 - 1
_SHOWN_MATCHES = 5
"""How many of the ids an ambiguous prefix matches are named."""
_RUN_HELP = "its workflow id, or a unique prefix of it as automatos runs list shows"


async def _run_id(store: SqlStore, given: str) -> str:
    """The workflow id ``given`` names, whole or by a unique prefix, among the stored runs
    (found as ``automatos runs show`` finds one) and the runs memories name (a run's memories
    outlive the run's record if it was never stored); one error line if it names none, or
    several."""
    if not given:
        raise fail("the run id is empty (automatos runs list shows them)")
    if await store.memories(workflow_id=given, limit=1):
        return given
    run = await store.get_run(given)  # a whole id, or a prefix of one run's only
    if run is not None and run.id == given:
        return given
    # Only on this path (a prefix): reading every run's summary is affordable here.
    runs = [r.id for r in await store.list_runs(_ALL_RUNS) if r.id.startswith(given)]
    remembered = [m.workflow_id for m in await store.memories(limit=_MOST)]
    matches = sorted({*runs, *(wid for wid in remembered if wid.startswith(given))})
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise fail(
            f"no run or memory has a workflow id starting with {given!r} "
            "(automatos runs list, automatos memory list)"
        )
    shown = ", ".join(matches[:_SHOWN_MATCHES])
    more = len(matches) - _SHOWN_MATCHES
    raise fail(
        f"{given!r} is the start of {len(matches)} workflow ids: {shown}"
        + (f" and {more} more" if more > 0 else "")
        + "; give more of the id"
    )


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
        str | None, typer.Option("--run", help=f"Only memories of this run ({_RUN_HELP}).")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=_MOST, help="How many, newest first.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
) -> None:
    """List memories, newest first."""
    settings = settings_with_store()

    async def read(store: SqlStore) -> list[Memory]:
        workflow_id = None if run is None else await _run_id(store, run)
        return await store.memories(kind, agent=agent, workflow_id=workflow_id, limit=limit)

    memories = with_store(settings.store, read)
    if not memories:
        filtered = kind is not None or agent is not None or run is not None
        say("no memories match" if filtered else EMPTY_MEMORY, as_json=as_json)
        return
    if as_json:
        for memory in memories:
            typer.echo(json_line(memory))
        return
    for memory in memories:
        typer.echo(_line(memory))


@memory_app.command("search")
def memory_search(
    query: Annotated[str, typer.Argument(help="What to recall.")],
    top: Annotated[int, typer.Option("--top", "-k", min=1, help="How many memories.")] = 5,
    min_score: Annotated[
        float,
        typer.Option(
            "--min-score",
            min=-1.0,
            max=1.0,
            help="Leave out memories whose cosine with the query is below this.",
        ),
    ] = _MIN_SCORE,
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
            with embedder_errors(settings):
                hits = await nearest(embedder, text, matrix, top)
            return newest, len(memories), [(memories[hit.row], hit.score) for hit in hits]
        finally:
            await close_embedder(embedder)

    newest, searched, found = with_store(settings.store, search)
    if not newest:
        say(EMPTY_MEMORY, as_json=as_json)
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
    passing = [(memory, score) for memory, score in found if score >= min_score]
    if found and not passing:
        say(
            f"no memory has a cosine of {min_score:g} or more with the query (the nearest: "
            f"{found[0][1]:.3f}); --min-score sets the floor",
            as_json=as_json,
        )
        return
    for rank, (memory, score) in enumerate(passing, start=1):
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
        str | None, typer.Option("--run", help=f"Every memory of this run ({_RUN_HELP}).")
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

    async def forget(store: SqlStore) -> tuple[int, str | None, list[int]]:
        """How many went, the run's whole id, and the ids that named no memory."""
        if run is not None:
            workflow_id = await _run_id(store, run)
            return await store.forget(workflow_id=workflow_id), workflow_id, []
        if everything:
            return await store.forget(everything=True), None, []
        gone = 0
        unknown: list[int] = []
        for memory_id in dict.fromkeys(ids or ()):  # one by one, to name those not found
            forgotten = await store.forget([memory_id])
            gone += forgotten
            if not forgotten:
                unknown.append(memory_id)
        return gone, None, unknown

    gone, workflow_id, unknown = with_store(settings.store, forget)
    if unknown:
        which = "id" if len(unknown) == 1 else "ids"
        nothing = f"no memory has the {which} {', '.join(map(str, unknown))}"
        if not gone:
            raise fail(f"{nothing} (automatos memory list)")
        warn(f"{nothing}: nothing was forgotten for {'it' if len(unknown) == 1 else 'them'}")
    if gone == 0 and workflow_id is not None:
        raise fail(f"there are no memories of run {workflow_id} (automatos memory list)")
    typer.echo(f"forgot {counted(gone, 'memory', 'memories')}")
