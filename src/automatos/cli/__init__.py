"""The ``automatos`` command: ``run``, ``graph``, ``eval``, ``runs``, ``agents``, ``mcp``,
``prompts``, ``kb``, ``memory``, ``keys``, ``serve``, ``worker``, ``version``.

One module per command. Each imports what it uses inside its function, so that
``automatos --help`` (and ``graph``, ``eval``) load no database, model runtime or provider SDK.
Exit codes are in :mod:`automatos.cli.output`, and so is the last resort of every command
(:class:`~automatos.cli.output.GuardedGroup`): an error no command handled is one line, with
its traceback only if ``AUTOMATOS_DEBUG=1``.
"""

from __future__ import annotations

import typer

from automatos.cli.agents import agents_app
from automatos.cli.evaluate import eval_file
from automatos.cli.graph import graph
from automatos.cli.kb import kb_app
from automatos.cli.keys import keys_app
from automatos.cli.mcp import mcp_app
from automatos.cli.memory import memory_app
from automatos.cli.output import GuardedGroup
from automatos.cli.prompts import prompts_app
from automatos.cli.run import run
from automatos.cli.runs import runs_app
from automatos.cli.serve import serve
from automatos.cli.worker import worker

__all__ = ["app", "main"]

app = typer.Typer(
    name="automatos",
    help="Plan a request into a graph of subtasks and run it with a team of LLM agents.",
    epilog="Exit codes: 0 done, 1 a failed workflow or bad input, 2 usage, "
    "3 no model configured, 130 run interrupted, 141 output closed early (| head).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=GuardedGroup,
)
app.command()(run)
app.command()(graph)
app.command("eval")(eval_file)
app.command()(serve)
app.command()(worker)
app.add_typer(runs_app, name="runs")
app.add_typer(agents_app, name="agents")
app.add_typer(mcp_app, name="mcp")
app.add_typer(prompts_app, name="prompts")
app.add_typer(kb_app, name="kb")
app.add_typer(memory_app, name="memory")
app.add_typer(keys_app, name="keys")


@app.command()
def version() -> None:
    """Print the version."""
    from automatos import __version__

    typer.echo(__version__)


def main() -> None:
    """Entry point of the ``automatos`` script."""
    app(prog_name="automatos")
