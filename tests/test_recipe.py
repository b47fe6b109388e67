import time
from pathlib import Path

import pytest

from automatos import InvalidRequestError, load_recipe
from automatos.files import parse_data
from automatos.recipe import parse_recipe
from automatos.settings import PlanLimits

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


def _nested(depth: int, style: str) -> str:
    """A recipe whose subtasks are lists nested ``depth`` deep, in one of three styles."""
    if style == "json":
        return '{"request": "x", "subtasks": ' + "[" * depth + "]" * depth + "}"
    if style == "flow":
        return "request: x\nsubtasks: " + "[" * depth + "]" * depth + "\n"
    # block style, one mapping inside another by indentation
    return "request: x\nsubtasks:\n" + "".join(" " * (i + 1) + f"k{i}:\n" for i in range(depth))


@pytest.mark.parametrize("style", ["json", "flow", "block"])
@pytest.mark.parametrize("depth", [40, 10_000])
def test_deep_nesting_is_refused_not_a_recursion_error(style: str, depth: int) -> None:
    if style == "block" and depth > 2000:
        depth = 2000  # indentation grows with depth: 2,000 levels are 2 MB already
    with pytest.raises(InvalidRequestError, match="nested more than 32 levels deep"):
        parse_recipe(_nested(depth, style), source="deep.yaml")


def test_nesting_up_to_the_bound_is_parsed() -> None:
    data = parse_data("[" * 32 + "]" * 32, source="f")
    for _ in range(31):
        data = data[0]
    assert data == []
    with pytest.raises(InvalidRequestError, match=r"^f is nested more than 32 levels deep"):
        parse_data("[" * 33 + "]" * 33, source="f")
    with pytest.raises(InvalidRequestError, match="nested"):
        parse_data("{" + '"a": {' * 32 + "}" * 33, source="f")
    with pytest.raises(InvalidRequestError, match="nested"):
        parse_data("[" * 5000 + "]" * 5000, source="line 3", json_only=True)
    with pytest.raises(InvalidRequestError, match=r"^line 3 is not valid JSON: "):
        parse_data("a: b", source="line 3", json_only=True)
    assert parse_data("[[1]]", source="f", max_depth=2) == [[1]]
    with pytest.raises(InvalidRequestError, match="nested more than 1 levels"):
        parse_data("[[1]]", source="f", max_depth=1)


def test_null_subtasks_are_refused_not_planned() -> None:
    with pytest.raises(InvalidRequestError, match=r"'subtasks' is empty \(null\)"):
        parse_recipe("request: compare\nsubtasks:\n")
    with pytest.raises(InvalidRequestError, match=r"'subtasks' is empty \(null\)"):
        parse_recipe('{"request": "compare", "subtasks": null}')


def test_the_request_obeys_the_length_limit(tmp_path: Path) -> None:
    path = tmp_path / "long.yaml"
    path.write_text(f"request: {'x' * 101}\nsubtasks:\n  - id: a\n    description: d\n")
    limits = PlanLimits(max_request_chars=100)
    with pytest.raises(InvalidRequestError, match=r"101 characters long; the limit is 100 \("):
        load_recipe(path, limits=limits)
    assert len(load_recipe(path, limits=PlanLimits(max_request_chars=101)).text) == 101
    with pytest.raises(InvalidRequestError, match=r"plan\.max_request_chars"):
        parse_recipe(f"request: {'x' * 100_001}\nsubtasks: []\n")  # the default limit


def test_a_request_without_words_is_named_with_the_file() -> None:
    with pytest.raises(InvalidRequestError, match=r"^r\.yaml: 'request': .*no letters or digits"):
        parse_recipe("request: '?!'\nsubtasks:\n  - {id: a, description: d}\n", source="r.yaml")


def test_validation_errors_fit_on_one_line() -> None:
    with pytest.raises(InvalidRequestError) as caught:
        parse_recipe("request: x\nsubtasks:\n  - id: a\n  - description: b\n")
    message = str(caught.value)
    assert "\n" not in message
    assert "subtasks.0.description: Field required; subtasks.1.id: Field required" in message


def test_a_misspelt_subtask_field_is_refused_not_dropped() -> None:
    # `depend_on` used to be ignored: the subtask ran at once, without its dependencies.
    text = (
        "request: x\nsubtasks:\n  - {id: a, description: d}\n"
        "  - {id: b, description: e, depend_on: [a]}\n"
    )
    with pytest.raises(InvalidRequestError, match=r"subtasks\.1\.depend_on: Extra inputs"):
        parse_recipe(text)


def test_yaml_aliases_that_would_expand_exponentially_are_walked_once() -> None:
    # Ten levels of ten references: 10^10 paths if each is walked, a few dozen nodes really.
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 11)]
    lines += ["request: r", "subtasks: [{id: s, description: d}]"]
    started = time.perf_counter()
    data = parse_data("\n".join(lines), source="bomb.yaml")
    assert time.perf_counter() - started < 2
    assert data["subtasks"] == [{"id": "s", "description": "d"}]
    deep = "\n".join([*lines[:11], f"z: &z [{', '.join(['*a10'] * 10)}]"] * 1)
    with pytest.raises(InvalidRequestError, match="nested more than"):
        parse_data(deep, source="bomb.yaml", max_depth=10)


def test_a_yaml_error_is_one_line_with_its_place() -> None:
    with pytest.raises(InvalidRequestError) as caught:
        parse_recipe("request: x\nsubtasks:\n  - id: a\n   description: [\n", source="r.yaml")
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("r.yaml is not valid JSON or YAML: ")
    assert "(line 4, column 4)" in message
