"""A :class:`~automatos.tools.base.Tool` made of a Python function.

The function's signature is the tool's argument schema: each parameter must be annotated,
its default (if any) makes it optional, and pydantic turns the annotations into the JSON
schema the model sees and validates the model's arguments against it before the function
runs. The docstring describes the tool (the text before its sections) and, when it has a
Google-style ``Args:`` or a NumPy-style ``Parameters`` section, each parameter.

A sync function runs on a worker thread, so that a slow one never holds the event loop (and
the other subtasks of the run with it). Whatever it raises reaches the model as a
:class:`~automatos.errors.ToolFailedError` with the exception's type and message, and what it
returns reaches it as text: a string as it is, anything else as JSON, cut at
``max_result_chars``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import json
import threading
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, overload

import pydantic
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaWarningKind
from pydantic_core import PydanticSerializationError, to_jsonable_python

from automatos.domain.tools import check_tool_name
from automatos.errors import (
    ConfigurationError,
    MCPError,
    ToolArgumentsError,
    ToolError,
    ToolFailedError,
    describe_exception,
    describe_value,
)
from automatos.llm.base import ToolSpec
from automatos.tools.base import Tool

__all__ = [
    "MAX_RESULT_CHARS",
    "FunctionTool",
    "as_tool",
    "tool",
    "truncated",
    "validation_problem",
]

MAX_RESULT_CHARS = 20_000
"""The longest result a tool hands the model, in characters (about 5,000 tokens): a tool that
returns a whole database must not fill the model's window."""

_MAX_ERRORS = 5
"""Validation problems named in one message; a model fixes the first few, then sees the rest."""
_MAX_PROBLEM_CHARS = 200


def truncated(text: str, limit: int) -> str:
    """``text``, or its first ``limit`` characters with a note saying how much was left out."""
    if len(text) <= limit:
        return text
    return (
        f"{text[:limit]}\n[truncated: the result has {len(text)} characters; the first "
        f"{limit} are shown]"
    )


def validation_problem(error: ValidationError, limit: int = _MAX_ERRORS) -> str:
    """The problems of a validation, one per field, without the values given (a model's
    arguments can be long, and a secret may be among them)."""
    problems = []
    for item in error.errors(include_url=False, include_input=False)[:limit]:
        where = ".".join(str(part) for part in item["loc"]) or "the arguments"
        message = item["msg"]
        if item["type"] == "missing":
            message = "required but missing"
        elif item["type"] == "extra_forbidden":
            message = "not an argument of this tool"
        problems.append(f"{where}: {message[:_MAX_PROBLEM_CHARS]}")
    more = error.error_count() - len(problems)
    if more > 0:
        problems.append(f"and {more} more")
    return "; ".join(problems)


class _SchemaProblem(Exception):
    """Something of the arguments that their JSON schema would leave out."""


class _StrictSchema(GenerateJsonSchema):
    """Pydantic's schema, with what it would only warn about (a default that is not JSON,
    left out of the schema) refused: the model would be told less than the function takes."""

    def emit_warning(self, kind: JsonSchemaWarningKind, detail: str) -> None:
        raise _SchemaProblem(detail)


@dataclass(frozen=True, slots=True)
class _Parameter:
    name: str
    field: str
    """The model's field for it (``p0``, ``p1``...): the parameter's own name is the field's
    alias, so that a parameter called ``json`` or ``model_config`` is no clash with
    :class:`~pydantic.BaseModel`'s attributes."""
    positional: bool
    """Positional-only: passed by position."""


class FunctionTool:
    """A tool that calls a Python function (sync or async); make one with
    :meth:`from_function` or the :func:`tool` decorator."""

    def __init__(
        self,
        function: Callable[..., Any],
        spec: ToolSpec,
        arguments: type[BaseModel],
        parameters: tuple[_Parameter, ...],
        max_result_chars: int,
    ) -> None:
        self.function = function
        self._spec = spec
        self._arguments = arguments
        self._parameters = parameters
        self._max_result_chars = max_result_chars
        self._is_async = _is_async(function)

    @classmethod
    def from_function(
        cls,
        function: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        max_result_chars: int = MAX_RESULT_CHARS,
    ) -> FunctionTool:
        """The tool of ``function``.

        Args:
            function: a function, an async function, or a callable object; every parameter
                annotated with a type pydantic can validate.
            name: the tool's name; by default the function's ``__name__``.
            description: what the tool does, for the model; by default the function's
                docstring up to its first section (``Args:``, ``Returns:``...).
            max_result_chars: the longest result handed to the model.

        Raises:
            ConfigurationError: the name is not a tool name; the function takes ``*args``
                or ``**kwargs``, has a parameter without an annotation, or with a type or
                default that pydantic cannot turn into a JSON schema; there is no
                description.
        """
        tool_name = check_tool_name(
            name if name is not None else getattr(function, "__name__", ""),
            "a tool (pass name=...)" if name is None else "a tool",
        )
        if max_result_chars < 1:
            raise ConfigurationError(f"tool {tool_name!r}: max_result_chars must be at least 1")
        doc = _Docstring.parse(inspect.getdoc(function) or "")
        summary = description if description is not None else doc.summary
        if not summary.strip():
            raise ConfigurationError(
                f"tool {tool_name!r} has no description: write a docstring for its function "
                "or pass description=..."
            )
        parameters, fields = _fields(function, tool_name, doc.parameters)
        try:
            arguments = pydantic.create_model(
                f"{tool_name}_arguments", __config__=ConfigDict(extra="forbid"), **fields
            )
            schema = arguments.model_json_schema(by_alias=True, schema_generator=_StrictSchema)
        except (
            pydantic.PydanticUserError,
            pydantic.PydanticSchemaGenerationError,
            TypeError,  # a default or a constraint pydantic cannot apply to its type
            _SchemaProblem,
        ) as exc:
            raise ConfigurationError(
                f"tool {tool_name!r}: its arguments cannot be described as JSON: "
                f"{describe_exception(exc)}"
            ) from exc
        spec = ToolSpec(name=tool_name, description=summary.strip(), parameters=_untitled(schema))
        return cls(function, spec, arguments, parameters, max_result_chars)

    @property
    def spec(self) -> ToolSpec:
        """The name, description and argument schema the model sees."""
        return self._spec

    @property
    def name(self) -> str:
        """The tool's name."""
        return self._spec.name

    async def call(self, arguments: Mapping[str, Any]) -> str:
        """Validate ``arguments``, call the function with them, and return its result as
        text.

        Raises:
            ToolArgumentsError: the arguments do not validate; the message names each field
                and its problem.
            ToolFailedError: the function raised (the message has the exception's type and
                message), or returned something that cannot be shown as JSON.
        """
        try:
            validated = self._arguments.model_validate(dict(arguments))
        except ValidationError as exc:
            raise ToolArgumentsError(self.name, validation_problem(exc)) from None
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        for parameter in self._parameters:
            value = getattr(validated, parameter.field)
            if parameter.positional:
                args.append(value)
            else:
                kwargs[parameter.name] = value
        try:
            if self._is_async:
                result = await self.function(*args, **kwargs)
            else:
                result = await _in_own_thread(self.function, args, kwargs)
                if inspect.isawaitable(result):  # a sync wrapper handing back a coroutine
                    result = await result
        except ToolError as exc:  # raised on purpose, e.g. by the built-in tools
            raise _renamed(exc, self.name) from exc
        except (Exception, SystemExit, KeyboardInterrupt, GeneratorExit) as exc:
            # sys.exit in a tool (argparse does it) ends the tool, not the engine or worker
            raise ToolFailedError(self.name, describe_exception(exc)) from exc
        return truncated(self._text(result), self._max_result_chars)

    def _text(self, result: object) -> str:
        if isinstance(result, str):
            return result
        try:
            return json.dumps(to_jsonable_python(result), ensure_ascii=False)
        except (PydanticSerializationError, TypeError, ValueError) as exc:
            raise ToolFailedError(
                self.name,
                f"returned a {type(result).__name__} that cannot be shown as JSON: "
                f"{describe_exception(exc)}",
            ) from exc

    def __repr__(self) -> str:
        return f"FunctionTool({self.name!r})"


@overload
def tool(function: Callable[..., Any], /) -> FunctionTool: ...


@overload
def tool(
    *,
    name: str | None = None,
    description: str | None = None,
    max_result_chars: int = MAX_RESULT_CHARS,
) -> Callable[[Callable[..., Any]], FunctionTool]: ...


def tool(
    function: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    max_result_chars: int = MAX_RESULT_CHARS,
) -> FunctionTool | Callable[[Callable[..., Any]], FunctionTool]:
    """Make a function a :class:`FunctionTool`: ``@tool`` or ``@tool(name="...")``.

    The decorated name is the tool; the function stays reachable as its ``function``.

    Raises:
        ConfigurationError: as :meth:`FunctionTool.from_function`.
    """

    def make(fn: Callable[..., Any]) -> FunctionTool:
        return FunctionTool.from_function(
            fn, name=name, description=description, max_result_chars=max_result_chars
        )

    return make if function is None else make(function)


def _is_async(function: Callable[..., Any]) -> bool:
    if inspect.iscoroutinefunction(function):
        return True
    call = getattr(function, "__call__", None)  # noqa: B004 - an object with an async __call__
    return inspect.iscoroutinefunction(call)


def _fields(
    function: Callable[..., Any], tool_name: str, described: Mapping[str, str]
) -> tuple[tuple[_Parameter, ...], dict[str, Any]]:
    """The parameters of ``function`` and the pydantic fields of its arguments' model."""
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(
            f"tool {tool_name!r}: the signature of its function cannot be read: {exc}"
        ) from exc
    target = function.func if isinstance(function, functools.partial) else function
    if not inspect.isfunction(target) and not inspect.ismethod(target):
        target = getattr(target, "__call__", target)  # noqa: B004 - a callable object
    try:
        hints = typing.get_type_hints(target, include_extras=True)
    except Exception as exc:  # a forward reference that does not resolve, from any module
        raise ConfigurationError(
            f"tool {tool_name!r}: the annotations of its function cannot be resolved: "
            f"{describe_exception(exc)}"
        ) from exc
    parameters: list[_Parameter] = []
    fields: dict[str, Any] = {}
    for index, parameter in enumerate(signature.parameters.values()):
        where = f"tool {tool_name!r}: parameter {parameter.name!r}"
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            raise ConfigurationError(
                f"{where}: a tool cannot take *args or **kwargs (the model must be told every "
                "argument); name each parameter"
            )
        if parameter.name not in hints:
            raise ConfigurationError(f"{where} has no type annotation; annotate it")
        field = f"p{index}"
        default = ... if parameter.default is parameter.empty else parameter.default
        fields[field] = (
            hints[parameter.name],
            Field(default, alias=parameter.name, description=described.get(parameter.name)),
        )
        parameters.append(
            _Parameter(parameter.name, field, parameter.kind is parameter.POSITIONAL_ONLY)
        )
    return tuple(parameters), fields


def _untitled(schema: Mapping[str, Any]) -> dict[str, Any]:
    """``schema`` without the ``title`` pydantic gives every property and model: they repeat
    names the model sees already, in tokens it pays for each call."""

    def clean(node: Any) -> Any:
        if isinstance(node, dict):
            out: dict[str, Any] = {}
            for key, value in node.items():
                if key in ("properties", "$defs", "definitions") and isinstance(value, dict):
                    out[key] = {name: clean(sub) for name, sub in value.items()}
                elif key == "title" and isinstance(value, str):
                    continue
                else:
                    out[key] = clean(value)
            return out
        if isinstance(node, list):
            return [clean(item) for item in node]
        return node

    cleaned: dict[str, Any] = clean(dict(schema))
    return cleaned


_PARAMETER_SECTIONS = frozenset(
    {"args", "arguments", "parameters", "params", "keyword args", "keyword arguments",
     "other parameters"}
)  # fmt: skip
_SECTION_TITLES = _PARAMETER_SECTIONS | {
    "returns", "return", "yields", "yield", "raises", "raise", "exceptions", "examples",
    "example", "notes", "note", "attributes", "see also", "warnings", "warning",
    "references", "todo", "methods",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Docstring:
    summary: str
    parameters: dict[str, str]

    @classmethod
    def parse(cls, doc: str) -> _Docstring:
        """The text before the first section, and each parameter's description from a
        Google-style ``Args:`` or NumPy-style ``Parameters`` section."""
        lines = doc.splitlines()
        index = 0
        while index < len(lines) and _section(lines, index) is None:
            index += 1
        summary = _paragraphs(lines[:index])
        parameters: dict[str, str] = {}
        while index < len(lines):
            header = _section(lines, index)
            assert header is not None  # the loops stop at sections only
            title, start = header
            index = start
            while index < len(lines) and _section(lines, index) is None:
                index += 1
            if title in _PARAMETER_SECTIONS:
                parameters.update(_described(lines[start:index]))
        return cls(summary, parameters)


def _section(lines: list[str], index: int) -> tuple[str, int] | None:
    """The section a line opens (its lower-case title and the line its body starts at):
    ``Args:`` (Google) or ``Parameters`` over a line of dashes (NumPy)."""
    line = lines[index]
    if line[:1].isspace():
        return None
    stripped = line.strip()
    if stripped.endswith(":") and stripped[:-1].strip().lower() in _SECTION_TITLES:
        return stripped[:-1].strip().lower(), index + 1
    underline = lines[index + 1].strip() if index + 1 < len(lines) else ""
    if stripped.lower() in _SECTION_TITLES and len(underline) >= 3 and not underline.strip("-"):
        return stripped.lower(), index + 2
    return None


def _described(body: list[str]) -> dict[str, str]:
    """``name (type): text`` (Google) or ``name : type`` with the text on the lines below
    (NumPy), each continued on its more indented lines."""
    entries: dict[str, list[str]] = {}
    indent: int | None = None
    current: str | None = None
    for line in body:
        if not line.strip():
            continue
        depth = len(line) - len(line.lstrip())
        if indent is None:
            indent = depth
        if depth <= indent:
            head, colon, rest = line.strip().partition(":")
            name = head.split("(")[0].strip().lstrip("*")
            current = name if name.isidentifier() else None
            if current is not None:
                # NumPy's "name : type" has the type after the colon, not the text
                numpy = head.endswith(" ")
                entries[current] = [rest.strip()] if colon and not numpy else []
        elif current is not None:
            entries[current].append(line.strip())
    return {name: " ".join(part for part in text if part) for name, text in entries.items()}


def _paragraphs(lines: list[str]) -> str:
    """The lines as paragraphs: each one's lines joined, blank lines between them kept."""
    paragraphs: list[str] = []
    current: list[str] = []
    for line in lines:
        if line.strip():
            current.append(line.strip())
        elif current:
            paragraphs.append(" ".join(current))
            current = []
    if current:
        paragraphs.append(" ".join(current))
    return "\n\n".join(paragraphs)


def _renamed(exc: ToolError, name: str) -> ToolError:
    """``exc`` under this tool's name: a function raising a tool error names the tool it was
    written as, and may be registered under another name."""
    if exc.tool == name:
        return exc
    if isinstance(exc, MCPError):
        return MCPError(name, exc.detail, transient=exc.retryable)
    try:
        return type(exc)(name, exc.detail)
    except TypeError:  # a subclass with a constructor of its own
        return ToolFailedError(name, exc.detail)


async def _in_own_thread(
    function: Callable[..., Any], args: list[Any], kwargs: dict[str, Any]
) -> Any:
    """``function(*args, **kwargs)`` on a daemon thread of its own.

    Not the loop's default executor: a sync tool that never returns cannot be stopped (a
    thread cannot be killed), and held there it would take one of the few threads the
    engine's own work shares (stage 3, ingest), then keep the process from exiting. On its
    own daemon thread a hung call costs that thread only, and the timeout abandons it.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()

    def settle(outcome: Callable[[], None]) -> None:
        if not future.done():
            outcome()

    def work() -> None:
        try:
            result = function(*args, **kwargs)
        except BaseException as exc:  # handed to the awaiting task, whatever it is
            # (a future refuses StopIteration: it would end a generator instead)
            failure = RuntimeError(repr(exc)) if isinstance(exc, StopIteration) else exc
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(settle, lambda: future.set_exception(failure))
        else:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(settle, lambda: future.set_result(result))

    threading.Thread(target=work, name="automatos-tool", daemon=True).start()
    return await future


def as_tool(value: object) -> Tool:
    """``value`` as a tool: a :class:`Tool` as it is, a function made into a
    :class:`FunctionTool`.

    Raises:
        ConfigurationError: it is neither (a class, a number...), or the function cannot be
            a tool (no type hints, a name that is not a tool name).
    """
    if not isinstance(value, type) and isinstance(value, Tool):
        return value
    if isinstance(value, type) or not callable(value):
        raise ConfigurationError(
            f"{describe_value(value)} is not a tool: give a function (sync or async, with type "
            "hints and a docstring) or a Tool object (spec and async call)"
        )
    return FunctionTool.from_function(value)
