import itertools

import pytest

from automatos import (
    CycleError,
    DanglingDependencyError,
    DuplicateSubtaskError,
    PlanError,
    PlanLimitError,
    SelfDependencyError,
    SubtaskSpec,
    build_plan,
)
from automatos.settings import PlanLimits


def spec(sid: str, *deps: str, complexity: int = 2) -> SubtaskSpec:
    return SubtaskSpec(id=sid, description=f"do {sid}", depends_on=deps, complexity=complexity)


def test_chain_layers_depth_and_critical_path() -> None:
    plan = build_plan([spec("a"), spec("b", "a"), spec("c", "b")])
    assert plan.layers == (("a",), ("b",), ("c",))
    assert plan.critical_path == ("a", "b", "c")
    assert plan.critical_path_cost == 6
    b = plan.by_id["b"].graph
    assert (b.layer, b.depth, b.predecessors, b.successors) == (1, 2, ("a",), ("c",))
    assert b.earliest_start == 2
    assert b.slack == 0
    assert b.on_critical_path


def test_diamond_critical_path_follows_the_heavier_branch() -> None:
    plan = build_plan(
        [
            spec("a", complexity=1),
            spec("light", "a", complexity=1),
            spec("heavy", "a", complexity=5),
            spec("z", "light", "heavy", complexity=1),
        ]
    )
    assert plan.critical_path == ("a", "heavy", "z")
    assert plan.critical_path_cost == 7
    light = plan.by_id["light"].graph
    assert light.slack == 4
    assert not light.on_critical_path
    assert plan.by_id["heavy"].graph.on_critical_path
    assert plan.by_id["z"].graph.predecessors == ("light", "heavy")
    assert plan.sinks == ("z",)


def test_independent_subtasks_share_layer_zero() -> None:
    plan = build_plan([spec("x", complexity=1), spec("y", complexity=3), spec("w", complexity=2)])
    assert plan.layers == (("x", "y", "w"),)
    assert plan.critical_path == ("y",)
    assert plan.by_id["x"].graph.slack == 2


def test_repeated_dependencies_count_once() -> None:
    plan = build_plan([spec("a"), spec("b", "a", "a")])
    assert plan.by_id["b"].graph.predecessors == ("a",)
    assert plan.by_id["a"].graph.successors == ("b",)


def test_empty_plan() -> None:
    with pytest.raises(PlanError, match="no subtasks"):
        build_plan([])


def test_duplicates_are_named() -> None:
    with pytest.raises(DuplicateSubtaskError) as info:
        build_plan([spec("a"), spec("b"), spec("a")])
    assert info.value.ids == ["a"]


def test_self_dependency_is_named() -> None:
    with pytest.raises(SelfDependencyError) as info:
        build_plan([spec("a"), spec("b", "b")])
    assert info.value.ids == ["b"]


def test_dangling_dependencies_are_named() -> None:
    with pytest.raises(DanglingDependencyError) as info:
        build_plan([spec("a", "ghost"), spec("b", "a", "phantom")])
    assert info.value.missing == {"a": ["ghost"], "b": ["phantom"]}


@pytest.mark.parametrize("length", [2, 3, 7, 50])
def test_cycles_are_found_and_named_in_execution_order(length: int) -> None:
    ids = [f"n{i}" for i in range(length)]
    specs = [spec(ids[i], ids[i - 1]) for i in range(length)]  # n0 depends on the last
    specs.append(spec("free"))
    specs.append(spec("after", "n0"))
    with pytest.raises(CycleError) as info:
        build_plan(specs, PlanLimits(max_subtasks=100))
    cycle = info.value.cycle
    assert cycle[0] == cycle[-1]
    assert len(cycle) == length + 1
    deps = {s.id: set(s.depends_on) for s in specs}
    for before, after in itertools.pairwise(cycle):
        assert before in deps[after], f"{after} does not depend on {before}"


def test_limits_name_their_setting() -> None:
    with pytest.raises(PlanLimitError, match=r"plan\.max_subtasks"):
        build_plan([spec(f"s{i}") for i in range(4)], PlanLimits(max_subtasks=3))
    with pytest.raises(PlanLimitError, match=r"plan\.max_depth"):
        build_plan([spec("a"), spec("b", "a"), spec("c", "b")], PlanLimits(max_depth=2))
    with pytest.raises(PlanLimitError, match=r"plan\.max_fanout"):
        build_plan([spec("a"), spec("b", "a"), spec("c", "a")], PlanLimits(max_fanout=1))
    with pytest.raises(PlanLimitError, match=r"plan\.max_field_chars"):
        build_plan([SubtaskSpec(id="a", description="x" * 101)], PlanLimits(max_field_chars=100))


def test_a_very_deep_chain_needs_no_recursion() -> None:
    n = 20_000
    specs = [spec("s0")] + [spec(f"s{i}", f"s{i - 1}") for i in range(1, n)]
    plan = build_plan(specs, PlanLimits(max_subtasks=n, max_depth=n))
    assert len(plan.critical_path) == n
    assert plan.by_id[f"s{n - 1}"].graph.depth == n


def test_a_very_long_cycle_is_named_without_recursion() -> None:
    n = 20_000
    specs = [spec(f"s{i}", f"s{(i - 1) % n}") for i in range(n)]
    with pytest.raises(CycleError) as info:
        build_plan(specs, PlanLimits(max_subtasks=n, max_depth=n))
    assert len(info.value.cycle) == n + 1
