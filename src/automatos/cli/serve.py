"""``automatos serve``: the HTTP API (:mod:`automatos.server.app`) under uvicorn."""

from __future__ import annotations

import ipaddress
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer

from automatos.cli.output import fail, load_settings
from automatos.cli.plugins import ToolOption, python_tools

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["run_server", "serve"]


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
    tool: ToolOption = None,
) -> None:
    """Serve the HTTP API: start workflows, follow their events (SSE), cancel them.

    SIGTERM (or Ctrl-C) stops accepting, lets running workflows finish within
    server.shutdown_grace_s and records the rest interrupted."""
    if no_auth and not _loopback(host):
        raise fail(f"--no-auth serves only on a loopback address, not {host!r}")
    from automatos.server.app import create_app

    settings = load_settings()
    tools = python_tools(tool)
    run_server(create_app(settings, anonymous=no_auth, tools=tools), host, port)


def run_server(app: FastAPI, host: str, port: int, log_level: str = "info") -> None:
    """Serve ``app`` until SIGTERM or SIGINT, then shut down gracefully: no new connection
    or workflow, event streams and running workflows get ``server.shutdown_grace_s`` in all."""
    import uvicorn

    from automatos.server.app import begin_stop

    grace = app.state.settings.server.shutdown_grace_s

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            loop = app.state.loop  # a signal handler must not touch the loop's state itself
            if loop is not None and not loop.is_closed():
                loop.call_soon_threadsafe(begin_stop, app)
            super().handle_exit(sig, frame)

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        # streams of running workflows end with them, or at the end of the grace (then the
        # lifespan's shutdown records the workflows still running interrupted); uvicorn
        # cuts a stream only if that fails
        timeout_graceful_shutdown=round(grace) + 5,
    )
    # The process is the server's: what start-up made, once the store is open, is left out of
    # the collector's walks (server.freeze_heap; the app's lifespan does it)
    app.state.freeze_heap = app.state.settings.server.freeze_heap
    Server(config).run()


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
