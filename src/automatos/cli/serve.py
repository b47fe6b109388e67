"""``automatos serve``: the HTTP API (:mod:`automatos.server.app`) under uvicorn."""

from __future__ import annotations

import ipaddress
from typing import Annotated

import typer

from automatos.cli.output import fail, load_settings

__all__ = ["serve"]


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
    no_auth: Annotated[
        bool,
        typer.Option(
            "--no-auth",
            help="Serve without API keys, in the settings' workspace: only on a loopback "
            "address. Otherwise every request needs a key (automatos keys create).",
        ),
    ] = False,
) -> None:
    """Serve the HTTP API: start workflows, follow their events (SSE), cancel them."""
    if no_auth and not _loopback(host):
        raise fail(f"--no-auth serves only on a loopback address, not {host!r}")
    import uvicorn

    from automatos.server.app import create_app

    app = create_app(load_settings(), anonymous=no_auth)
    uvicorn.run(app, host=host, port=port, log_level="info")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
