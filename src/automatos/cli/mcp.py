"""``automatos mcp``: the MCP servers of a workspace, whose tools its agents may call.

A server is started by a command (stdio: ``automatos mcp add NAME -- COMMAND [ARGS...]``) or
reached at a URL (streamable HTTP: ``automatos mcp add NAME --url URL``). Adding one starts
nothing: a run starts the servers its agents name (``tools: [mcp:NAME]``) when it first needs
them; ``automatos mcp tools NAME`` starts one to list its tools, and stops it.

The values of a server's environment and headers often hold tokens: they are kept in the
store and never printed (``***``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from automatos.cli.output import describe, fail, load_settings, warn
from automatos.cli.store import store_settings, with_store

if TYPE_CHECKING:
    from automatos.domain.tools import MCPServerConfig
    from automatos.settings import StoreSettings
    from automatos.store.base import MCPServerRecord
    from automatos.store.sql import SqlStore
    from automatos.tools.mcp import MCPTool

__all__ = ["mcp_app", "shown_server", "target_of"]

mcp_app = typer.Typer(
    help="MCP servers of a workspace: tool servers its agents may name (mcp:NAME).",
    no_args_is_help=True,
)


_Workspace = Annotated[
    str | None,
    typer.Option(help="The workspace; default: the settings' (store.workspace)."),
]


def shown_server(config: MCPServerConfig) -> dict[str, Any]:
    """A server's config as JSON fit to print (:meth:`MCPServerConfig.shown`)."""
    return config.shown()


def target_of(config: MCPServerConfig) -> str:
    """How the server is reached, in one line: its command, or its URL (as
    :func:`shown_server` shows it)."""
    import shlex

    from automatos.domain.tools import safe_url, shown_command

    if config.url is not None:
        return safe_url(config.url)
    return shlex.join(shown_command(config.command or ()))


def _pairs(values: list[str] | None, option: str) -> dict[str, str]:
    """``K=V`` options as a mapping; a malformed one ends the command, naming the option."""
    pairs: dict[str, str] = {}
    for value in values or ():
        key, sep, rest = value.partition("=")
        if not sep or not key.strip():
            # not the value itself: a header or variable mistyped is often a secret
            key = value.split(":", 1)[0].split(" ", 1)[0][:40]
            raise fail(f"{option} takes KEY=VALUE; got one without '=' (starting {key!r})")
        pairs[key.strip()] = rest
    return pairs


def _in_workspace(workspace: str | None, settings: StoreSettings | None = None) -> StoreSettings:
    """The store's settings (``settings``, or those of the environment), in ``workspace`` if
    one is given."""
    from automatos.errors import InvalidRequestError
    from automatos.store.keys import check_workspace

    settings = settings if settings is not None else store_settings()
    if workspace is None:
        return settings
    try:
        check_workspace(workspace)
    except InvalidRequestError as exc:
        raise fail(exc) from None
    return settings.model_copy(update={"workspace": workspace})


@mcp_app.command("add")
def mcp_add(
    name: Annotated[
        str, typer.Argument(metavar="NAME", help="The server's name: agents name it mcp:NAME.")
    ],
    command: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[-- COMMAND ARGS...]",
            help="The command that starts a stdio server, after '--' (no shell: each word is "
            "one argument).",
            show_default=False,
        ),
    ] = None,
    url: Annotated[
        str | None, typer.Option(help="The URL of a streamable HTTP server (instead of a command).")
    ] = None,
    header: Annotated[
        list[str] | None,
        typer.Option(help="An HTTP header, KEY=VALUE; repeat for several (--url only)."),
    ] = None,
    env: Annotated[
        list[str] | None,
        typer.Option(help="An environment variable, KEY=VALUE; repeat for several (command only)."),
    ] = None,
    cwd: Annotated[
        Path | None,
        typer.Option(
            help="The directory the command runs in (command only; default: the current "
            "one, so that relative paths in the command work from anywhere)."
        ),
    ] = None,
    workspace: _Workspace = None,
) -> None:
    """Add an MCP server to the workspace: a command (stdio) or a URL (streamable HTTP).

    automatos mcp add files -- npx -y @modelcontextprotocol/server-filesystem /srv/docs

    automatos mcp add search --url https://mcp.example.com/mcp --header "Authorization=Bearer T"
    """
    from pydantic import ValidationError

    from automatos.domain.tools import MCPServerConfig

    if bool(command) == (url is not None):
        raise fail(
            "give the server's command after '--' (automatos mcp add NAME -- COMMAND ARGS) "
            "or its --url, not both"
            if command
            else "give the server's command after '--' (automatos mcp add NAME -- COMMAND "
            "ARGS) or its --url"
        )
    if command and header:
        raise fail("--header is for a server reached by --url; a command's server takes --env")
    if url is not None and (env or cwd is not None):
        raise fail("--env and --cwd are for a server started by a command, not one at a --url")
    fields: dict[str, Any] = {"name": name}
    if command:
        fields |= {"command": list(command), "env": _pairs(env, "--env")}
        # The server is started from wherever a run is (another directory, a worker): a
        # command written relative to this directory runs in it.
        cwd = cwd if cwd is not None else Path.cwd()
        fields["cwd"] = str(cwd.expanduser().resolve())
        if not cwd.is_dir():
            warn(f"--cwd {fields['cwd']} is not a directory (yet): the server cannot start")
    else:
        fields |= {"url": url, "headers": _pairs(header, "--header")}
    try:
        config = MCPServerConfig.model_validate(fields)
    except ValidationError as exc:
        raise fail(f"invalid MCP server: {describe(exc)}") from None
    settings = _in_workspace(workspace)

    async def add(store: SqlStore) -> MCPServerRecord:
        return await store.add_mcp_server(config)

    with_store(settings, add)
    kind = "stdio" if config.transport == "stdio" else "streamable HTTP"
    typer.echo(
        f"added MCP server {config.name} ({kind}: {target_of(config)}) to workspace "
        f"{settings.workspace}; agents that name mcp:{config.name} in their tools may call its "
        "tools"
    )


@mcp_app.command("list")
def mcp_list(
    workspace: _Workspace = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
) -> None:
    """List the workspace's MCP servers (values of environments and headers hidden)."""
    settings = _in_workspace(workspace)

    async def read(store: SqlStore) -> list[MCPServerRecord]:
        return await store.mcp_servers()

    found = with_store(settings, read)
    if as_json:
        for record in found:
            typer.echo(
                json.dumps(
                    {
                        "workspace": settings.workspace,
                        **shown_server(record.config),
                        "created_at": record.created_at.isoformat(),
                    }
                )
            )
        return
    if not found:
        typer.echo(
            f"no MCP servers in workspace {settings.workspace} "
            "(automatos mcp add NAME -- COMMAND, or --url URL)"
        )
        return
    typer.echo(f"{'name':<20}  {'kind':<5}  {'added':<20}  command or URL")
    for record in found:
        config = record.config
        kind = config.transport
        typer.echo(
            f"{config.name:<20}  {kind:<5}  {record.created_at:%Y-%m-%d %H:%M} UTC  "
            f"{target_of(config)}"
        )


@mcp_app.command("remove")
def mcp_remove(
    name: Annotated[str, typer.Argument(help="The server's name (automatos mcp list).")],
    workspace: _Workspace = None,
) -> None:
    """Remove an MCP server from the workspace; agents naming it no longer get its tools."""
    settings = _in_workspace(workspace)

    async def remove(store: SqlStore) -> None:
        await store.remove_mcp_server(name)

    with_store(settings, remove)
    typer.echo(f"removed MCP server {name} from workspace {settings.workspace}")


@mcp_app.command("tools")
def mcp_tools(
    name: Annotated[
        str, typer.Argument(metavar="NAME", help="The server's name (automatos mcp list).")
    ],
    workspace: _Workspace = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON lines: name, description, parameters.")
    ] = False,
) -> None:
    """Start one of the workspace's MCP servers, list its tools as agents get them, stop it."""
    from automatos import aio
    from automatos.cli.store import STORE_DISABLED
    from automatos.errors import AutomatosError

    settings = load_settings()
    if not settings.store.enabled:
        raise fail(STORE_DISABLED)
    store = _in_workspace(workspace, settings.store)

    async def find(store: SqlStore) -> tuple[MCPServerRecord | None, list[str]]:
        found = await store.mcp_server(name)
        return found, [] if found else [r.name for r in await store.mcp_servers()]

    record, known = with_store(store, find)
    if record is None:
        raise fail(
            f"workspace {store.workspace!r} has no MCP server {name[:80]!r}; its servers: "
            f"{', '.join(known) or 'none'}"
        )
    try:
        tools = aio.run(_listed(record.config, settings.tools.call_timeout_s))
    except AutomatosError as exc:
        raise fail(exc) from None
    if as_json:
        for tool in tools:
            spec = tool.spec
            shown = {"name": spec.name, "description": spec.description}
            typer.echo(json.dumps(shown | {"parameters": dict(spec.parameters)}))
        return
    for tool in tools:
        about = (tool.spec.description.strip().splitlines() or [""])[0]
        typer.echo(f"{tool.spec.name:<40}  {about[:100]}")
    typer.echo(
        f"{len(tools)} tools; an agent names one of them, or all as mcp:{record.name}", err=True
    )


async def _listed(config: MCPServerConfig, timeout_s: float) -> list[MCPTool]:
    from automatos.tools.mcp import MCPServer

    async with MCPServer(config, call_timeout_s=timeout_s, start_timeout_s=timeout_s) as server:
        return await server.tools()
