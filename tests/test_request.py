"""A request must say something: the library refuses one with no letters or digits."""

from __future__ import annotations

import pytest

from automatos import Engine, InvalidRequestError, SubtaskSpec, WorkflowRequest
from automatos.testing import ScriptedLLM
from tests.conftest import fast_settings


@pytest.mark.parametrize("text", ["!!!", "🙂🙂", "   ", "\n\t", "-- ?? --", "→ ★"])
def test_a_request_without_words_is_refused(text: str) -> None:
    with pytest.raises(InvalidRequestError, match="has no letters or digits"):
        WorkflowRequest(text=text)
    with pytest.raises(InvalidRequestError, match="has no letters or digits"):
        WorkflowRequest(text=text, subtasks=(SubtaskSpec(id="a", description="x"),))


@pytest.mark.parametrize("text", ["x", "42", "¿qué?", "比较两个数据库", "Ünïcödé!"])
def test_any_letter_or_digit_will_do(text: str) -> None:
    assert WorkflowRequest(text=text).text == text


async def test_the_engine_refuses_it_before_calling_the_model() -> None:
    llm = ScriptedLLM(default="x")
    with pytest.raises(InvalidRequestError, match="no letters or digits"):
        await Engine(fast_settings(), llm=llm).run("🙂🙂")
    assert llm.calls == []


@pytest.mark.parametrize("text", ["Describe\x00Redis", "a\x1bb", "tail\x7f"])
def test_a_control_character_is_refused_by_position(text: str) -> None:
    with pytest.raises(InvalidRequestError, match="at position"):
        WorkflowRequest(text=text)


def test_tabs_and_line_breaks_are_text() -> None:
    assert WorkflowRequest(text="Compare:\n\tRedis\r\n\tSQLite").text.endswith("SQLite")


def test_two_agents_of_one_name_are_refused() -> None:
    from pydantic import ValidationError

    from automatos import AgentSpec

    first, second = AgentSpec(name="x", description="one"), AgentSpec(name="x", description="two")
    with pytest.raises(ValidationError, match="agents named twice: x"):
        WorkflowRequest(text="Do it.", agents=(first, second, AgentSpec(name="y")))
    assert WorkflowRequest(text="Do it.", agents=(first, AgentSpec(name="y"))).agents[0] is first
