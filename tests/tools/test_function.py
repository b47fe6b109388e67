"""FunctionTool: the schema a signature gives, validation before the call, sync functions off
the loop, and what a function's failure or result becomes."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import pytest
from pydantic import BaseModel, Field

from automatos.errors import (
    ConfigurationError,
    ToolArgumentsError,
    ToolFailedError,
    ToolTimeoutError,
)
from automatos.tools import FunctionTool, Tool, tool
from automatos.tools.function import MAX_RESULT_CHARS


class Point(BaseModel):
    x: int
    y: int = 0


def plain(count: int, label: str = "item", ratio: float = 0.5) -> str:
    """Repeat a label.

    Args:
        count: how many times.
        label (str): what to repeat; it may be
            any text at all.

    Returns:
        The label, repeated.
    """
    return " ".join([label] * count)


def test_the_schema_of_a_plain_signature_has_its_defaults_and_descriptions() -> None:
    spec = FunctionTool.from_function(plain).spec
    assert spec.name == "plain"
    assert spec.description == "Repeat a label."
    assert spec.parameters == {
        "type": "object",
        "properties": {
            "count": {"type": "integer", "description": "how many times."},
            "label": {
                "type": "string",
                "default": "item",
                "description": "what to repeat; it may be any text at all.",
            },
            "ratio": {"type": "number", "default": 0.5},
        },
        "required": ["count"],
        "additionalProperties": False,
    }


def test_optional_literal_nested_model_and_list_become_their_json_schemas() -> None:
    def shapes(
        where: Point,
        mode: Literal["fast", "slow"],
        values: list[int],
        note: str | None = None,
    ) -> str:
        """Take shapes."""
        return "ok"

    parameters = FunctionTool.from_function(shapes).spec.parameters
    properties = parameters["properties"]
    assert properties["where"] == {"$ref": "#/$defs/Point"}
    assert parameters["$defs"]["Point"] == {
        "type": "object",
        "properties": {"x": {"type": "integer"}, "y": {"type": "integer", "default": 0}},
        "required": ["x"],
    }
    assert properties["mode"] == {"type": "string", "enum": ["fast", "slow"]}
    assert properties["values"] == {"type": "array", "items": {"type": "integer"}}
    assert properties["note"] == {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None}
    assert parameters["required"] == ["where", "mode", "values"]


def test_constraints_in_annotated_fields_reach_the_schema_and_the_validation() -> None:
    def pick(k: Annotated[int, Field(ge=1, le=20)] = 5) -> int:
        """Pick k."""
        return k

    made = FunctionTool.from_function(pick)
    assert made.spec.parameters["properties"]["k"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": 20,
        "default": 5,
    }
    with pytest.raises(ToolArgumentsError, match=r"k: Input should be less than or equal to 20"):
        asyncio.run(made.call({"k": 21}))


def test_a_numpy_style_docstring_describes_the_parameters() -> None:
    def scale(value: float, factor: float = 2.0) -> float:
        """Scale a value.

        Multiplies it.

        Parameters
        ----------
        value : float
            The value to scale.
        factor : float
            By how much.
        """
        return value * factor

    spec = FunctionTool.from_function(scale).spec
    assert spec.description == "Scale a value.\n\nMultiplies it."
    assert spec.parameters["properties"]["value"]["description"] == "The value to scale."
    assert spec.parameters["properties"]["factor"]["description"] == "By how much."


def test_a_parameter_named_like_a_model_attribute_or_title_works() -> None:
    def echo(json: str, model_config: int, title: str) -> str:
        """Echo."""
        return f"{json}/{model_config}/{title}"

    made = FunctionTool.from_function(echo)
    assert sorted(made.spec.parameters["properties"]) == ["json", "model_config", "title"]
    assert asyncio.run(made.call({"json": "a", "model_config": 2, "title": "t"})) == "a/2/t"


def test_positional_only_parameters_are_passed_by_position() -> None:
    def power(base: int, /, exponent: int = 2) -> int:
        """Power."""
        return int(base**exponent)

    assert asyncio.run(FunctionTool.from_function(power).call({"base": 3})) == "9"


def test_name_and_description_can_be_given() -> None:
    made = FunctionTool.from_function(plain, name="repeat-it", description="Repeats.")
    assert (made.spec.name, made.spec.description) == ("repeat-it", "Repeats.")
    assert made.name == "repeat-it"
    assert isinstance(made, Tool)


@pytest.mark.parametrize(
    ("function", "problem"),
    [
        (lambda *items: None, "cannot take \\*args or \\*\\*kwargs"),
        (lambda **items: None, "cannot take \\*args or \\*\\*kwargs"),
    ],
)
def test_variadic_parameters_are_refused(function: Any, problem: str) -> None:
    with pytest.raises(ConfigurationError, match=problem):
        FunctionTool.from_function(function, name="variadic", description="d")


def test_a_parameter_without_annotation_is_refused() -> None:
    def loose(a: int, b) -> None:  # type: ignore[no-untyped-def]  # b: no annotation
        """Loose."""

    with pytest.raises(ConfigurationError, match=r"parameter 'b' has no type annotation"):
        FunctionTool.from_function(loose)


@pytest.mark.parametrize("name", ["", "has space", "dotted.name", "x" * 65, "ünï"])
def test_names_outside_the_rule_are_refused(name: str) -> None:
    with pytest.raises(ConfigurationError, match="a tool name is 1 to 64 letters"):
        FunctionTool.from_function(plain, name=name)


def test_a_lambda_needs_a_name_and_a_function_needs_a_description() -> None:
    with pytest.raises(ConfigurationError, match=r"pass name=\.\.\."):
        FunctionTool.from_function(lambda: None, description="d")

    def bare() -> None:
        pass

    with pytest.raises(ConfigurationError, match="has no description"):
        FunctionTool.from_function(bare)
    assert FunctionTool.from_function(bare, description="Does nothing.").spec.description


class Opaque:
    """A class pydantic has no schema for."""


def test_a_type_pydantic_cannot_describe_is_refused_at_registration() -> None:
    def takes(thing: Opaque) -> None:
        """Take it."""

    with pytest.raises(ConfigurationError, match="cannot be described as JSON"):
        FunctionTool.from_function(takes)


def test_a_default_that_is_not_json_is_refused_at_registration() -> None:
    def takes(when: object = Opaque()) -> None:
        """Take it."""

    with pytest.raises(ConfigurationError, match=r"Default value .* is not JSON serializable"):
        FunctionTool.from_function(takes)


def test_an_unresolvable_annotation_is_refused() -> None:
    def later(thing: Missing) -> None:  # type: ignore[name-defined]  # noqa: F821
        """Later."""

    with pytest.raises(ConfigurationError, match="cannot be resolved"):
        FunctionTool.from_function(later)


async def test_validation_errors_name_each_field_without_echoing_the_input() -> None:
    made = FunctionTool.from_function(plain)
    secret = "s3cret-" + "x" * 5_000
    with pytest.raises(ToolArgumentsError) as caught:
        await made.call({"count": secret, "colour": "red"})
    message = str(caught.value)
    assert "count: Input should be a valid integer" in message
    assert "colour: not an argument of this tool" in message
    assert "s3cret" not in message and len(message) < 400
    assert caught.value.tool == "plain"

    with pytest.raises(ToolArgumentsError, match="count: required but missing"):
        await made.call({})


async def test_nested_models_are_validated_and_handed_over_as_models() -> None:
    seen: list[Point] = []

    def move(to: Point) -> str:
        """Move."""
        seen.append(to)
        return "moved"

    made = FunctionTool.from_function(move)
    assert await made.call({"to": {"x": 3}}) == "moved"
    assert seen == [Point(x=3, y=0)]
    with pytest.raises(ToolArgumentsError, match=r"to\.x: Input should be a valid integer"):
        await made.call({"to": {"x": "three"}})


async def test_async_and_sync_functions_both_run() -> None:
    @tool
    async def later(seconds: float) -> str:
        """Wait, then say so."""
        await asyncio.sleep(seconds)
        return "waited"

    @tool(name="where")
    def which_thread() -> str:
        """Name the thread."""
        return threading.current_thread().name

    assert await later.call({"seconds": 0.01}) == "waited"
    assert await which_thread.call({}) != threading.current_thread().name
    assert which_thread.name == "where"


async def test_an_object_with_an_async_call_is_awaited() -> None:
    class Greeter:
        """Greets."""

        async def __call__(self, who: str) -> str:
            return f"hello {who}"

    made = FunctionTool.from_function(Greeter(), name="greet")
    assert made.spec.parameters["required"] == ["who"]
    assert await made.call({"who": "ada"}) == "hello ada"


async def test_a_sync_tool_does_not_block_the_event_loop() -> None:
    def slow() -> str:
        """Sleep for a while, holding its thread."""
        time.sleep(0.5)
        return "done"

    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    counting = asyncio.create_task(ticker())
    try:
        assert await FunctionTool.from_function(slow).call({}) == "done"
    finally:
        counting.cancel()
    # on the loop the ticker would not have run once during the sleep
    assert ticks >= 10


async def test_an_exception_becomes_a_tool_failure_with_its_type_and_message() -> None:
    def broken(value: int) -> str:
        """Break."""
        raise ValueError(f"cannot handle {value}")

    with pytest.raises(ToolFailedError) as caught:
        await FunctionTool.from_function(broken).call({"value": 7})
    assert caught.value.tool == "broken"
    assert caught.value.detail == "ValueError: cannot handle 7"


async def test_a_tool_error_raised_inside_keeps_its_kind_under_the_registered_name() -> None:
    def picky(value: int) -> str:
        """Picky."""
        if value < 0:
            raise ToolArgumentsError("picky", "value must not be negative")
        raise ToolTimeoutError("picky", "took too long")

    made = FunctionTool.from_function(picky, name="renamed")
    with pytest.raises(ToolArgumentsError) as caught:
        await made.call({"value": -1})
    assert (caught.value.tool, caught.value.detail) == ("renamed", "value must not be negative")
    with pytest.raises(ToolTimeoutError) as timed:
        await made.call({"value": 1})
    assert timed.value.tool == "renamed" and timed.value.retryable


async def test_results_that_are_not_text_are_json() -> None:
    def answer(kind: str) -> Any:
        """Answer."""
        if kind == "dict":
            return {"a": [1, 2], "when": datetime(2024, 5, 1, tzinfo=UTC)}
        if kind == "model":
            return Point(x=1)
        if kind == "none":
            return None
        return object()

    made = FunctionTool.from_function(answer)
    assert await made.call({"kind": "dict"}) == '{"a": [1, 2], "when": "2024-05-01T00:00:00Z"}'
    assert await made.call({"kind": "model"}) == '{"x": 1, "y": 0}'
    assert await made.call({"kind": "none"}) == "null"
    with pytest.raises(ToolFailedError, match="returned a object that cannot be shown as JSON"):
        await made.call({"kind": "other"})


async def test_a_long_result_is_cut_with_a_note() -> None:
    def flood(size: int) -> str:
        """Flood."""
        return "x" * size

    made = FunctionTool.from_function(flood, max_result_chars=100)
    assert await made.call({"size": 100}) == "x" * 100
    cut = await made.call({"size": 1_000})
    assert cut.startswith("x" * 100 + "\n[truncated: the result has 1000 characters")
    assert "x" * 101 not in cut

    default = await FunctionTool.from_function(flood).call({"size": MAX_RESULT_CHARS * 3})
    assert len(default) < MAX_RESULT_CHARS + 200


async def test_cancelling_an_async_tool_is_not_reported_as_a_failure() -> None:
    started = asyncio.Event()

    async def forever() -> str:
        """Never end."""
        started.set()
        await asyncio.sleep(3600)
        return "never"

    task = asyncio.create_task(FunctionTool.from_function(forever).call({}))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
