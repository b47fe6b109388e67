"""``automatos run``: a request, typed, piped, in a file or a recipe, run to its answer."""

from __future__ import annotations

import contextlib
import sys
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

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from rich.console import Console

    from automatos.domain.event import Event
    from automatos.domain.level import Level
    from automatos.domain.request import WorkflowRequest
    from automatos.domain.result import Totals, WorkflowResult
    from automatos.engine import Engine
    from automatos.settings import PlanLimits

__all__ = ["run", "run_shown", "workflow_request"]

_STDIN = "-"


def run(
    request: Annotated[
        str | None,
        typer.Argument(
            help='What to do, in plain words; "-" reads it from standard input.',
            show_default=False,
        ),
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option("--file", "-f", help="Read the request from this text file."),
    ] = None,
    recipe: Annotated[
        Path | None,
        typer.Option(help="A YAML or JSON recipe: the request with its own subtasks."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the whole workflow result as JSON.")
    ] = False,
    quiet: Annotated[bool, typer.Option(help="No progress display.")] = False,
    level: Annotated[
        str | None,
        typer.Option(
            help="Run at this complexity level (atom, molecule, cell, organ, organism) "
            "instead of the one the engine finds.",
            show_default=False,
        ),
    ] = None,
    tool: ToolOption = None,
) -> None:
    """Run a request (typed, "-" for standard input, --file or --recipe); print the answer."""
    from asyncio import CancelledError

    from automatos import aio
    from automatos.errors import AutomatosError, ConfigurationError

    _given_one_way(request=request, file=file, recipe=recipe)
    chosen = _level(level) if level is not None else None  # before standard input is read
    settings = load_settings()
    tools = python_tools(tool)
    try:
        workflow = workflow_request(request, file, recipe, settings.plan)
        if chosen is not None:
            workflow = workflow.model_copy(update={"level": chosen})
    except AutomatosError as exc:
        raise fail(exc) from None
    try:
        from automatos.engine import Engine

        engine = Engine(settings, tools=tools)
    except ConfigurationError as exc:  # building the provider: no model, or not installed
        raise fail(exc, EXIT_NO_MODEL) from None
    from rich.console import Console

    err = Console(stderr=True)
    try:
        result = aio.run(_run(engine, workflow, err, show=not quiet))
    except AutomatosError as exc:
        raise fail(exc) from None
    except (KeyboardInterrupt, CancelledError):
        resume = (
            f"; go on with it: automatos runs resume {workflow.workflow_id[:12]}"
            if settings.store.enabled
            else ""
        )
        raise fail(f"interrupted{resume}", EXIT_INTERRUPTED) from None
    if as_json:
        typer.echo(result.model_dump_json(indent=2))
    else:
        _print_result(result, err)
    if result.status.value == "failed":
        raise typer.Exit(EXIT_FAILED)


def _level(name: str) -> Level:
    from automatos.domain.level import Level

    try:
        return Level(name.strip().lower())
    except ValueError:
        raise fail(
            f"--level {name[:40]!r} is not a level: use one of "
            f"{', '.join(lv.value for lv in Level)}",
            EXIT_USAGE,
        ) from None


def _given_one_way(**ways: object) -> None:
    """End the command (a usage error) unless exactly one way of giving the request is used:
    a request with a recipe used to replace the recipe's own, silently."""
    given = [
        "a request" if name == "request" else f"--{name}"
        for name, value in ways.items()
        if value is not None
    ]
    if len(given) != 1:
        raise fail(
            'give the request one way: as an argument ("-" for standard input), with '
            "--file, or in a --recipe file" + (f"; got {' and '.join(given)}" if given else ""),
            EXIT_USAGE,
        )


def workflow_request(
    text: str | None, file: Path | None, recipe: Path | None, limits: PlanLimits
) -> WorkflowRequest:
    """The request given one of three ways, checked against ``limits.max_request_chars``.

    Raises:
        InvalidRequestError: it is empty, too long, has no words, or its file is unreadable.
    """
    from automatos.domain.request import WorkflowRequest, check_request_text
    from automatos.files import check_utf8
    from automatos.recipe import load_recipe

    if recipe is not None:
        return load_recipe(recipe, limits=limits)
    if file is not None:
        text, source = _read_file(file, limits.max_request_chars), str(file)
    elif text == _STDIN:
        text, source = _read_stdin(limits.max_request_chars), "standard input"
    else:
        source = "the request"
    assert text is not None  # one of the three ways was checked to be given
    check_utf8(text, source)
    _check_length(text, limits.max_request_chars, source)
    return WorkflowRequest(text=check_request_text(text))  # "" too is an InvalidRequestError


def _check_length(text: str, limit: int, source: str) -> None:
    from automatos.errors import InvalidRequestError

    if len(text) > limit:
        raise InvalidRequestError(
            f"{source} is {len(text)} characters long; the limit is {limit} "
            "(setting plan.max_request_chars)"
        )


def _read_file(path: Path, limit: int) -> str:
    from automatos.errors import InvalidRequestError
    from automatos.files import read_user_file

    # Four bytes per character at most in UTF-8: a larger file cannot be within the limit.
    text = read_user_file(
        path, 4 * limit, setting=f"plan.max_request_chars: {limit} characters, 4 bytes each at most"
    )
    if not text.strip():
        raise InvalidRequestError(f"{path} is empty: write the request in it")
    return text


def _read_stdin(limit: int) -> str:
    from automatos.errors import InvalidRequestError

    if sys.stdin.isatty():
        typer.echo("reading the request from standard input; end it with Ctrl-D", err=True)
    try:
        text = sys.stdin.read(limit + 1)  # one more than allowed, to tell that it is too long
    except UnicodeDecodeError as exc:
        raise InvalidRequestError("standard input is not text in this terminal's encoding") from exc
    if not text.strip():
        raise InvalidRequestError(
            'standard input is empty: pipe the request in, e.g. echo "compare A and B" | '
            "automatos run -"
        )
    if len(text) > limit:
        raise InvalidRequestError(
            f"standard input is longer than the limit of {limit} characters "
            "(setting plan.max_request_chars)"
        )
    return text


async def _run(
    engine: Engine, request: WorkflowRequest, console: Console, *, show: bool
) -> WorkflowResult:
    return await run_shown(
        engine, console, lambda on_event: engine.run(request, on_event=on_event), show=show
    )


async def run_shown(
    engine: Engine,
    console: Console,
    start: Callable[[Callable[[Event], object] | None], Awaitable[WorkflowResult]],
    *,
    show: bool,
    also: Callable[[Event], object] | None = None,
) -> WorkflowResult:
    """``start(on_event)`` (a run or a resume of ``engine``) with the progress display on a
    terminal, and Ctrl-C recorded as an interruption; ``also`` sees every event too."""
    import asyncio
    import signal

    from automatos.progress import ProgressDisplay

    # Ctrl-C stops the run as a stopped process would: recorded interrupted, so that
    # `automatos runs resume` can go on with it (a cancel would be final). SIGTERM too: what
    # `timeout`, a CI's cancel and process managers send.
    loop, task = asyncio.get_running_loop(), asyncio.current_task()

    def interrupt() -> None:
        engine.begin_shutdown()
        if task is not None:
            task.cancel()

    stops = (signal.SIGINT, signal.SIGTERM)
    for stop in stops:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # no signals
            loop.add_signal_handler(stop, interrupt)
    try:
        async with engine:
            if not show or not console.is_terminal:
                return await start(also)
            with ProgressDisplay(console) as display:
                if also is None:
                    return await start(display.on_event)

                def both(event: Event) -> None:
                    display.on_event(event)
                    also(event)

                return await start(both)
    finally:
        for stop in stops:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(stop)


def _cost(totals: Totals) -> str:
    if totals.cost_known:
        return f"${totals.cost_usd:.4f}"
    return f"${totals.cost_usd:.4f} + unknown ({', '.join(totals.unpriced_models)} unpriced)"


def _print_shape(result: WorkflowResult, err: Console) -> None:
    """The level, its reasons and stages, and the plan by layers (what ran in parallel)."""
    from rich.text import Text

    if result.level is not None:
        choice = result.level
        err.print(
            Text.assemble(
                ("level ", "bold"),
                (choice.level.value, "bold"),
                f" ({choice.source}: {'; '.join(choice.reasons)}); stages: "
                + " > ".join(choice.stages),
            ),
            highlight=False,
        )
        # Stages the level has but that did not run (a setting, the model's profile, no
        # store): the ones a user would wonder about. Those not of this level, or not built
        # yet, are in `automatos runs show`.
        inherent = (f"{choice.level.value.capitalize()}:", "not built yet")
        for stage, reason in choice.skipped.items():
            if not reason.startswith(inherent):
                err.print(Text(f"  not run: {stage}: {reason}", style="dim"), highlight=False)
    layers = result.plan.layers
    steps = len(result.plan.subtasks)
    if steps < 2:
        return
    err.print(
        Text(f"plan: {steps} steps in {len(layers)} layer{'s' if len(layers) != 1 else ''}"),
        highlight=False,
    )
    for number, layer in enumerate(layers, 1):
        together = "  (in parallel)" if len(layer) > 1 else ""
        err.print(Text(f"  {number}. {', '.join(layer)}{together}"), highlight=False)


def _print_result(result: WorkflowResult, err: Console) -> None:
    from rich.text import Text

    # Everything here may quote the user's or the model's text (model names, warnings,
    # subtask ids, errors): Text, never rich markup, so "[/bold]" prints as it is.
    totals = result.totals
    counts = ", ".join(f"{n} {s.value}" for s, n in totals.by_status.items() if n)
    err.print(
        Text.assemble(
            (result.status.value, "bold"),
            f": {counts}; {totals.wall_time_s:.1f}s, "
            f"{totals.tokens_in + totals.tokens_out} tokens, {_cost(totals)}, "
            f"{totals.llm_calls} LLM call{'s' if totals.llm_calls != 1 else ''}",
        ),
        highlight=False,
    )
    _print_shape(result, err)
    from automatos.cli.collaboration import collaboration_lines

    for line in collaboration_lines(
        result.negotiation.model_dump(mode="json") if result.negotiation else None,
        {slug: use.model_dump(mode="json") for slug, use in result.prompts.items()},
        [f.model_dump(mode="json") for f in result.findings],
        all_prompts=False,
    ):
        err.print(Text(line), highlight=False)
    from automatos.cli.context import context_lines

    context = {sid: c.model_dump(mode="json") for sid, c in result.context.items()}
    for line in context_lines(context):
        err.print(Text(line), highlight=False)
    from automatos.cli.tool_calls import result_tool_calls, tool_call_lines

    for line in tool_call_lines(result_tool_calls(result.results)):
        err.print(Text(line), highlight=False)
    if result.quality is not None:
        q = result.quality
        review = "  needs review" if q.needs_review else ""
        err.print(
            Text(f"quality {q.q:.2f} (95% {q.low:.2f}-{q.high:.2f}, {q.method}){review}"),
            highlight=False,
        )
    for warning in result.warnings:
        err.print(Text.assemble(("warning: ", "yellow"), warning), highlight=False)
    for sid, r in result.results.items():
        if r.error is not None:
            line = f" {r.status.value}: {r.error.type}: {r.error.message}"
            err.print(Text.assemble((sid, "red"), line), highlight=False)
    if result.final_answer is not None:
        typer.echo(result.final_answer)
