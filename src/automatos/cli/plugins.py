"""What a command loads from the user's code by ``module:name`` (``--tool``, ``--provider``),
the current directory importable, as uvicorn finds an app."""

from __future__ import annotations

import importlib
import os
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from automatos.cli.output import EXIT_USAGE, fail

if TYPE_CHECKING:
    from automatos.tools.base import Tool

__all__ = ["ToolOption", "attribute", "python_tools"]

ToolOption = Annotated[
    list[str] | None,
    typer.Option(
        "--tool",
        help="A Python tool the agents may call, as module:name: a function with type hints "
        "and a docstring, or a Tool object. Repeat for more. Agents name it in their tools "
        "as they name the built-ins.",
        show_default=False,
    ),
]


def attribute(path: str, option: str) -> Any:
    """What ``module:name`` names; a usage error naming ``option`` if nothing."""
    from automatos.errors import describe_exception

    module_name, sep, name = path.partition(":")
    if not sep or not module_name or not name:
        raise fail(f"{option} {path!r}: write it as module:name", EXIT_USAGE)
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as exc:
        raise fail(f"{option} {path!r}: {describe_exception(exc)}", EXIT_USAGE) from None
    except (Exception, SystemExit) as exc:  # the module failed as it was imported
        raise fail(
            f"{option} {path!r}: importing {module_name} failed: {describe_exception(exc)}",
            EXIT_USAGE,
        ) from None


def python_tools(paths: list[str] | None) -> list[Tool]:
    """The tools ``module:name`` paths name (a Tool, or a function made into one), each name
    once."""
    from automatos.errors import AutomatosError
    from automatos.tools.function import as_tool
    from automatos.tools.registry import ToolRegistry

    made: list[Tool] = []
    for path in paths or ():
        found = attribute(path, "--tool")
        try:
            made.append(as_tool(found))
        except AutomatosError as exc:
            raise fail(f"--tool {path!r}: {exc}", EXIT_USAGE) from None
    try:
        ToolRegistry(made)
    except AutomatosError as exc:
        raise fail(f"--tool: {exc}", EXIT_USAGE) from None
    return made
