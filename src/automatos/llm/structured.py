"""Structured output: ask for JSON of a schema, validate it, repair once, then fail typed."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from automatos.errors import AutomatosError, StructuredOutputError
from automatos.llm.base import Completion, LLMProvider, Message

__all__ = [
    "Structured",
    "complete_structured",
    "describe_error",
    "describe_fields",
    "extract_json",
    "load_json",
    "pydantic_parser",
    "schema_of",
]

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

_FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.DOTALL)
_MAX_ERROR_CHARS = 2_000


@dataclass(frozen=True)
class Structured(Generic[T]):
    """A validated value and every call it took (one, or two with the repair)."""

    value: T
    completions: tuple[Completion, ...]


def extract_json(text: str) -> str:
    """The JSON inside a reply: the body of a code fence, or from the first brace or bracket.

    Models often wrap JSON in prose or fences even when asked not to.
    """
    fenced = _FENCE.search(text)
    if fenced:
        return fenced.group(1).strip()
    starts = [i for i in (text.find("{"), text.find("[")) if i >= 0]
    return text[min(starts) :].strip() if starts else text.strip()


def load_json(text: str) -> Any:
    """Parse JSON as models write it: control characters inside strings are accepted.

    Grammar-constrained local models emit raw newlines inside strings, which strict JSON
    forbids but which mean nothing else.

    Raises:
        ValueError: not JSON, or nested too deeply to parse.
    """
    try:
        return json.loads(text, strict=False)
    except RecursionError as exc:
        raise ValueError("the JSON is nested too deeply") from exc
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON: {exc}") from exc


def pydantic_parser(model: type[M]) -> Callable[[str], M]:
    """A parser that validates a reply's JSON into ``model``."""

    def parse(text: str) -> M:
        return model.model_validate(load_json(extract_json(text)))

    return parse


def describe_fields(error: ValidationError) -> str:
    """Each wrong field with its problem, on one line (``subtasks.0.description: Field
    required``), for messages to people."""
    problems = [
        f"{'.'.join(map(str, e['loc'])) or '(root)'}: {e['msg']}"
        for e in error.errors(include_url=False, include_input=False)[:10]
    ]
    more = error.error_count() - len(problems)
    return "; ".join(problems) + (f"; and {more} more" if more > 0 else "")


def describe_error(error: Exception) -> str:
    """A short description of why an answer was rejected, fit to show the model (a list of
    fields, one per line; see :func:`describe_fields` for one line)."""
    if isinstance(error, ValidationError):
        lines = [
            f"- {'.'.join(map(str, e['loc'])) or '(root)'}: {e['msg']}"
            for e in error.errors(include_url=False, include_input=False)[:20]
        ]
        return f"{error.error_count()} validation error(s):\n" + "\n".join(lines)
    return str(error)[:_MAX_ERROR_CHARS]


async def complete_structured(
    llm: LLMProvider,
    messages: Sequence[Message],
    parse: Callable[[str], T],
    *,
    json_schema: Mapping[str, Any] | None,
    model: str | None = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
    on_call: Callable[[Completion], None] | None = None,
) -> Structured[T]:
    """Ask for structured output and parse it; on failure, show the model why, once.

    ``on_call`` is given every answer as it arrives, valid or not, so that what a call
    cost is accounted for even when the structured output fails in the end.

    ``parse`` raises :class:`ValueError` (pydantic's ``ValidationError`` is one) or an
    :class:`~automatos.errors.AutomatosError` when the answer is unusable. After the repair
    attempt also fails, an engine error from ``parse`` is raised as it is, and anything else
    becomes :class:`~automatos.errors.StructuredOutputError`.
    """
    history = list(messages)
    completions: list[Completion] = []
    for attempt in (1, 2):
        done = await llm.complete(
            history,
            model=model,
            temperature=temperature,
            max_tokens=max_tokens,
            json_schema=json_schema,
        )
        completions.append(done)
        if on_call is not None:
            on_call(done)
        try:
            return Structured(parse(done.text), tuple(completions))
        except (ValueError, AutomatosError) as exc:
            if attempt == 2:
                if isinstance(exc, AutomatosError):
                    raise
                raise StructuredOutputError(
                    "the model's answer did not validate after a repair attempt: "
                    + (
                        describe_fields(exc)
                        if isinstance(exc, ValidationError)
                        else describe_error(exc)
                    ),
                    raw=done.text,
                ) from exc
            history += [
                Message("assistant", done.text[:_MAX_ERROR_CHARS]),
                Message(
                    "user",
                    "Your answer could not be used: "
                    f"{describe_error(exc)}\nReply again with only the corrected JSON.",
                ),
            ]
    raise AssertionError("unreachable")  # pragma: no cover


@functools.cache
def schema_of(model: type[BaseModel]) -> Mapping[str, Any]:
    """``model``'s JSON schema, made once per process: pydantic builds it anew on each
    call (milliseconds for the plan's), and a busy server plans many workflows a second.
    Shared: copy it before changing it."""
    return model.model_json_schema()
