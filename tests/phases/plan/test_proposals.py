"""Stage 2b's proposals: each kind applied to a real, checked plan, or rejected with why."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from automatos.domain.plan import SubtaskSpec
from automatos.errors import (
    CycleError,
    DanglingDependencyError,
    DuplicateSubtaskError,
    PlanLimitError,
    SelfDependencyError,
)
from automatos.graph import build_plan
from automatos.phases.plan.proposals import (
    MAX_CHANGE_CHARS,
    MAX_CHANGE_ITEMS,
    MAX_REASON_CHARS,
    Draft,
    Proposal,
    Rejection,
    Review,
    apply,
    as_change,
    consensus_key,
    read_proposal,
    spec_of,
)
from automatos.phases.quotes import CUT_MARK
from automatos.settings import PlanLimits

AGENTS = ("researcher", "analyst", "writer")
LIMITS = PlanLimits()
PROPOSAL: TypeAdapter[Proposal] = TypeAdapter(Proposal)


def diamond() -> Draft:
    """gather -> (analyse, chart) -> report, one agent per layer."""
    specs = [
        SubtaskSpec(id="gather", description="gather the sales figures", complexity=3),
        SubtaskSpec(id="analyse", description="analyse the trend", depends_on=("gather",)),
        SubtaskSpec(id="chart", description="chart the figures", depends_on=("gather",)),
        SubtaskSpec(
            id="report",
            description="write the report",
            depends_on=("analyse", "chart"),
            expected_output="a report",
        ),
    ]
    agents = {"gather": "researcher", "analyse": "analyst", "chart": "analyst"}
    return Draft(build_plan(specs), {**agents, "report": "writer"})


def proposal(**fields: Any) -> Proposal:
    return PROPOSAL.validate_python(fields)


def applied(
    change: Proposal, draft: Draft | None = None, limits: PlanLimits = LIMITS, by: str = "writer"
) -> Draft:
    result = apply(change, draft or diamond(), proposer=by, agents=AGENTS, limits=limits)
    assert isinstance(result, Draft), result
    checked(result, limits)
    return result


def rejected(
    change: Proposal, draft: Draft | None = None, limits: PlanLimits = LIMITS
) -> Rejection:
    result = apply(change, draft or diamond(), proposer="writer", agents=AGENTS, limits=limits)
    assert isinstance(result, Rejection), result
    return result


def checked(draft: Draft, limits: PlanLimits = LIMITS) -> None:
    """The draft's plan passes the graph checks again, and every subtask has one agent."""
    rebuilt = build_plan([spec_of(s) for s in draft.plan.subtasks], limits)
    assert [s.id for s in rebuilt.subtasks] == [s.id for s in draft.plan.subtasks]
    assert set(draft.agents) == {s.id for s in draft.plan.subtasks}


def deps(draft: Draft) -> dict[str, tuple[str, ...]]:
    return {s.id: s.depends_on for s in draft.plan.subtasks}


def test_a_split_takes_the_subtasks_place_and_its_dependents_wait_for_every_part() -> None:
    before = diamond()
    after = applied(
        proposal(
            kind="split",
            subtask="gather",
            into=[
                {"id": "gather_web", "description": "gather figures from the web"},
                {"id": "gather_db", "description": "query the database", "depends_on": []},
                {
                    "id": "gather_merge",
                    "description": "merge both",
                    "depends_on": ["gather_web", "gather_db"],
                },
            ],
            reason="two sources",
        ),
        before,
    )
    ids = [s.id for s in after.plan.subtasks]
    assert ids == ["gather_web", "gather_db", "gather_merge", "analyse", "chart", "report"]
    assert deps(after)["gather_merge"] == ("gather_web", "gather_db")
    every_part = ("gather_web", "gather_db", "gather_merge")
    assert deps(after)["analyse"] == deps(after)["chart"] == every_part
    assert {after.agents[i] for i in every_part} == {"researcher"}  # the split one's agent
    assert after.plan.by_id["gather_web"].complexity == 1  # 3 shared by 3
    assert "gather" in before.plan.by_id  # the input is not changed
    assert before.agents["gather"] == "researcher"


def test_a_split_part_inherits_the_dependencies_and_may_keep_the_id() -> None:
    after = applied(
        proposal(
            kind="split",
            subtask="analyse",
            into=[
                {"id": "analyse", "description": "analyse the trend"},
                {"id": "forecast", "description": "forecast", "depends_on": ["analyse"]},
            ],
        )
    )
    assert deps(after)["analyse"] == ("gather",)
    assert deps(after)["forecast"] == ("gather", "analyse")
    assert deps(after)["report"] == ("analyse", "forecast", "chart")
    assert after.agents["forecast"] == "analyst"


@pytest.mark.parametrize(
    ("into", "error", "words"),
    [
        (
            [{"id": "chart", "description": "x"}, {"id": "y", "description": "y"}],
            DuplicateSubtaskError,
            "duplicate subtask ids: chart",
        ),
        (
            [
                {"id": "x", "description": "x", "depends_on": ["y"]},
                {"id": "y", "description": "y", "depends_on": ["x"]},
            ],
            CycleError,
            "dependency cycle: x -> y -> x",
        ),
        (
            [
                {"id": "x", "description": "x", "depends_on": ["nowhere"]},
                {"id": "y", "description": "y"},
            ],
            DanglingDependencyError,
            "x -> nowhere",
        ),
        (
            [
                {"id": "x", "description": "x", "depends_on": ["report"]},
                {"id": "y", "description": "y"},
            ],
            CycleError,
            "dependency cycle",
        ),
    ],
    ids=["duplicate id", "cycle among parts", "dangling", "cycle through a dependent"],
)
def test_a_split_that_breaks_the_graph_is_rejected_with_the_graph_error(
    into: list[dict[str, Any]], error: type[Exception], words: str
) -> None:
    rejection = rejected(proposal(kind="split", subtask="analyse", into=into))
    assert rejection.error is error
    assert words in rejection.reason
    assert rejection.reason.startswith("it would break the plan: ")


def test_a_split_beyond_the_limits_is_rejected_naming_the_setting() -> None:
    parts = [{"id": f"p{i}", "description": "part"} for i in range(3)]
    rejection = rejected(
        proposal(kind="split", subtask="chart", into=parts), limits=PlanLimits(max_subtasks=5)
    )
    assert rejection.error is PlanLimitError
    assert "the plan has 6 subtasks; the limit is 5 (setting plan.max_subtasks)" in rejection.reason
    long = [{"id": "p", "description": "x" * 101}, {"id": "q", "description": "q"}]
    rejection = rejected(
        proposal(kind="split", subtask="chart", into=long),
        limits=PlanLimits(max_field_chars=100),
    )
    assert "plan.max_field_chars" in rejection.reason


def test_a_split_of_an_unknown_subtask_names_it_and_the_plans_subtasks() -> None:
    parts = [{"id": "x", "description": "x"}, {"id": "y", "description": "y"}]
    rejection = rejected(proposal(kind="split", subtask="ghost", into=parts))
    assert rejection.error is None
    assert rejection.reason == (
        "it names no subtask of the plan: 'ghost' (the plan has gather, analyse, chart, report)"
    )


def test_a_merge_unites_dependencies_and_rewires_dependents() -> None:
    after = applied(
        proposal(
            kind="merge",
            subtasks=["chart", "analyse"],
            id="study",
            description="analyse and chart the trend",
            reason="one job",
        )
    )
    assert [s.id for s in after.plan.subtasks] == ["gather", "study", "report"]
    assert deps(after) == {"gather": (), "study": ("gather",), "report": ("study",)}
    assert after.plan.by_id["study"].complexity == 4  # 2 + 2
    assert after.agents["study"] == "analyst"


def test_a_merge_of_a_subtask_and_its_dependency_leaves_no_self_dependency() -> None:
    after = applied(
        proposal(kind="merge", subtasks=["report", "chart"], id="report", description="all")
    )
    assert deps(after)["report"] == ("analyse", "gather")
    assert after.agents["report"] == "writer"  # the agent of the one named first
    assert after.plan.by_id["report"].expected_output == "a report"
    assert after.plan.by_id["report"].complexity == 4


def test_a_merge_is_rejected_when_it_breaks_the_graph_or_names_no_subtask() -> None:
    rejection = rejected(
        proposal(kind="merge", subtasks=["chart", "analyse"], id="report", description="x")
    )
    assert rejection.error is DuplicateSubtaskError
    rejection = rejected(
        proposal(kind="merge", subtasks=["chart", "ghost"], id="x", description="x")
    )
    assert "'ghost'" in rejection.reason
    # gather and report merged: the new subtask would wait for analyse, which waits for it
    rejection = rejected(
        proposal(kind="merge", subtasks=["gather", "report"], id="both", description="x")
    )
    assert rejection.error is CycleError
    assert "dependency cycle: analyse -> both -> analyse" in rejection.reason


def test_a_merge_of_one_subtask_with_itself_does_not_validate() -> None:
    with pytest.raises(ValidationError, match="two different subtasks"):
        proposal(kind="merge", subtasks=["chart", "chart"], id="x", description="x")


def test_recipe_fixed_agents_are_kept() -> None:
    specs = [
        SubtaskSpec(id="a", description="a", agent="researcher"),
        SubtaskSpec(id="b", description="b", agent="writer"),
        SubtaskSpec(id="c", description="c"),
    ]
    draft = Draft(build_plan(specs), {"a": "researcher", "b": "writer", "c": "analyst"})
    rejection = rejected(proposal(kind="reassign", subtask="a", agent="analyst"), draft)
    assert rejection.reason == "the recipe fixed the agent of 'a' to 'researcher'"
    rejection = rejected(
        proposal(kind="merge", subtasks=["a", "b"], id="ab", description="x"), draft
    )
    assert "one subtask cannot keep both" in rejection.reason
    merged = applied(proposal(kind="merge", subtasks=["c", "b"], id="cb", description="x"), draft)
    assert merged.agents["cb"] == "writer"  # the recipe's agent wins over the first named
    assert merged.plan.by_id["cb"].agent == "writer"
    parts = [{"id": "a1", "description": "x"}, {"id": "a2", "description": "y"}]
    split = applied(proposal(kind="split", subtask="a", into=parts), draft)
    assert {split.plan.by_id[i].agent for i in ("a1", "a2")} == {"researcher"}


def test_a_reassignment_needs_a_known_subtask_a_known_agent_and_a_change() -> None:
    after = applied(proposal(kind="reassign", subtask="chart", agent="writer"))
    assert after.agents["chart"] == "writer"
    assert after.plan.subtasks == diamond().plan.subtasks
    unknown = rejected(proposal(kind="reassign", subtask="chart", agent="ghost"))
    assert unknown.reason == (
        "it names no known agent: 'ghost' (the agents are researcher, analyst, writer)"
    )
    assert (
        "'nothing'" in rejected(proposal(kind="reassign", subtask="nothing", agent="writer")).reason
    )
    same = rejected(proposal(kind="reassign", subtask="chart", agent="analyst"))
    assert same.reason == "'chart' is already assigned to 'analyst': nothing to change"


def test_dependencies_are_added_and_dropped() -> None:
    after = applied(proposal(kind="add_dependency", subtask="chart", depends_on="analyse"))
    assert deps(after)["chart"] == ("gather", "analyse")
    assert after.plan.by_id["chart"].graph.layer == 2
    after = applied(proposal(kind="drop_dependency", subtask="report", depends_on="chart"))
    assert deps(after)["report"] == ("analyse",)


@pytest.mark.parametrize(
    ("change", "error", "words"),
    [
        (
            {"kind": "add_dependency", "subtask": "gather", "depends_on": "report"},
            CycleError,
            "dependency cycle: analyse -> report -> gather -> analyse",
        ),
        (
            {"kind": "add_dependency", "subtask": "chart", "depends_on": "chart"},
            SelfDependencyError,
            "subtasks that depend on themselves: chart",
        ),
        (
            {"kind": "add_dependency", "subtask": "chart", "depends_on": "gather"},
            None,
            "'chart' already depends on 'gather': nothing to change",
        ),
        (
            {"kind": "add_dependency", "subtask": "chart", "depends_on": "ghost"},
            None,
            "it names no subtask of the plan: 'ghost'",
        ),
        (
            {"kind": "drop_dependency", "subtask": "chart", "depends_on": "analyse"},
            None,
            "'chart' does not depend on 'analyse': nothing to drop",
        ),
    ],
    ids=["cycle", "self", "already", "unknown", "not a dependency"],
)
def test_a_dependency_change_that_cannot_be_is_rejected(
    change: dict[str, Any], error: type[Exception] | None, words: str
) -> None:
    rejection = rejected(proposal(**change))
    assert rejection.error is error
    assert words in rejection.reason


def test_a_dependency_beyond_the_depth_limit_is_rejected() -> None:
    rejection = rejected(
        proposal(kind="add_dependency", subtask="chart", depends_on="analyse"),
        limits=PlanLimits(max_depth=3),
    )
    assert rejection.error is PlanLimitError
    assert "a chain of 4 dependent subtasks; the limit is 3 (setting plan.max_depth)" in (
        rejection.reason
    )


def test_a_new_step_goes_between_its_neighbours_to_the_agent_that_proposed_it() -> None:
    after = applied(
        proposal(
            kind="add_step",
            id="check",
            description="check the figures",
            depends_on=["gather"],
            needed_by=["analyse", "chart"],
        ),
        by="researcher",
    )
    assert [s.id for s in after.plan.subtasks] == ["gather", "check", "analyse", "chart", "report"]
    assert deps(after)["check"] == ("gather",)
    assert deps(after)["analyse"] == deps(after)["chart"] == ("gather", "check")
    assert after.agents["check"] == "researcher"
    alone = applied(proposal(kind="add_step", id="summary", description="sum up"))
    assert alone.plan.subtasks[-1].id == "summary"
    assert alone.agents["summary"] == "writer"


def test_a_new_step_that_cannot_be_is_rejected() -> None:
    twice = rejected(proposal(kind="add_step", id="chart", description="again"))
    assert twice.error is DuplicateSubtaskError
    unknown = rejected(proposal(kind="add_step", id="x", description="x", needed_by=["ghost"]))
    assert "'ghost'" in unknown.reason
    loop = rejected(
        proposal(
            kind="add_step", id="x", description="x", depends_on=["report"], needed_by=["gather"]
        )
    )
    assert loop.error is CycleError
    wide = rejected(
        proposal(kind="add_step", id="x", description="x", needed_by=["gather", "chart"]),
        limits=PlanLimits(max_fanout=1),
    )
    assert "plan.max_fanout" in wide.reason


def test_the_same_change_has_the_same_key() -> None:
    def key(**fields: Any) -> tuple[object, ...]:
        return consensus_key(proposal(**fields))

    parts = [
        {"id": "x", "description": "Draft it", "depends_on": ["b", "a"]},
        {"id": "y", "description": "y"},
    ]
    split = key(kind="split", subtask="a", into=parts)
    same = [
        {"id": "y", "description": "Y", "reason": "ignored"},
        {"id": "x", "description": " draft\n  IT", "depends_on": ["a", "b"]},
    ]
    assert split == key(kind="split", subtask="a", into=same, reason="mine")
    for other in (
        [{**parts[0], "description": "finish it"}, parts[1]],
        [{**parts[0], "id": "z"}, parts[1]],
        [{**parts[0], "depends_on": ["a"]}, parts[1]],
        [*parts, {"id": "w", "description": "w"}],
    ):
        assert split != key(kind="split", subtask="a", into=other)
    assert split != key(kind="split", subtask="b", into=parts)

    merge = key(kind="merge", subtasks=["a", "b"], id="x", description="Both")
    assert merge == key(kind="merge", subtasks=["a", "b"], id="x", description="both ")
    assert merge != key(kind="merge", subtasks=["a", "b"], id="y", description="both")
    assert merge != key(kind="merge", subtasks=["a", "b"], id="x", description="other")
    assert merge != key(kind="merge", subtasks=["b", "a"], id="x", description="both")

    assert key(kind="reassign", subtask="a", agent="x") != key(
        kind="reassign", subtask="a", agent="y"
    )
    assert key(kind="add_dependency", subtask="a", depends_on="b") != key(
        kind="drop_dependency", subtask="a", depends_on="b"
    )

    step = key(kind="add_step", id="s", description="x", depends_on=["a"], needed_by=["b"])
    assert step == key(
        kind="add_step", id="s", description="X", depends_on=["a", "a"], needed_by=["b"]
    )
    assert step != key(kind="add_step", id="s", description="x", depends_on=["a"])
    assert step != key(kind="add_step", id="s", description="y", depends_on=["a"], needed_by=["b"])
    assert step != key(kind="add_step", id="t", description="x", depends_on=["a"], needed_by=["b"])


def test_a_change_is_shown_bounded() -> None:
    long = "w" * 2_000
    parts = [{"id": f"p{i}", "description": long} for i in range(25)]
    shown = as_change(proposal(kind="split", subtask="a", into=parts, reason="r"))
    assert list(shown)[:3] == ["kind", "reason", "subtask"]
    assert len(shown["into"]) == MAX_CHANGE_ITEMS + 1
    assert shown["into"][-1] == "[… and 5 more]"
    first = shown["into"][0]
    assert first["description"] == "w" * MAX_CHANGE_CHARS + CUT_MARK
    short = as_change(proposal(kind="reassign", subtask="a", agent="b"))
    assert short == {"kind": "reassign", "reason": "", "subtask": "a", "agent": "b"}


def test_a_proposal_is_read_on_its_own() -> None:
    assert read_proposal({"kind": "reassign", "subtask": "a", "agent": "b"}).kind == "reassign"
    with pytest.raises(ValidationError, match="a merge needs two different subtasks"):
        read_proposal({"kind": "merge", "subtasks": ["a", "a"], "id": "x", "description": "x"})
    with pytest.raises(ValidationError, match="does not match any of the expected tags"):
        read_proposal({"kind": "delete"})


def test_an_answer_is_validated_by_kind() -> None:
    review = Review.model_validate(
        {
            "proposals": [
                {"kind": "reassign", "subtask": " a ", "agent": "x", "confidence": 0.9},
                {"kind": "drop_dependency", "subtask": "a", "depends_on": "b", "reason": "r" * 900},
            ]
        }
    )
    first, second = review.proposals
    assert first.kind == "reassign" and first.subtask == "a"  # stripped, extras ignored
    assert len(second.reason) == MAX_REASON_CHARS
    with pytest.raises(ValidationError, match="does not match any of the expected tags"):
        Review.model_validate({"proposals": [{"kind": "delete", "subtask": "a"}]})
    with pytest.raises(ValidationError, match="into"):
        Review.model_validate({"proposals": [{"kind": "split", "subtask": "a", "into": []}]})
    with pytest.raises(ValidationError, match="proposals"):
        Review.model_validate({})
