"""The ``automatos`` command: ``run``, ``graph``, ``version``."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
import yaml
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table
from rich.text import Text

from automatos import aio
from automatos.domain.agent import AgentSpec
from automatos.domain.plan import Plan
from automatos.domain.request import WorkflowRequest
from automatos.domain.result import WorkflowResult
from automatos.engine import Engine
from automatos.errors import AutomatosError, ConfigurationError, InvalidRequestError
from automatos.files import read_user_file
from automatos.graph import build_plan
from automatos.legacy import read_legacy
from automatos.llm.factory import build_provider, wrap_provider
from automatos.llm.structured import describe_error
from automatos.phases.evaluate.labelled import read_labelled, score_lines
from automatos.phases.evaluate.scorers import HeuristicScorer, LLMJudgeScorer
from automatos.phases.plan.decompose import parse_plan
from automatos.progress import ProgressDisplay
from automatos.recipe import MAX_RECIPE_BYTES, load_recipe, parse_recipe
from automatos.registry import load_agents, registered_agents
from automatos.scoring import Scorer
from automatos.settings import Settings
from automatos.store.base import OVERALL
from automatos.store.database import shown_url
from automatos.store.sql import SqlStore

__all__ = ["app", "main"]

T = TypeVar("T")

app = typer.Typer(
    name="automatos",
    help="Plan a request into a graph of subtasks and run it with a team of LLM agents.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _fail(message: str, code: int = 1) -> typer.Exit:
    line = Text("error: ", style="bold red")
    line.append(message)
    Console(stderr=True).print(line, highlight=False, soft_wrap=True)
    return typer.Exit(code)


@app.command()
def run(
    request: Annotated[
        str | None, typer.Argument(help="What to do, in plain words.", show_default=False)
    ] = None,
    recipe: Annotated[
        Path | None,
        typer.Option(help="A YAML or JSON recipe: the request with its own subtasks."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the whole workflow result as JSON.")
    ] = False,
    quiet: Annotated[bool, typer.Option(help="No progress display.")] = False,
) -> None:
    """Run a request (or a recipe) and print the final answer."""
    try:
        settings = Settings()
        workflow = _request(request, recipe)
        engine = Engine(settings)
    except ConfigurationError as exc:
        raise _fail(str(exc), 2) from None
    except (AutomatosError, ValidationError) as exc:
        raise _fail(_message(exc)) from None
    err = Console(stderr=True)
    try:
        result = aio.run(_run(engine, workflow, err, show=not quiet))
    except AutomatosError as exc:
        raise _fail(f"{type(exc).__name__}: {exc}") from None
    except KeyboardInterrupt:
        raise _fail("cancelled", 130) from None
    if as_json:
        typer.echo(result.model_dump_json(indent=2))
    else:
        _print_result(result, err)
    if result.status.value == "failed":
        raise typer.Exit(1)


def _request(text: str | None, recipe: Path | None) -> WorkflowRequest:
    if recipe is not None:
        return load_recipe(recipe, request=text)
    if not text or not text.strip():
        raise InvalidRequestError('give a request, e.g. automatos run "compare A and B"')
    return WorkflowRequest(text=text)


def _message(exc: Exception) -> str:
    return describe_error(exc) if isinstance(exc, ValidationError) else str(exc)


async def _run(
    engine: Engine, request: WorkflowRequest, console: Console, *, show: bool
) -> WorkflowResult:
    async with engine:
        if not show or not console.is_terminal:
            return await engine.run(request)
        with ProgressDisplay(console) as display:
            return await engine.run(request, on_event=display.on_event)


def _print_result(result: WorkflowResult, err: Console) -> None:
    totals = result.totals
    counts = ", ".join(f"{n} {s.value}" for s, n in totals.by_status.items() if n)
    err.print(
        f"[bold]{result.status.value}[/]: {counts}; {totals.wall_time_s:.1f}s, "
        f"{totals.tokens_in + totals.tokens_out} tokens, ${totals.cost_usd:.4f}, "
        f"{totals.llm_calls} LLM calls",
        highlight=False,
    )
    if result.quality is not None:
        q = result.quality
        review = "  needs review" if q.needs_review else ""
        err.print(
            f"quality {q.q:.2f} (95% {q.low:.2f}-{q.high:.2f}, {q.method}){review}",
            highlight=False,
        )
    for warning in result.warnings:
        err.print(f"[yellow]warning:[/] {warning}", highlight=False)
    for sid, r in result.results.items():
        if r.error is not None:
            err.print(f"[red]{sid}[/] {r.status.value}: {r.error.type}: {r.error.message}")
    if result.final_answer is not None:
        typer.echo(result.final_answer)


@app.command()
def graph(
    plan_file: Annotated[
        Path, typer.Argument(help="A plan or recipe file (JSON or YAML) with 'subtasks'.")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print the analysis as JSON.")] = False,
) -> None:
    """Check a plan and print its analysis: layers, critical path, per-subtask metadata."""
    settings = Settings()
    try:
        plan = _load_plan(plan_file, settings)
    except AutomatosError as exc:
        raise _fail(f"{type(exc).__name__}: {exc}") from None
    if as_json:
        typer.echo(json.dumps(_plan_json(plan), indent=2))
        return
    out = Console()
    out.print(f"[bold]{len(plan.subtasks)} subtasks in {len(plan.layers)} layers[/]")
    for i, layer in enumerate(plan.layers):
        out.print(f"  layer {i}: {', '.join(layer)}", highlight=False)
    out.print(
        f"critical path (cost {plan.critical_path_cost:g}): {' -> '.join(plan.critical_path)}",
        highlight=False,
    )
    table = Table("subtask", "layer", "depth", "depends on", "needed by", "slack", "critical")
    for s in plan.subtasks:
        g = s.graph
        table.add_row(
            s.id,
            str(g.layer),
            str(g.depth),
            ", ".join(g.predecessors),
            ", ".join(g.successors),
            f"{g.slack:g}",
            "yes" if g.on_critical_path else "",
        )
    out.print(table)


def _load_plan(path: Path, settings: Settings) -> Plan:
    text = read_user_file(path, MAX_RECIPE_BYTES)
    stripped = text.lstrip()
    if stripped.startswith("[") or (stripped.startswith("{") and '"request"' not in text):
        # A bare plan reads like a decomposer's answer; the file's own size limit applies.
        limits = settings.plan.model_copy(update={"max_plan_chars": MAX_RECIPE_BYTES})
        return parse_plan(text, limits)
    recipe = parse_recipe(text, source=str(path), request="(plan file)")
    return build_plan(recipe.subtasks or (), settings.plan)


def _plan_json(plan: Plan) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(plan.model_dump_json())
    return data


@app.command("eval")
def eval_file(
    file: Annotated[Path, typer.Argument(help='JSONL of {"task": ..., "output": ...} lines.')],
    judge: Annotated[
        bool, typer.Option("--judge", help="Score with the LLM judge instead of heuristics.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="End with the summary as one JSON object.")
    ] = False,
) -> None:
    """Score each line's output; with labels (1 good, 0 bad), report the AUC and mean gap."""
    try:
        lines = read_labelled(file)
        llm_settings = Settings().llm
        scorer: Scorer = (
            LLMJudgeScorer(wrap_provider(build_provider(llm_settings), llm_settings))
            if judge
            else HeuristicScorer()
        )
    except ConfigurationError as exc:
        raise _fail(str(exc), 2) from None
    except AutomatosError as exc:
        raise _fail(str(exc)) from None
    report = aio.run(score_lines(lines, scorer))
    for score in report.scores:
        typer.echo(f"{score:.3f}")
    if report.auc is not None and not as_json:
        err = Console(stderr=True)
        err.print(
            f"AUC {report.auc:.3f}; good mean {report.good_mean:.3f}, bad mean "
            f"{report.bad_mean:.3f} (gap {report.good_mean - report.bad_mean:.3f}); "  # type: ignore[operator]
            f"range {report.min:.3f}-{report.max:.3f}",
            highlight=False,
        )
    if as_json:
        summary = report.model_dump(exclude={"scores"})
        typer.echo(
            json.dumps({k: summary[k] for k in ("auc", "good_mean", "bad_mean", "min", "max")})
        )


runs_app = typer.Typer(help="Stored workflow executions.", no_args_is_help=True)
app.add_typer(runs_app, name="runs")


async def _with_store(action: Callable[[SqlStore], Awaitable[T]]) -> T:
    try:
        store = await SqlStore.open(Settings().store)
    except AutomatosError as exc:
        raise _fail(f"{type(exc).__name__}: {exc}") from None
    try:
        return await action(store)
    finally:
        await store.aclose()


@runs_app.command("list")
def runs_list(
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
) -> None:
    """List stored runs, newest first."""
    runs = aio.run(_with_store(lambda store: store.list_runs(limit)))
    if as_json:
        for run in runs:
            typer.echo(run.model_dump_json())
        return
    if not runs:
        typer.echo(f"no stored runs yet (in {shown_url(Settings().store)})")
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
    """Show one stored run: its stages, subtask results and answer."""
    run = aio.run(_with_store(lambda store: store.get_run(run_id)))
    if run is None:
        raise _fail(f"no run {run_id!r} (or the prefix is not unique)")
    if as_json:
        typer.echo(run.model_dump_json(indent=2))
        return
    out = Console()
    out.print(f"[bold]{run.id}[/] {run.status}  started {run.started_at:%Y-%m-%d %H:%M:%S}")
    out.print(Text(f"request: {run.request}"))
    for stage in run.stages:
        note = f"  {stage['error']}" if stage.get("error") else ""
        took = f"{stage['elapsed_s']:.2f}s" if "elapsed_s" in stage else "(imported)"
        out.print(Text(f"  stage {stage['stage']}: {took}{note}"))
    table = Table("subtask", "status", "agent", "attempts", "seconds", "tokens", "output")
    for r in run.results:
        table.add_row(
            r["subtask_id"],
            r["status"],
            r["agent"] or "",
            str(r["attempts"]),
            f"{r['latency_s']:.1f}",
            str(r["tokens_in"] + r["tokens_out"]),
            (r["output"] or (r["error"] or {}).get("message", ""))[:60],
        )
    out.print(table)
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
    try:
        runs = read_legacy(file)
    except AutomatosError as exc:
        raise _fail(str(exc)) from None

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

    skipped = aio.run(_with_store(save))
    imported = [r.id for r in runs if r.id not in skipped]
    typer.echo(f"imported {len(imported)} legacy runs: {', '.join(imported) or '-'}")
    if skipped:
        typer.echo(f"already stored, left as they were: {', '.join(skipped)}")


agents_app = typer.Typer(help="The agent registry.", no_args_is_help=True)
app.add_typer(agents_app, name="agents")


async def _agents_with_metrics(store: SqlStore) -> tuple[list[AgentSpec], dict[str, Any]]:
    return await registered_agents(store), await store.agent_metrics()


@agents_app.command("list")
def agents_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
) -> None:
    """List the workspace's agents with what was learned about them."""
    agents, metrics = aio.run(_with_store(_agents_with_metrics))
    if as_json:
        for agent in agents:
            typer.echo(agent.model_dump_json())
        return
    for agent in agents:
        m = metrics.get(agent.name, {}).get(OVERALL)
        learned = (
            f"runs {m.total_executions}, success {m.success_rate:.2f}, quality {m.avg_quality:.2f}"
            if m
            else "no runs yet"
        )
        typer.echo(f"{agent.name:<14} {learned:<40} {agent.description[:60]}")


@agents_app.command("show")
def agents_show(name: Annotated[str, typer.Argument(help="The agent's name.")]) -> None:
    """Show one agent: its definition and its learned metrics, overall and per task type."""
    agents, metrics = aio.run(_with_store(_agents_with_metrics))
    agent = next((a for a in agents if a.name == name), None)
    if agent is None:
        raise _fail(f"no agent {name!r}; known: {', '.join(a.name for a in agents)}")
    typer.echo(yaml.safe_dump(agent.model_dump(mode="json"), sort_keys=False).rstrip())
    for kind, m in sorted(metrics.get(name, {}).items()):
        label = "overall" if kind == OVERALL else kind
        typer.echo(
            f"{label}: runs {m.total_executions}, success_rate {m.success_rate:.3f}, "
            f"avg_quality {m.avg_quality:.3f}, avg_latency_s {m.avg_latency_s:.2f}, "
            f"avg_cost_usd {m.avg_cost_usd:.5f}"
        )


@agents_app.command("add")
def agents_add(
    name: Annotated[str, typer.Argument(help="A new or existing agent's name.")],
    description: Annotated[str, typer.Option(help="What the agent is for.")] = "",
    capability: Annotated[
        list[str] | None, typer.Option(help="A capability; repeat for several.")
    ] = None,
    model: Annotated[str | None, typer.Option(help="Model to call; default: the engine's.")] = None,
    system_prompt: Annotated[str | None, typer.Option(help="The agent's system prompt.")] = None,
    temperature: Annotated[float | None, typer.Option(help="Sampling temperature.")] = None,
    cost_hint_usd: Annotated[
        float | None, typer.Option(help="Expected dollars per subtask.")
    ] = None,
) -> None:
    """Add an agent, or replace the one of the same name."""
    fields: dict[str, Any] = {
        "name": name,
        "description": description,
        "capabilities": tuple(capability or ()),
        "model": model,
        "temperature": temperature,
        "cost_hint_usd": cost_hint_usd,
    }
    if system_prompt is not None:
        fields["system_prompt"] = system_prompt
    try:
        spec = AgentSpec.model_validate(fields)
    except ValidationError as exc:
        raise _fail(f"invalid agent: {describe_error(exc)}") from None
    aio.run(_with_store(lambda store: _save(store, [spec])))
    typer.echo(f"saved agent {name}")


@agents_app.command("import")
def agents_import(
    file: Annotated[Path, typer.Argument(help="A YAML file: a list of agents, or 'agents:'.")],
) -> None:
    """Add (or replace) every agent of a YAML file."""
    try:
        specs = load_agents(file)
    except AutomatosError as exc:
        raise _fail(str(exc)) from None
    aio.run(_with_store(lambda store: _save(store, specs)))
    typer.echo(f"saved {len(specs)} agents: {', '.join(s.name for s in specs)}")


async def _save(store: SqlStore, specs: list[AgentSpec]) -> None:
    await registered_agents(store)  # an empty workspace gets the starter team first
    await store.save_agents(specs)


@app.command()
def version() -> None:
    """Print the version."""
    from automatos import __version__

    typer.echo(__version__)


def main() -> None:
    """Entry point of the ``automatos`` script."""
    app(prog_name="automatos")


if __name__ == "__main__":  # pragma: no cover
    main()
