"""The wrappers every call goes through pass tools on, and only when there are some: a provider
written before tools existed keeps working for agents without tools."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from automatos import ProviderContractError
from automatos.llm import ManagedLLM, Message
from automatos.llm.base import Completion, ToolCall, ToolSpec, completion_problem
from automatos.phases.evaluate.guard import GatedLLM
from automatos.settings import LLMSettings
from automatos.testing import ScriptedLLM

CALC = ToolSpec("calculator", "Arithmetic.", {"type": "object", "properties": {}})
HELLO = [Message("user", "hello")]


class OldProvider:
    """A provider of the signature before tools: any unknown keyword is a TypeError."""

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        model: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        json_schema: Mapping[str, Any] | None = None,
        timeout_s: float | None = None,
    ) -> Completion:
        return Completion("old", "m", 1, 1, 0.0)


def gated(inner: Any) -> GatedLLM:
    return GatedLLM(inner, refusal=lambda tokens: None, time_left=lambda: math.inf)


async def test_a_provider_without_tool_parameters_works_without_tools() -> None:
    assert (await ManagedLLM(OldProvider(), LLMSettings()).complete(HELLO)).text == "old"
    assert (await gated(OldProvider()).complete(HELLO)).text == "old"


async def test_tools_and_the_choice_reach_the_provider() -> None:
    inner = ScriptedLLM(default=ToolCall("c1", "calculator", "{}"))
    for wrapper in (ManagedLLM(inner, LLMSettings()), gated(inner)):
        done = await wrapper.complete(HELLO, tools=[CALC], tool_choice="required")
        assert done.tool_calls == (ToolCall("c1", "calculator", "{}"),)
    assert [(c.tools, c.tool_choice) for c in inner.calls] == [((CALC,), "required")] * 2


def untyped(call_id: Any, name: Any, arguments: Any) -> ToolCall:
    """A ToolCall with fields of any type, as a plugin's bug could make one."""
    return ToolCall(call_id, name, arguments)


@pytest.mark.parametrize(
    ("calls", "problem"),
    [
        ([ToolCall("c", "x", "{}")], "tool_calls is a list, not a tuple"),
        (("calculator",), r"tool_calls\[0\] is a str, not a ToolCall"),
        ((ToolCall("c", "x", "{}"), untyped("c", None, "{}")), r"tool_calls\[1\].name is None"),
        ((untyped("c", "x", {"a": 1}),), r"tool_calls\[0\].arguments is a dict"),
        ((untyped(7, "x", "{}"),), r"tool_calls\[0\].id is 7, not a str"),
    ],
)
async def test_a_completion_with_broken_tool_calls_is_a_contract_error(
    calls: Any, problem: str
) -> None:
    broken = Completion("", "m", 1, 1, 0.0, tool_calls=calls)
    assert completion_problem(broken) is not None

    class Broken:
        async def complete(self, messages: object, **options: object) -> Completion:
            return broken

    llm = ManagedLLM(Broken(), LLMSettings(max_retries=0))
    with pytest.raises(ProviderContractError, match=problem):
        await llm.complete(HELLO)


def test_sound_tool_calls_pass_the_check() -> None:
    done = Completion("", "m", 1, 1, 0.0, tool_calls=(ToolCall("c", "bad name!", "{x"),))
    assert completion_problem(done) is None
    assert completion_problem(Completion("", "m", 1, 1, 0.0)) is None
