"""The tool seam: what an agent can call in its tool loop, whoever implements it (a Python
function, an MCP server's tool)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from automatos.llm.base import ToolSpec

__all__ = ["Tool"]


@runtime_checkable
class Tool(Protocol):
    """One callable tool.

    ``call`` gets the arguments already parsed from the model's JSON into an object; it
    validates them against ``spec.parameters`` (raising
    :class:`~automatos.errors.ToolArgumentsError` naming the field) before doing anything,
    and returns the result as text for the model. It raises
    :class:`~automatos.errors.ToolError` subclasses only: the tool loop hands their message
    back to the model as the tool's result.
    """

    @property
    def spec(self) -> ToolSpec:
        """The name, description and argument schema the model sees."""
        ...

    async def call(self, arguments: Mapping[str, Any]) -> str:
        """Run the tool once."""
        ...
