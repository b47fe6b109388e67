"""``automatos runs``: stored workflow executions."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from automatos.cli.output import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_NO_MODEL,
    EXIT_USAGE,
    fail,
    load_settings,
)
from automatos.cli.plugins import ToolOption, python_tools
from automatos.cli.store import STORE_DISABLED, store_settings, with_store

if TYPE_CHECKING:
    from automatos.settings import StoreSettings
    from automatos.store.base import RunDetail
    from automatos.store.sql import SqlStore

__all__ = ["runs_app"]

runs_app = typer.Typer(help="Stored workflow executions.", no_args_is_help=True)

_SHOWN_MATCHES = 5
"""How many of the ids an ambiguous prefix matches are named."""
_ALL_RUNS = 2**31 - 1


@runs_app.command("list")
def runs_list(
    limit: Annotated[int, typer.Option(min=1, help="How many, newest first.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
) -> None:
    """List stored runs, newest first."""
    from automatos.store.database import shown_url

    settings = store_settings()
    runs = with_store(settings, lambda store: store.list_runs(limit))
    if as_json:
        for run in runs:
            typer.echo(run.model_dump_json())
        return
    if not runs:
        typer.echo(f"no stored runs yet (in {shown_url(settings)})")
        return
    for run in runs:
        totals = run.totals or {}
        seconds = f"{totals['wall_time_s']:.1f}s" if "wall_time_s" in totals else "-"
        typer.echo(
            f"{run.id[:12]}  {run.started_at:%Y-%m-%d %H:%M:%S}  {run.status:<9}  "
            f"{seconds:>7}  {run.request[:70]}"
        )


@runs_app.command("show")
def runs_show(
    run_id: Annotated[str, typer.Argument(help="A run id, or a unique prefix of one.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the run as JSON.")] = False,
) -> None:
    """Show one stored run: its stages, subtask results (with the tools agents called) and
    answer."""
    run = _one_run(store_settings(), run_id)
    if as_json:
        import json

        from automatos.domain.tools import hide_server_secrets

        shown = hide_server_secrets(run.model_dump(mode="json"))
        typer.echo(json.dumps(shown, indent=2, ensure_ascii=False))
        return
    _print_run(run)


@runs_app.command("resume")
def runs_resume(
    run_id: Annotated[
        str, typer.Argument(help="An interrupted run's id, or a unique prefix of one.")
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the whole workflow result as JSON.")
    ] = False,
    quiet: Annotated[bool, typer.Option(help="No progress display.")] = False,
    tool: ToolOption = None,
) -> None:
    """Resume an interrupted run (its process died, or its server stopped): the subtasks
    that ended are kept, the others run; print the answer, as `automatos run` does."""
    from asyncio import CancelledError

    from automatos import aio
    from automatos.cli.run import run_shown
    from automatos.domain.event import Event, WorkflowResumed
    from automatos.errors import AutomatosError, ConfigurationError

    settings = load_settings()
    if not settings.store.enabled:
        raise fail(STORE_DISABLED)
    workflow_id = _one_run(settings.store, run_id).id
    tools = python_tools(tool)
    try:
        from automatos.engine import Engine

        engine = Engine(settings, tools=tools)
    except ConfigurationError as exc:  # building the provider: no model, or not installed
        raise fail(exc, EXIT_NO_MODEL) from None
    from rich.console import Console

    from automatos.cli.run import _print_result

    err = Console(stderr=True)
    resumed: list[WorkflowResumed] = []

    def note(event: Event) -> None:
        if isinstance(event, WorkflowResumed):
            resumed.append(event)

    try:
        result = aio.run(
            run_shown(
                engine,
                err,
                lambda on_event: engine.resume(workflow_id, on_event=on_event),
                show=not quiet,
                also=note,
            )
        )
    except AutomatosError as exc:
        raise fail(exc) from None
    except (KeyboardInterrupt, CancelledError):
        raise fail(
            f"interrupted; go on with it: automatos runs resume {workflow_id[:12]}",
            EXIT_INTERRUPTED,
        ) from None
    if as_json:
        typer.echo(result.model_dump_json(indent=2))
    else:
        if resumed:
            first = resumed[0]
            err.print(
                "started over: the run had stopped before its plan was saved"
                if first.replanned
                else f"resumed: {first.carried_over} subtask(s) kept from the earlier run, "
                f"{first.remaining} run now",
                highlight=False,
            )
        _print_result(result, err)
    if result.status.value == "failed":
        raise typer.Exit(EXIT_FAILED)


def _one_run(settings: StoreSettings, run_id: str) -> RunDetail:
    """The stored run of an id or unique prefix; none ends the command, saying why."""
    if not run_id.strip():
        raise fail("give a run's id, or the start of one (automatos runs list)", EXIT_USAGE)
    run, matches = with_store(settings, lambda store: _find_run(store, run_id))
    if run is not None:
        return run
    if not matches:
        raise fail(f"no stored run has an id starting with {run_id!r} (automatos runs list)")
    shown = ", ".join(matches[:_SHOWN_MATCHES])
    more = len(matches) - _SHOWN_MATCHES
    raise fail(
        f"{run_id!r} is the start of {len(matches)} run ids: {shown}"
        + (f" and {more} more" if more > 0 else "")
        + "; give more of the id"
    )


async def _find_run(store: SqlStore, run_id: str) -> tuple[RunDetail | None, list[str]]:
    """The run of an id or unique prefix; without one, the ids that start with it (none: no
    such run; several: the prefix is ambiguous), which the store does not tell apart."""
    run = await store.get_run(run_id)
    if run is not None:
        return run, [run.id]
    # Only on this failing path, so reading every summary is affordable.
    runs = await store.list_runs(_ALL_RUNS)
    return None, [r.id for r in runs if r.id.startswith(run_id)]


def _print_run(run: RunDetail) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    out = Console()
    out.print(
        Text.assemble(
            (run.id, "bold"), f" {run.status}  started {run.started_at:%Y-%m-%d %H:%M:%S}"
        )
    )
    out.print(Text(f"request: {run.request}"))
    level = run.extra.get("level")
    if isinstance(level, dict):  # runs stored before levels existed have none
        reasons = "; ".join(str(r) for r in level.get("reasons", ()))
        out.print(Text(f"level: {level.get('level')} ({level.get('source')}: {reasons})"))
    for stage in run.stages:
        note = f"  {stage['error']}" if stage.get("error") else ""
        took = f"{stage['elapsed_s']:.2f}s" if "elapsed_s" in stage else "(imported)"
        phase = f" ({stage['phase']})" if stage.get("phase") else ""
        out.print(Text(f"  stage {stage['stage']}{phase}: {took}{note}"))
    if isinstance(level, dict):
        for name, reason in (level.get("skipped") or {}).items():
            out.print(Text(f"  not run: {name}: {reason}", style="dim"))
    table = Table("subtask", "status", "agent", "attempts", "seconds", "tokens", "output")
    for r in run.results:
        table.add_row(
            Text(r["subtask_id"]),
            Text(r["status"]),
            Text(r["agent"] or ""),
            str(r["attempts"]),
            f"{r['latency_s']:.1f}",
            str(r["tokens_in"] + r["tokens_out"]),
            Text((r["output"] or (r["error"] or {}).get("message", ""))[:60]),
        )
    out.print(table)
    from automatos.cli.tool_calls import tool_call_lines

    for line in tool_call_lines((r["subtask_id"], r.get("tool_calls")) for r in run.results):
        out.print(Text(line))
    from automatos.cli.collaboration import collaboration_lines

    for line in collaboration_lines(
        run.extra.get("negotiation"), run.extra.get("prompts"), run.extra.get("findings")
    ):
        out.print(Text(line))
    from automatos.cli.context import context_lines

    for line in context_lines(run.extra.get("context"), drops=True):
        out.print(Text(line))
    if run.quality:
        q = run.quality
        out.print(Text(f"quality {q['q']:.2f} (95% {q['low']:.2f}-{q['high']:.2f}, {q['method']})"))
    if run.error:
        out.print(Text(f"error: {run.error}", style="red"))
    if run.final_answer:
        out.print(Text(run.final_answer))


@runs_app.command("import-legacy")
def runs_import_legacy(
    file: Annotated[Path, typer.Argument(help="Seed WorkflowExecution records (JSON or JSONL).")],
) -> None:
    """Import the seed system's records, mapping their nine stages onto phases and stages."""
    from automatos.errors import AutomatosError
    from automatos.legacy import read_legacy

    settings = store_settings()
    try:
        runs = read_legacy(file)
    except AutomatosError as exc:
        raise fail(exc) from None

    async def save(store: SqlStore) -> list[str]:
        skipped = []
        for run in runs:
            found = await store.get_run(run.id)
            if found is not None and found.id == run.id:
                skipped.append(run.id)
                continue
            await store.start_execution(run.id, run.request, run.extra, run.started_at)
            await store.finish_execution(
                run.id,
                status=run.status,
                stages=run.stages,
                plan=None,
                totals=None,
                final_answer=run.final_answer,
                error=None,
                finished_at=run.finished_at,
            )
        return skipped

    skipped = with_store(settings, save)
    imported = [r.id for r in runs if r.id not in skipped]
    typer.echo(f"imported {len(imported)} legacy runs: {', '.join(imported) or '-'}")
    if skipped:
        typer.echo(f"already stored, left as they were: {', '.join(skipped)}")
