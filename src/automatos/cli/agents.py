"""``automatos agents``: the workspace's agent registry and what was learned about each."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from automatos.cli.output import describe, fail, warn
from automatos.cli.store import store_settings, with_store

if TYPE_CHECKING:
    from automatos.domain.agent import AgentMetrics, AgentSpec
    from automatos.store.sql import SqlStore

__all__ = ["agents_app"]

agents_app = typer.Typer(help="The agent registry.", no_args_is_help=True)


def _shown(agent: AgentSpec) -> dict[str, Any]:
    """An agent as JSON fit to print: its MCP servers' environments and headers hidden."""
    return agent.shown()


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
            typer.echo(json.dumps(_shown(agent)))
        return
    for agent in agents:
        m = metrics.get(agent.name, {}).get(OVERALL)
        learned = (
            f"runs {m.total_executions}, success {m.success_rate:.2f}, quality {m.avg_quality:.2f}"
            if m
            else "no runs yet"
        )
        tools = f"  [tools: {', '.join(agent.tools)}]" if agent.tools else ""
        typer.echo(f"{agent.name:<14} {learned:<40} {agent.description[:60]}{tools}")


@agents_app.command("show")
def agents_show(name: Annotated[str, typer.Argument(help="The agent's name.")]) -> None:
    """Show one agent: its definition and its learned metrics, overall and per task type."""
    import yaml

    from automatos.store.base import OVERALL

    agents, metrics = with_store(store_settings(), _agents_with_metrics)
    agent = next((a for a in agents if a.name == name), None)
    if agent is None:
        raise fail(f"no agent {name!r}; known: {', '.join(a.name for a in agents)}")
    typer.echo(yaml.safe_dump(_shown(agent), sort_keys=False).rstrip())
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
    tool: Annotated[
        list[str] | None,
        typer.Option(
            help="A tool the agent may call (calculator, SERVER__TOOL), or mcp:SERVER for "
            "every tool of the workspace's MCP server SERVER; repeat for several."
        ),
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
        "tools": tuple(tool or ()),
    }
    if system_prompt is not None:
        fields["system_prompt"] = system_prompt
    settings = store_settings()
    try:
        spec = AgentSpec.model_validate(fields)
    except ValidationError as exc:
        raise fail(f"invalid agent: {describe(exc)}") from None
    missing = with_store(settings, lambda store: _save(store, [spec]))
    with_tools = f" with tools {', '.join(spec.tools)}" if spec.tools else ""
    typer.echo(f"saved agent {name}{with_tools}")
    _warn_of_unknown_tools([spec], missing, settings.workspace)


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
    missing = with_store(settings, lambda store: _save(store, specs))
    typer.echo(f"saved {len(specs)} agents: {', '.join(s.name for s in specs)}")
    _warn_of_unknown_tools(specs, missing, settings.workspace)


def _warn_of_unknown_tools(specs: list[AgentSpec], servers: list[str], workspace: str) -> None:
    """Warn of the tools the agents name that no run could give them as things stand: a name
    that is no built-in tool's (nor an MCP tool's, ``SERVER__TOOL``), an MCP server that is
    not there. They are saved all the same: a server may be added later."""
    import difflib

    from automatos.domain.agent import MCP_PREFIX
    from automatos.tools import BUILTIN_NAMES

    names = {t for s in specs for t in s.tools if not t.startswith(MCP_PREFIX) and "__" not in t}
    for name in sorted(names - set(BUILTIN_NAMES)):
        close = difflib.get_close_matches(name, BUILTIN_NAMES, n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        warn(
            f"{name!r} is not a built-in tool ({hint}the built-in ones: "
            f"{', '.join(BUILTIN_NAMES)}; an MCP server's tools are SERVER__TOOL or mcp:SERVER)"
        )
    for server in servers:
        warn(
            f"workspace {workspace} has no MCP server {server!r} (yet): agents get no tools of "
            f"it until one is added (automatos mcp add {server} ...)"
        )


async def _save(store: SqlStore, specs: list[AgentSpec]) -> list[str]:
    """Save the agents; the MCP servers they name (``mcp:NAME``, ``NAME__TOOL``) that neither
    the workspace nor the agent itself has, for the command to warn about."""
    from automatos.domain.agent import MCP_PREFIX
    from automatos.registry import registered_agents

    await registered_agents(store)  # an empty workspace gets the starter team first
    await store.save_agents(specs)
    known = {record.name for record in await store.mcp_servers()}
    missing = []
    for spec in specs:
        own = {server.name for server in spec.mcp_servers}
        for entry in spec.tools:
            if entry.startswith(MCP_PREFIX):
                server = entry.removeprefix(MCP_PREFIX)
            elif "__" in entry:  # one tool of a server, SERVER__TOOL
                server = entry.partition("__")[0]
            else:
                continue
            if server not in known | own:
                missing.append(server)
    return sorted(set(missing))
