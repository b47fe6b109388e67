"""Python tools of the caller's, given to the engine (``Engine(tools=...)``) and to workers
(``automatos worker --tool``): agents that name them call them; others do not see them."""

from __future__ import annotations

from pathlib import Path

import pytest

from automatos import (
    AgentSpec,
    ConfigurationError,
    Engine,
    SubtaskSpec,
    SubtaskStatus,
    WorkflowRequest,
    WorkflowStatus,
)
from automatos.settings import ToolSettings
from automatos.testing import Rule, ScriptedLLM, tool_call
from tests.conftest import fast_settings

CALLS: list[float] = []


def add_vat(amount: float, rate: float = 0.2) -> float:
    """The amount with value added tax.

    Args:
        amount: the net amount.
        rate: the tax rate, 0.2 for 20%.
    """
    CALLS.append(amount)
    return round(amount * (1 + rate), 2)


async def test_an_engines_python_tool_is_called_by_the_agent_that_names_it(
    tmp_path: Path,
) -> None:
    CALLS.clear()
    settings = fast_settings()
    settings.store.enabled = False
    settings.tools = ToolSettings(max_calls=3)
    pricer = AgentSpec(name="pricer", description="prices things", tools=("add_vat",))
    plain = AgentSpec(name="plain", description="writes")
    request = WorkflowRequest(
        text="Price it.",
        subtasks=(
            SubtaskSpec(id="price", description="price 100 with VAT", agent="pricer"),
            SubtaskSpec(
                id="say", description="say the price", agent="plain", depends_on=("price",)
            ),
        ),
        agents=(pricer, plain),
    )
    llm = ScriptedLLM(
        rules=[
            Rule("", "It costs 120.0 with VAT.", role="tool"),
            Rule(r"Your step \(price\)", tool_call("add_vat", {"amount": 100}), times=1),
        ],
        default="The price is 120.",
    )
    async with Engine(settings, llm=llm, tools=[add_vat]) as engine:
        result = await engine.run(request)
    assert result.status is WorkflowStatus.SUCCEEDED, result.error
    assert CALLS == [100.0]
    price = result.results["price"]
    assert price.status is SubtaskStatus.SUCCEEDED
    assert [(u.tool, u.outcome) for u in price.tool_calls] == [("add_vat", "ok")]
    assert result.results["say"].tool_calls == ()
    offered = {tuple(spec.name for spec in call.tools or ()) for call in llm.calls if call.tools}
    assert offered == {("add_vat",)}  # only the pricer was offered it


def test_engine_tools_are_checked_when_given() -> None:
    llm = ScriptedLLM(default="ok")

    def untyped(x):  # type: ignore[no-untyped-def]
        return x

    with pytest.raises(ConfigurationError, match="unique"):
        Engine(fast_settings(), llm=llm, tools=[add_vat, add_vat])
    with pytest.raises(ConfigurationError):
        Engine(fast_settings(), llm=llm, tools=[untyped])


def test_what_is_not_a_tool_is_refused_naming_it() -> None:
    class Klass:
        """A class, not a tool."""

    for thing in (Klass, 42, "add_vat"):
        with pytest.raises(ConfigurationError, match="is not a tool"):
            Engine(fast_settings(), llm=ScriptedLLM(default="ok"), tools=[thing])  # type: ignore[list-item]
