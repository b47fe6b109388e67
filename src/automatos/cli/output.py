"""What every command shares: exit codes, the one way errors are printed, loading settings.

Imports here are light on purpose: ``automatos --help`` imports this module, and must not
pay for pydantic-settings, SQLAlchemy or a provider SDK.
"""

from __future__ import annotations

import os
import sys
import traceback
from typing import TYPE_CHECKING, Any

import typer
from typer.core import TyperGroup

if TYPE_CHECKING:
    from typer._click import Context

    from automatos.settings import Settings

__all__ = [
    "DEBUG_VARIABLE",
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
        return "; ".join(
            f"{'.'.join(map(str, e['loc'])) or '(root)'}: {e['msg']}"
            for e in problem.errors(include_url=False, include_input=False)[:10]
        )
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


class GuardedGroup(TyperGroup):
    """The command group of ``automatos``: whatever a command lets escape ends it with one
    line and exit code 1, never a traceback. An engine error is printed as every command
    prints one (:func:`fail`); any other exception is a bug (:func:`internal_error`).

    Typer's own signals (an exit, an abort, a usage error) and ``KeyboardInterrupt`` pass.
    """

    def invoke(self, ctx: Context) -> Any:
        """Run the command, the last resort for what it does not handle itself."""
        from automatos.errors import AutomatosError

        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):
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
