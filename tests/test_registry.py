"""The agent registry's files: a wrong agent is named in one line, with its fields."""

from __future__ import annotations

from pathlib import Path

import pytest

from automatos.errors import InvalidRequestError
from automatos.registry import load_agents, parse_agents, starter_agents


def test_the_starter_team_parses() -> None:
    assert {"generalist", "writer"} <= {a.name for a in starter_agents()}


def test_an_agent_of_the_wrong_shape_is_one_line_naming_it_and_its_fields() -> None:
    text = "agents:\n  - name: critic\n  - name: judge\n    temperature: 9\n    max_tokens: 0\n"
    with pytest.raises(InvalidRequestError) as info:
        parse_agents(text, source="team.yaml")
    assert str(info.value) == (
        "team.yaml: agent 2 ('judge') is not valid: temperature: Input should be less than or "
        "equal to 2; max_tokens: Input should be greater than 0"
    )


def test_an_agent_without_a_name(tmp_path: Path) -> None:
    path = tmp_path / "team.yaml"
    path.write_text("- description: reviews code\n")
    with pytest.raises(InvalidRequestError) as info:
        load_agents(path)
    assert str(info.value) == f"{path}: agent 1 is not valid: name: Field required"


def test_many_wrong_fields_stay_on_one_line() -> None:
    fields = "".join(f"  field_{i}: 1\n" for i in range(3))
    text = f"- name: x\n  temperature: -1\n  max_tokens: -1\n  cost_hint_usd: -1\n{fields}"
    with pytest.raises(InvalidRequestError) as info:
        parse_agents(text)
    assert "\n" not in str(info.value)
    assert str(info.value).startswith("agents: agent 1 ('x') is not valid: temperature: ")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[]", "must hold a non-empty list of agents"),
        ("agents: 3", "must hold a non-empty list of agents"),
        ("- name: a\n- name: a\n", "names agents twice: a"),
    ],
)
def test_files_that_are_not_a_team(text: str, problem: str) -> None:
    with pytest.raises(InvalidRequestError, match=problem):
        parse_agents(text)
