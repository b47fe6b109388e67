"""What every command shares: exit codes, the one way errors are printed, loading settings.

Imports here are light on purpose: ``automatos --help`` imports this module, and must not
pay for pydantic-settings, SQLAlchemy or a provider SDK.
"""

from __future__ import annotations

import contextlib
import os
import sys
import traceback
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import typer
from typer.core import TyperGroup

if TYPE_CHECKING:
    from typer._click import Context

    from automatos.settings import Settings

__all__ = [
    "DEBUG_VARIABLE",
    "EXIT_BROKEN_PIPE",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_NO_MODEL",
    "EXIT_OK",
    "EXIT_USAGE",
    "GuardedGroup",
    "describe",
    "fail",
    "internal_error",
    "load_settings",
    "warn",
]

EXIT_OK = 0
"""The command did what it was asked; a workflow succeeded, or partly succeeded."""
EXIT_FAILED = 1
"""A workflow failed, or the input is wrong: a request, a file, a setting's value."""
EXIT_USAGE = 2
"""The command line itself is wrong: an unknown option, a missing or doubled argument."""
EXIT_NO_MODEL = 3
"""No model is configured, or the configured one cannot be set up (a missing extra or file)."""
EXIT_INTERRUPTED = 130
"""A run interrupted (Ctrl-C), as shells report a SIGINT."""
EXIT_BROKEN_PIPE = 141
"""Standard output was closed before the command wrote it all (``automatos runs list | head
-1``): the command ends silently, with the code shells report for a process ended by SIGPIPE."""


def describe(problem: str | BaseException) -> str:
    """The text of an error line: an engine error with its class, a validation report in one
    line, a message as it is."""
    from automatos.errors import AutomatosError

    if isinstance(problem, str):
        return problem
    if isinstance(problem, AutomatosError):
        return f"{type(problem).__name__}: {problem}"
    from pydantic import ValidationError

    if isinstance(problem, ValidationError):
        from automatos.llm.structured import describe_fields

        return describe_fields(problem)
    return f"{type(problem).__name__}: {problem}"


def fail(problem: str | BaseException, code: int = EXIT_FAILED) -> typer.Exit:
    """Print ``error: ...`` on standard error; the caller raises the returned exit."""
    typer.secho("error: ", fg="red", bold=True, err=True, nl=False)
    typer.echo(describe(problem), err=True)
    return typer.Exit(code)


DEBUG_VARIABLE = "AUTOMATOS_DEBUG"
"""Set (``AUTOMATOS_DEBUG=1``), an internal error is printed with its traceback."""


def _debugging() -> bool:
    return os.environ.get(DEBUG_VARIABLE, "").strip().lower() not in ("", "0", "false", "no")


def internal_error(exc: BaseException) -> typer.Exit:
    """Print an exception no command expected (a bug) as one ``error: internal error: ...``
    line, after its traceback if ``AUTOMATOS_DEBUG`` is set; the caller raises the exit."""
    if _debugging():
        traceback.print_exception(exc, file=sys.stderr)
    lines = [line for line in str(exc).splitlines() if line.strip()]
    what = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    return fail(
        f"internal error: {what} (please report it; run with {DEBUG_VARIABLE}=1 for the traceback)"
    )


def _silence_standard_streams() -> None:
    """Point standard output and error at ``/dev/null``: the interpreter flushes them when it
    exits, and a flush into a closed pipe would print "Exception ignored ... BrokenPipeError"."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(AttributeError, OSError, ValueError):  # no descriptor
                os.dup2(devnull, stream.fileno())
    finally:
        os.close(devnull)


def _rich_broken_pipe(exc: SystemExit) -> bool:
    """Whether ``exc`` is rich's way of ending on a closed pipe: ``Console.on_broken_pipe``
    exits with 1 (for our tables and for typer's help, which rich prints)."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return False
    frame = tb.tb_frame
    return frame.f_code.co_name == "on_broken_pipe" and frame.f_globals.get("__name__") == (
        "rich.console"
    )


@contextlib.contextmanager
def _quiet_on_broken_pipe() -> Iterator[None]:
    """End the command silently with :data:`EXIT_BROKEN_PIPE` when its reader has gone (a
    pager or ``head`` that stopped reading): the usual Unix behaviour, not an error."""
    try:
        yield
    except BrokenPipeError:
        _silence_standard_streams()
        raise typer.Exit(EXIT_BROKEN_PIPE) from None
    except SystemExit as exc:
        if not _rich_broken_pipe(exc):
            raise
        _silence_standard_streams()
        raise typer.Exit(EXIT_BROKEN_PIPE) from None


class GuardedGroup(TyperGroup):
    """The command group of ``automatos``: whatever a command lets escape ends it with one
    line and exit code 1, never a traceback. An engine error is printed as every command
    prints one (:func:`fail`); any other exception is a bug (:func:`internal_error`); a closed
    standard output ends the command silently (:data:`EXIT_BROKEN_PIPE`).

    Typer's own signals (an exit, an abort, a usage error) and ``KeyboardInterrupt`` pass.
    """

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: Context | None = None,
        **extra: Any,
    ) -> Context:
        """Parse the command line; ``automatos --help`` prints its help here."""
        with _quiet_on_broken_pipe():
            return super().make_context(info_name, args, parent, **extra)

    def invoke(self, ctx: Context) -> Any:
        """Run the command, the last resort for what it does not handle itself."""
        from automatos.errors import AutomatosError

        with _quiet_on_broken_pipe():
            try:
                return super().invoke(ctx)
            except (typer.Exit, typer.Abort, typer.TyperException, BrokenPipeError):
                raise
            except AutomatosError as exc:
                raise fail(exc) from None
            except Exception as exc:
                raise internal_error(exc) from None


def warn(message: str) -> None:
    """Print ``warning: ...`` on standard error."""
    typer.secho("warning: ", fg="yellow", bold=True, err=True, nl=False)
    typer.echo(message, err=True)


def load_settings() -> Settings:
    """Settings from the ``AUTOMATOS_*`` variables, for every command that needs them.

    Variables that set nothing are warned about, with the closest setting; a bad value ends
    the command with one line naming its variable (exit code 1), not a traceback.
    """
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    from automatos.settings import Settings, describe_settings_error, env_warnings

    for line in env_warnings():
        warn(line)
    try:
        return Settings()
    except (ValidationError, SettingsError) as exc:
        raise fail(describe_settings_error(exc)) from None
