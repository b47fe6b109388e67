"""``automatos keys``: the API keys of the store's workspaces (for ``automatos serve``).

A key opens one workspace. Its secret is printed once, when it is created, on standard output
(so that ``| pbcopy`` or ``$(...)`` takes only the secret); the store keeps only its hash, so
a lost secret is revoked and replaced, never shown again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from automatos.cli.output import fail
from automatos.cli.store import store_settings, with_store

if TYPE_CHECKING:
    from datetime import datetime

    from automatos.store.keys import ApiKey
    from automatos.store.sql import SqlStore

__all__ = ["keys_app"]

keys_app = typer.Typer(
    help="API keys: each opens one workspace over HTTP; the secret is shown once.",
    no_args_is_help=True,
)

NOT_SHOWN_AGAIN = "this is the only time the key is shown: keep it now (the store keeps its hash)"


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else f"{moment:%Y-%m-%d %H:%M} UTC"


def _shown(key: ApiKey) -> dict[str, Any]:
    """A key as JSON: everything but the secret, which no record holds."""
    return {
        "id": key.id,
        "workspace": key.workspace,
        "name": key.name,
        "prefix": key.prefix,
        "created_at": key.created_at.isoformat(),
        "last_used_at": key.last_used_at.isoformat() if key.last_used_at else None,
        "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None,
    }


@keys_app.command("create")
def keys_create(
    workspace: Annotated[
        str, typer.Option(help="The workspace the key opens (made if it does not exist).")
    ],
    name: Annotated[str, typer.Option(help="What the key is for (ci, dashboard...).")] = "",
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the key and its secret as one JSON object.")
    ] = False,
) -> None:
    """Create a key for a workspace and print its secret, the only time it is shown."""
    import json

    from automatos.errors import InvalidRequestError
    from automatos.store.keys import check_workspace

    try:
        check_workspace(workspace)
    except InvalidRequestError as exc:
        raise fail(exc) from None
    settings = store_settings()

    async def create(store: SqlStore) -> tuple[ApiKey, str]:
        return await store.create_key(workspace, name)

    key, secret = with_store(settings, create)
    typer.echo(f"created key {key.id} for workspace {workspace}; {NOT_SHOWN_AGAIN}", err=True)
    if as_json:
        typer.echo(json.dumps(_shown(key) | {"secret": secret}))
    else:
        typer.echo(secret)


@keys_app.command("list")
def keys_list(
    workspace: Annotated[
        str | None, typer.Option(help="Only this workspace's keys; default: every workspace's.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
) -> None:
    """List the keys (revoked ones too), oldest first; secrets are never shown."""
    import json

    async def read(store: SqlStore) -> list[ApiKey]:
        return await store.keys(workspace)

    found = with_store(store_settings(), read)
    if as_json:
        for key in found:
            typer.echo(json.dumps(_shown(key)))
        return
    if not found:
        which = f" for workspace {workspace}" if workspace else ""
        typer.echo(f"no API keys{which} (automatos keys create --workspace W makes one)")
        return
    typer.echo(
        f"{'id':<16}  {'workspace':<16}  {'name':<16}  {'key':<15}  {'created':<20}  "
        f"{'last used':<20}  revoked"
    )
    for key in found:
        typer.echo(
            f"{key.id:<16}  {key.workspace:<16}  {key.name or '-':<16}  {key.prefix + '...':<15}  "
            f"{_when(key.created_at):<20}  {_when(key.last_used_at):<20}  "
            f"{_when(key.revoked_at)}"
        )


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[
        str, typer.Argument(metavar="ID", help="The key's id (automatos keys list).")
    ],
) -> None:
    """Revoke a key: requests with it are refused from now on (revoking twice is harmless)."""

    async def revoke(store: SqlStore) -> ApiKey | None:
        return await store.revoke_key(key_id)

    key = with_store(store_settings(), revoke)
    if key is None:
        raise fail(f"no API key {key_id!r} (automatos keys list shows the ids)")
    typer.echo(
        f"revoked key {key.id} ({key.prefix}...) of workspace {key.workspace}"
        f" on {_when(key.revoked_at)}"
    )
