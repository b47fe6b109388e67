from pathlib import Path

import pytest

from automatos import InvalidRequestError, load_recipe
from automatos.recipe import parse_recipe

YAML = """
request: Compare two databases
agents:
  - name: researcher
    system_prompt: You research.
    model: small-model
subtasks:
  - id: a
    description: research A
    agent: researcher
  - id: b
    description: research B
  - id: c
    description: compare
    depends_on: [a, b]
"""


def test_yaml_recipe(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(YAML)
    request = load_recipe(path)
    assert request.text == "Compare two databases"
    assert request.is_recipe
    assert [s.id for s in request.subtasks or ()] == ["a", "b", "c"]
    assert request.agents[0].name == "researcher"


def test_json_recipe_and_request_override(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text('{"request": "old", "subtasks": [{"id": "a", "description": "do a"}]}')
    assert load_recipe(path, request="new").text == "new"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("request: x\nsubtasks: [", "not valid JSON or YAML"),
        ('{"request": "x", "subtasks": [}', "not valid JSON or YAML"),
        ("- just\n- a list\n", "must be a mapping"),
        ("request: x\n", "no 'subtasks'"),
        ("request: x\nsubtasks:\n  - id: a\n", "description"),
        ("request: x\nsubtasks:\n  - id: a\n    description: d\n    complexity: 9\n", "complexity"),
        ("subtasks:\n  - id: a\n    description: d\n", "needs 'request'"),
        ("request: 7\nsubtasks:\n  - id: a\n    description: d\n", "needs 'request'"),
        ("request: x\nsurprise: 1\nsubtasks: []\n", "surprise"),
    ],
)
def test_bad_recipes_name_the_problem(text: str, problem: str) -> None:
    with pytest.raises(InvalidRequestError, match=problem):
        parse_recipe(text)


def test_missing_and_binary_files(tmp_path: Path) -> None:
    with pytest.raises(InvalidRequestError, match="cannot read"):
        load_recipe(tmp_path / "nope.yaml")
    binary = tmp_path / "b.yaml"
    binary.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(InvalidRequestError, match="not UTF-8"):
        load_recipe(binary)
