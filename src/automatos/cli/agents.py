"""``automatos agents``: the workspace's agent registry and what was learned about each."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from automatos.cli.output import describe, fail
from automatos.cli.store import store_settings, with_store

if TYPE_CHECKING:
    from automatos.domain.agent import AgentMetrics, AgentSpec
    from automatos.store.sql import SqlStore

__all__ = ["agents_app"]

agents_app = typer.Typer(help="The agent registry.", no_args_is_help=True)


async def _agents_with_metrics(
    store: SqlStore,
) -> tuple[list[AgentSpec], dict[str, dict[str, AgentMetrics]]]:
    from automatos.registry import registered_agents

    return await registered_agents(store), await store.agent_metrics()


@agents_app.command("list")
def agents_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
) -> None:
    """List the workspace's agents with what was learned about them."""
    from automatos.store.base import OVERALL

    agents, metrics = with_store(store_settings(), _agents_with_metrics)
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
    import yaml

    from automatos.store.base import OVERALL

    agents, metrics = with_store(store_settings(), _agents_with_metrics)
    agent = next((a for a in agents if a.name == name), None)
    if agent is None:
        raise fail(f"no agent {name!r}; known: {', '.join(a.name for a in agents)}")
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
    from pydantic import ValidationError

    from automatos.domain.agent import AgentSpec

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
    settings = store_settings()
    try:
        spec = AgentSpec.model_validate(fields)
    except ValidationError as exc:
        raise fail(f"invalid agent: {describe(exc)}") from None
    with_store(settings, lambda store: _save(store, [spec]))
    typer.echo(f"saved agent {name}")


@agents_app.command("import")
def agents_import(
    file: Annotated[Path, typer.Argument(help="A YAML file: a list of agents, or 'agents:'.")],
) -> None:
    """Add (or replace) every agent of a YAML file."""
    from automatos.errors import AutomatosError
    from automatos.registry import load_agents

    settings = store_settings()
    try:
        specs = load_agents(file)
    except AutomatosError as exc:
        raise fail(exc) from None
    with_store(settings, lambda store: _save(store, specs))
    typer.echo(f"saved {len(specs)} agents: {', '.join(s.name for s in specs)}")


async def _save(store: SqlStore, specs: list[AgentSpec]) -> None:
    from automatos.registry import registered_agents

    await registered_agents(store)  # an empty workspace gets the starter team first
    await store.save_agents(specs)
