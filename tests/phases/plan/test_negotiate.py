"""Stage 2b: agents review the plan, and each proposal ends applied or rejected with why."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from automatos import Engine, WorkflowRequest
from automatos.domain.agent import AgentSpec, Assignment
from automatos.domain.event import Event, PlanNegotiated, ProposalDecided
from automatos.domain.level import Level
from automatos.domain.plan import SubtaskSpec
from automatos.graph import build_plan
from automatos.llm.base import Message
from automatos.llm.profile import ModelProfile
from automatos.phases.contracts import Stage
from automatos.phases.events import EventBus
from automatos.phases.plan.negotiate import NegotiateStage
from automatos.phases.plan.proposals import spec_of
from automatos.phases.selector import PhaseSelector, StageSelection
from automatos.phases.state import Runtime, WorkflowState
from automatos.runners.local import LocalTaskRunner
from automatos.settings import Settings
from automatos.testing import Fault, Rule, ScriptedLLM
from tests.conftest import fast_settings, planner, step_of

RESEARCHER = AgentSpec(
    name="researcher", description="finds facts", capabilities=("research",), model="model-r"
)
ANALYST = AgentSpec(name="analyst", description="analyses data", capabilities=("analysis",))
WRITER = AgentSpec(name="writer", description="writes reports", capabilities=("writing",))
AGENTS = (RESEARCHER, ANALYST, WRITER)
NOTHING = json.dumps({"proposals": []})
SPECS = (
    SubtaskSpec(id="gather", description="gather the sales figures"),
    SubtaskSpec(id="analyse", description="analyse the trend", depends_on=("gather",)),
    SubtaskSpec(id="chart", description="chart the figures", depends_on=("gather",)),
    SubtaskSpec(id="report", description="write the report", depends_on=("analyse", "chart")),
)
OWNERS = {"gather": "researcher", "analyse": "analyst", "chart": "analyst", "report": "writer"}


def review(agent: str, *proposals: dict[str, Any], round_: int | None = None) -> Rule:
    """``agent``'s answer (in ``round_`` only, when given)."""
    number = str(round_) if round_ is not None else r"\d+"
    return Rule(rf"^Review by {agent}, round {number}\.", json.dumps({"proposals": proposals}))


def arbiter(*decisions: tuple[int, bool, str]) -> Rule:
    answer = [{"proposal": n, "accept": ok, "reason": why} for n, ok, why in decisions]
    return Rule(r"^Proposals to decide", json.dumps({"decisions": answer}))


def is_review(messages: Sequence[Message]) -> bool:
    return messages[-1].content.startswith("Review by ")


def is_arbiter(messages: Sequence[Message]) -> bool:
    return messages[-1].content.startswith("Proposals to decide")


def make_state(
    llm: ScriptedLLM,
    settings: Settings | None = None,
    *,
    owners: dict[str, str] | None = None,
    specs: Sequence[SubtaskSpec] = SPECS,
    profile: ModelProfile | None = None,
    **request: Any,
) -> tuple[WorkflowState, list[Event]]:
    settings = settings or fast_settings()
    runtime = Runtime(settings, llm, LocalTaskRunner(llm), profile=profile or ModelProfile())
    bus = EventBus("w")
    seen: list[Event] = []
    bus.subscribe(seen.append)
    state = WorkflowState(
        request=WorkflowRequest(text="Report on the sales trend", agents=AGENTS, **request),
        runtime=runtime,
        bus=bus,
    )
    state.planning.plan = build_plan(specs, settings.plan)
    state.planning.assignments = {
        sid: Assignment(sid, agent, "selected") for sid, agent in (owners or OWNERS).items()
    }
    return state, seen


def negotiate(state: WorkflowState) -> WorkflowState:
    asyncio.run(NegotiateStage().run(state))
    checked(state)
    return state


def checked(state: WorkflowState) -> None:
    """The plan passes the graph checks again, and every subtask has one known agent."""
    plan = state.require_plan()
    rebuilt = build_plan([spec_of(s) for s in plan.subtasks], state.runtime.settings.plan)
    assert [s.id for s in rebuilt.subtasks] == [s.id for s in plan.subtasks]
    assignments = state.planning.assignments
    assert list(assignments) == [s.id for s in plan.subtasks]
    assert all(a.agent in state.agents for a in assignments.values())


def deps(state: WorkflowState) -> dict[str, tuple[str, ...]]:
    return {s.id: s.depends_on for s in state.require_plan().subtasks}


def agents_of(state: WorkflowState) -> dict[str, str]:
    return {sid: a.agent for sid, a in state.planning.assignments.items()}


PARTS = [
    {"id": "chart_draft", "description": "draft the chart"},
    {"id": "chart_final", "description": "finish the chart", "depends_on": ["chart_draft"]},
]
CHANGES: dict[str, tuple[dict[str, Any], Callable[[WorkflowState], None]]] = {
    "split": (
        {"kind": "split", "subtask": "chart", "into": PARTS},
        lambda s: (
            deps(s)
            == {
                "gather": (),
                "analyse": ("gather",),
                "chart_draft": ("gather",),
                "chart_final": ("gather", "chart_draft"),
                "report": ("analyse", "chart_draft", "chart_final"),
            }
            and agents_of(s)["chart_final"] == "analyst"
        ),
    ),
    "merge": (
        {"kind": "merge", "subtasks": ["analyse", "chart"], "id": "study", "description": "x"},
        lambda s: deps(s) == {"gather": (), "study": ("gather",), "report": ("study",)},
    ),
    "reassign": (
        {"kind": "reassign", "subtask": "chart", "agent": "writer"},
        lambda s: agents_of(s)["chart"] == "writer" and deps(s) == dict(deps_before()),
    ),
    "add_dependency": (
        {"kind": "add_dependency", "subtask": "chart", "depends_on": "analyse"},
        lambda s: deps(s)["chart"] == ("gather", "analyse"),
    ),
    "drop_dependency": (
        {"kind": "drop_dependency", "subtask": "report", "depends_on": "chart"},
        lambda s: deps(s)["report"] == ("analyse",),
    ),
    "add_step": (
        {
            "kind": "add_step",
            "id": "review",
            "description": "review the draft",
            "depends_on": ["analyse", "chart"],
            "needed_by": ["report"],
        },
        lambda s: (
            deps(s)["review"] == ("analyse", "chart")
            and deps(s)["report"] == ("analyse", "chart", "review")
        ),
    ),
}


def deps_before() -> dict[str, tuple[str, ...]]:
    return {s.id: s.depends_on for s in SPECS}


def outcome_pairs(state: WorkflowState) -> list[tuple[str, str, str]]:
    report = state.planning.negotiation
    assert report is not None
    return [(p.kind, p.status, p.reason) for p in report.proposals]


@pytest.mark.parametrize("kind", list(CHANGES))
def test_a_change_two_agents_propose_is_applied_by_consensus(kind: str) -> None:
    change, expected = CHANGES[kind]
    llm = ScriptedLLM(
        rules=[
            review("analyst", {**change, "reason": "better"}, round_=1),
            review("writer", {**change, "reason": "agreed"}, round_=1),
        ],
        default=NOTHING,
    )
    state, _ = make_state(llm)
    negotiate(state)
    assert outcome_pairs(state) == [(kind, "applied", "proposed by analyst and writer")]
    assert expected(state)
    report = state.planning.negotiation
    assert report is not None
    assert report.rounds == 2  # the second round changed nothing: negotiation ended
    assert report.proposals[0].agents == ("analyst", "writer")
    assert report.proposals[0].change["reason"] == "better"  # the first proposer's words
    assert not any(is_arbiter(c.messages) for c in llm.calls)
    assert [s["id"] for s in report.plan_before] == ["gather", "analyse", "chart", "report"]
    assert report.plan_before[2]["agent"] == "analyst"
    assert all(c.json_schema is not None for c in llm.calls)


def test_a_lone_proposal_is_applied_if_the_planner_accepts_it() -> None:
    reassign = {"kind": "reassign", "subtask": "chart", "agent": "writer", "reason": "I draw"}
    step = {"kind": "add_step", "id": "proofread", "description": "proofread", "reason": "typos"}
    llm = ScriptedLLM(
        rules=[
            review("researcher", step, round_=1),
            review("writer", reassign, round_=1),
            arbiter((1, True, "fits the request"), (2, False, "the writer is busy")),
        ],
        default=NOTHING,
    )
    state, _ = make_state(llm)
    negotiate(state)
    assert outcome_pairs(state) == [
        ("add_step", "applied", "accepted by the planner: fits the request"),
        ("reassign", "rejected", "the planner rejected it: the writer is busy"),
    ]
    assert agents_of(state)["proofread"] == "researcher"  # the agent that proposed it
    assert agents_of(state)["chart"] == "analyst"
    asked = [c for c in llm.calls if is_arbiter(c.messages)]
    assert len(asked) == 1  # one call for the round's lone proposals
    prompt = asked[0].messages[-1].content
    assert '1. from researcher: {"kind": "add_step", "reason": "typos"' in prompt
    assert '2. from writer: {"kind": "reassign", "reason": "I draw"' in prompt
    assert asked[0].messages[0].content.startswith("You are the planner of a workflow engine")


@pytest.mark.parametrize(
    ("change", "words", "plan"),
    [
        (
            {"kind": "add_dependency", "subtask": "gather", "depends_on": "report"},
            "it would break the plan: dependency cycle: analyse -> report -> gather -> analyse",
            {},
        ),
        (
            {"kind": "split", "subtask": "chart", "into": PARTS},
            "the plan has 5 subtasks; the limit is 4 (setting plan.max_subtasks)",
            {"max_subtasks": 4},
        ),
        (
            {"kind": "reassign", "subtask": "chart", "agent": "ghost"},
            "it names no known agent: 'ghost'",
            {},
        ),
        (
            {"kind": "merge", "subtasks": ["chart", "ghost"], "id": "x", "description": "x"},
            "it names no subtask of the plan: 'ghost'",
            {},
        ),
        (
            {"kind": "add_dependency", "subtask": "chart", "depends_on": "analyse"},
            "a chain of 4 dependent subtasks; the limit is 3 (setting plan.max_depth)",
            {"max_depth": 3},
        ),
    ],
    ids=["cycle", "max subtasks", "unknown agent", "unknown subtask", "max depth"],
)
def test_a_change_that_would_break_the_plan_is_rejected_with_the_reason(
    change: dict[str, Any], words: str, plan: dict[str, Any]
) -> None:
    settings = fast_settings()
    settings.plan = settings.plan.model_copy(update=plan)
    llm = ScriptedLLM(
        rules=[review("analyst", change, round_=1), review("writer", change, round_=1)],
        default=NOTHING,
    )
    state, _ = make_state(llm, settings)
    negotiate(state)
    [(kind, status, reason)] = outcome_pairs(state)
    assert (kind, status) == (change["kind"], "rejected")
    assert words in reason
    assert deps(state) == deps_before() and agents_of(state) == OWNERS  # unchanged
    report = state.planning.negotiation
    assert report is not None and report.rounds == 1  # nothing applied: no second round


def test_an_answer_that_is_not_a_list_of_proposals_is_one_rejection_naming_the_error() -> None:
    llm = ScriptedLLM(
        rules=[
            Rule(r"^Review by researcher", "no json"),
            Rule(r"^Review by analyst", '{"proposals": [{"kind": "reassign"'),
            Rule(r"^Review by writer", '[{"kind": "reassign"}]'),
            Rule(r"^Your answer could not be used", "not json at all"),
        ],
        default=NOTHING,
    )
    state, _ = make_state(llm)
    negotiate(state)
    outcomes = state.planning.negotiation.proposals  # type: ignore[union-attr]
    assert [(p.agents, p.kind, p.status) for p in outcomes] == [
        (("researcher",), "malformed", "rejected"),
        (("analyst",), "malformed", "rejected"),
        (("writer",), "malformed", "rejected"),
    ]
    for p in outcomes:
        assert p.reason.startswith("the model's answer did not validate after a repair attempt")
        assert p.change == {"error": p.reason}
    repairs = [c for c in llm.calls if c.messages[-1].content.startswith("Your answer")]
    assert len(repairs) == 3
    shown = {c.messages[-2].content: c.messages[-1].content for c in repairs}
    assert "(root): Input should be a valid dictionary" in shown['[{"kind": "reassign"}]']


def test_each_proposal_is_validated_on_its_own() -> None:
    """One wrong proposal is its own rejection; the agent's valid ones go on, unrepaired."""
    reassign = {"kind": "reassign", "subtask": "chart", "agent": "writer"}
    self_merge = {"kind": "merge", "subtasks": ["chart", "chart"], "id": "x", "description": "x"}
    llm = ScriptedLLM(
        rules=[
            review(
                "analyst", {"kind": "delete", "subtask": "chart"}, reassign, self_merge, round_=1
            ),
            review("writer", reassign, "just a string", round_=1),
        ],
        default=NOTHING,
    )
    state, seen = make_state(llm)
    negotiate(state)
    assert not any(c.messages[-1].content.startswith("Your answer") for c in llm.calls)
    outcomes = state.planning.negotiation.proposals  # type: ignore[union-attr]
    assert [(p.agents, p.kind, p.status) for p in outcomes] == [
        (("analyst",), "malformed", "rejected"),
        (("analyst",), "malformed", "rejected"),
        (("writer",), "malformed", "rejected"),
        (("analyst", "writer"), "reassign", "applied"),
    ]
    delete, merge, string = (p.reason for p in outcomes[:3])
    assert delete.startswith("proposal #1 did not validate: ")
    assert "does not match any of the expected tags: 'split'" in delete
    assert merge.startswith("proposal #3 did not validate: ")
    assert "a merge needs two different subtasks, not 'chart' twice" in merge
    assert string.startswith("proposal #2 did not validate: ")
    assert all(p.change == {"error": p.reason} for p in outcomes[:3])
    assert agents_of(state)["chart"] == "writer"
    decided = [e for e in seen if isinstance(e, ProposalDecided)]
    assert len(decided) == len(outcomes)


def test_a_duplicate_proposal_of_one_agent_is_rejected_as_such() -> None:
    reassign = {"kind": "reassign", "subtask": "chart", "agent": "writer", "reason": "a"}
    again = {**reassign, "reason": "said twice"}
    llm = ScriptedLLM(
        rules=[
            review("analyst", reassign, again, round_=1),
            review("writer", reassign, round_=1),
        ],
        default=NOTHING,
    )
    state, _ = make_state(llm)
    negotiate(state)
    assert outcome_pairs(state) == [
        ("reassign", "rejected", "a duplicate of this agent's proposal #1 in this round"),
        ("reassign", "applied", "proposed by analyst and writer"),
    ]
    report = state.planning.negotiation
    assert report is not None
    assert report.proposals[0].agents == ("analyst",)
    assert report.proposals[0].change["reason"] == "said twice"


def test_different_changes_to_one_subtask_are_no_consensus() -> None:
    """Two splits of one subtask into different parts each go to the planner."""
    other_parts = [
        {"id": "chart_data", "description": "prepare the chart data"},
        {"id": "chart_plot", "description": "plot it", "depends_on": ["chart_data"]},
    ]
    mine = {"kind": "split", "subtask": "chart", "into": PARTS, "reason": "mine"}
    theirs = {"kind": "split", "subtask": "chart", "into": other_parts, "reason": "theirs"}
    step = {"kind": "add_step", "id": "check", "description": "check it", "needed_by": ["report"]}
    moved = {**step, "needed_by": ["chart"]}
    llm = ScriptedLLM(
        rules=[
            review("analyst", mine, step, round_=1),
            review("writer", theirs, moved, round_=1),
            arbiter(
                (1, False, "too fine"),
                (2, False, "not needed"),
                (3, True, "clearer parts"),
                (4, False, "not needed"),
            ),
        ],
        default=NOTHING,
    )
    state, _ = make_state(llm)
    negotiate(state)
    report = state.planning.negotiation
    assert report is not None
    round_one = [p for p in report.proposals if p.round == 1]
    assert [(p.agents, p.kind, p.status, p.reason) for p in round_one] == [
        (("analyst",), "split", "rejected", "the planner rejected it: too fine"),
        (("analyst",), "add_step", "rejected", "the planner rejected it: not needed"),
        (("writer",), "split", "applied", "accepted by the planner: clearer parts"),
        (("writer",), "add_step", "rejected", "the planner rejected it: not needed"),
    ]
    assert [s.id for s in state.require_plan().subtasks] == [
        "gather",
        "analyse",
        "chart_data",
        "chart_plot",
        "report",
    ]
    asked = next(c for c in llm.calls if is_arbiter(c.messages)).messages[-1].content
    assert "1. from analyst: " in asked and "3. from writer: " in asked
    assert '"chart_plot"' in asked


def test_the_same_change_in_other_words_is_a_consensus() -> None:
    """Descriptions agree without regard to case and spacing, parts without their order."""
    parts = [
        {"id": "chart_final", "description": "Finish  the chart ", "depends_on": ["chart_draft"]},
        {"id": "chart_draft", "description": "DRAFT the\nchart"},
    ]
    llm = ScriptedLLM(
        rules=[
            review("analyst", {"kind": "split", "subtask": "chart", "into": PARTS}, round_=1),
            review("writer", {"kind": "split", "subtask": "chart", "into": parts}, round_=1),
        ],
        default=NOTHING,
    )
    state, _ = make_state(llm)
    negotiate(state)
    assert outcome_pairs(state) == [("split", "applied", "proposed by analyst and writer")]
    assert state.require_plan().by_id["chart_draft"].description == "draft the chart"


def test_every_proposal_has_exactly_one_fate() -> None:
    split = {"kind": "split", "subtask": "chart", "into": PARTS}
    other = {**split, "into": [{**PARTS[0], "description": "something else"}, PARTS[1]]}
    reassign = {"kind": "reassign", "subtask": "analyse", "agent": "writer"}
    made = {
        "researcher": [split, reassign, reassign, {"kind": "nope"}],
        "analyst": [other, reassign],
        "writer": [split, other, {"kind": "reassign", "subtask": "gather", "agent": "analyst"}],
    }
    llm = ScriptedLLM(
        rules=[
            *(review(agent, *proposals, round_=1) for agent, proposals in made.items()),
            arbiter((1, True, "fine")),
        ],
        default=NOTHING,
    )
    state, _ = make_state(llm)
    negotiate(state)
    report = state.planning.negotiation
    assert report is not None
    first = [p for p in report.proposals if p.round == 1]
    for agent, proposals in made.items():
        assert sum(agent in p.agents for p in first) == len(proposals), agent


def test_an_answer_repaired_once_counts() -> None:
    reassign = {"kind": "reassign", "subtask": "chart", "agent": "writer"}
    llm = ScriptedLLM(
        rules=[
            Rule(r"^Review by analyst, round 1", "{oops"),
            Rule(r"^Your answer could not be used", json.dumps({"proposals": [reassign]})),
            review("writer", reassign, round_=1),
        ],
        default=NOTHING,
    )
    state, _ = make_state(llm)
    negotiate(state)
    assert outcome_pairs(state) == [("reassign", "applied", "proposed by analyst and writer")]


def test_proposals_over_the_limit_are_one_rejection_and_not_validated() -> None:
    settings = fast_settings()
    settings.negotiation.max_proposals = 1
    reassign = {"kind": "reassign", "subtask": "chart", "agent": "writer"}
    extra = {"kind": "drop_dependency", "subtask": "report", "depends_on": "chart"}
    llm = ScriptedLLM(
        rules=[
            review("analyst", reassign, extra, {"kind": "not validated"}, round_=1),
            review("writer", reassign, extra, round_=1),
        ],
        default=NOTHING,
    )
    state, _ = make_state(llm, settings)
    negotiate(state)
    setting = "(setting negotiation.max_proposals)"
    assert outcome_pairs(state) == [
        (
            "over_limit",
            "rejected",
            f"2 more proposals over the limit of 1 were not considered {setting}",
        ),
        (
            "over_limit",
            "rejected",
            f"1 more proposals over the limit of 1 were not considered {setting}",
        ),
        ("reassign", "applied", "proposed by analyst and writer"),
    ]
    report = state.planning.negotiation
    assert report is not None
    assert report.proposals[0].agents == ("analyst",)
    assert report.proposals[0].change == {"count": 2, "limit": 1}
    assert deps(state)["report"] == ("analyse", "chart")
    review_call = next(c for c in llm.calls if is_review(c.messages))
    assert review_call.json_schema is not None
    assert review_call.json_schema["properties"]["proposals"]["maxItems"] == 1


def test_a_flood_of_proposals_makes_a_few_events() -> None:
    flood = [{"kind": "add_step", "id": f"s{i}", "description": "x"} for i in range(2_000)]
    llm = ScriptedLLM(
        rules=[
            review("analyst", *flood, round_=1),
            arbiter(*((n, False, "no") for n in range(1, 6))),
        ],
        default=NOTHING,
    )
    state, seen = make_state(llm)
    negotiate(state)
    decided = [e for e in seen if isinstance(e, ProposalDecided)]
    assert len(decided) == 5 + 1  # max_proposals decided, and one for the rest
    assert decided[0].reason == (
        "1995 more proposals over the limit of 5 were not considered "
        "(setting negotiation.max_proposals)"
    )


def test_a_recorded_change_is_bounded() -> None:
    parts = [{"id": f"p{i}", "description": "d" * 5_000} for i in range(30)]
    split = {"kind": "split", "subtask": "chart", "into": parts, "reason": "why"}
    llm = ScriptedLLM(
        rules=[review("analyst", split, round_=1), review("writer", split, round_=1)],
        default=NOTHING,
    )
    state, seen = make_state(llm)
    negotiate(state)
    [decided] = [e for e in seen if isinstance(e, ProposalDecided)]
    assert decided.status == "applied"
    assert len(state.require_plan().by_id["p29"].description) == 5_000  # the plan has it all
    into = decided.change["into"]
    assert len(into) == 21 and into[-1] == "[… and 10 more]"
    assert all(len(p["description"]) < 520 for p in into[:-1])
    assert len(json.dumps(decided.change)) < 20_000


def test_an_answer_too_long_to_read_is_malformed() -> None:
    huge = json.dumps({"proposals": [], "notes": "x" * 300_000})
    llm = ScriptedLLM(
        rules=[Rule(r"^Review by analyst", huge), Rule(r"^Your answer could not", huge)],
        default=NOTHING,
    )
    state, _ = make_state(llm)
    negotiate(state)
    [(kind, status, reason)] = outcome_pairs(state)
    assert (kind, status) == ("malformed", "rejected")
    assert f"the answer is {len(huge)} characters long; at most 200000 are read" in reason


def test_rounds_are_bounded() -> None:
    """The researcher proposes a new step every round and the planner accepts each."""

    def step(messages: Sequence[Message]) -> str:
        number = re.match(r"Review by researcher, round (\d+)", messages[-1].content)
        assert number is not None
        n = number.group(1)
        proposal = {"kind": "add_step", "id": f"extra{n}", "description": f"more {n}"}
        return json.dumps({"proposals": [proposal]})

    settings = fast_settings()
    settings.negotiation.max_rounds = 3
    llm = ScriptedLLM(
        rules=[Rule(r"^Review by researcher", step), arbiter((1, True, "fine"))],
        default=NOTHING,
    )
    state, seen = make_state(llm, settings)
    negotiate(state)
    report = state.planning.negotiation
    assert report is not None and report.rounds == 3
    assert [p.change["id"] for p in report.proposals] == ["extra1", "extra2", "extra3"]
    assert sum(is_review(c.messages) for c in llm.calls) == 3 * 3
    assert sum(is_arbiter(c.messages) for c in llm.calls) == 3
    [done] = [e for e in seen if isinstance(e, PlanNegotiated)]
    assert (done.rounds, done.applied, done.rejected) == (3, 3, 0)
    assert (done.subtasks_before, done.subtasks_after) == (4, 7)
    assert len(state.llm_calls) == 12 and {c.stage for c in state.llm_calls} == {"negotiate"}


@pytest.mark.parametrize(
    "case", ["two agents", "disabled", "cannot plan", "one subtask", "deadline passed"]
)
def test_no_call_is_made_when_the_plan_is_not_negotiated(case: str) -> None:
    llm = ScriptedLLM(default=NOTHING)
    settings = fast_settings()
    owners, specs, profile = dict(OWNERS), SPECS, None
    if case == "two agents":
        owners["report"] = "analyst"
    elif case == "disabled":
        settings.negotiation.enabled = False
    elif case == "cannot plan":
        profile = ModelProfile(plans_freely=False)
    elif case == "one subtask":
        specs, owners = SPECS[:1], {"gather": "researcher"}
    state, seen = make_state(llm, settings, owners=owners, specs=specs, profile=profile)
    if case == "deadline passed":

        async def late() -> None:
            state.deadline = asyncio.get_running_loop().time() - 1
            await NegotiateStage().run(state)

        asyncio.run(late())
    else:
        negotiate(state)
    assert not llm.calls and not seen and not state.warnings
    report = state.planning.negotiation
    if case in ("two agents", "one subtask"):  # the stage says why it had nothing to do
        assert report is not None and report.rounds == 0 and not report.proposals
        assert "negotiation.min_agents" in report.skipped
    else:
        assert report is None
    assert agents_of(state) == owners


def test_every_fate_is_an_event() -> None:
    change = {"kind": "reassign", "subtask": "chart", "agent": "writer", "reason": "mine"}
    cycle = {"kind": "add_dependency", "subtask": "gather", "depends_on": "chart"}
    llm = ScriptedLLM(
        rules=[
            review("analyst", change, cycle, round_=1),
            review("writer", change, cycle, round_=1),
            Rule(r"^Review by researcher, round 1", "no json"),
            Rule(r"^Your answer could not be used", "still no json"),
        ],
        default=NOTHING,
    )
    state, seen = make_state(llm)
    negotiate(state)
    report = state.planning.negotiation
    assert report is not None
    decided = [e for e in seen if isinstance(e, ProposalDecided)]
    assert [(e.round, e.agents, e.proposal, e.change, e.status, e.reason) for e in decided] == [
        (p.round, list(p.agents), p.kind, p.change, p.status, p.reason) for p in report.proposals
    ]
    assert [(e.proposal, e.status) for e in decided] == [
        ("malformed", "rejected"),
        ("reassign", "applied"),
        ("add_dependency", "rejected"),
    ]
    assert "dependency cycle: chart -> gather -> chart" in decided[2].reason
    assert isinstance(seen[-1], PlanNegotiated)
    assert (seen[-1].applied, seen[-1].rejected, seen[-1].rounds) == (1, 2, 2)


def test_the_assignments_say_what_was_negotiated() -> None:
    change = {"kind": "split", "subtask": "chart", "into": PARTS}
    reassign = {"kind": "reassign", "subtask": "analyse", "agent": "researcher"}
    llm = ScriptedLLM(
        rules=[
            review("analyst", change, reassign, round_=1),
            review("writer", change, reassign, round_=1),
        ],
        default=NOTHING,
    )
    state, _ = make_state(llm)
    state.planning.task_types = {"gather": "research", "chart": "analysis", "analyse": "x"}
    negotiate(state)
    reasons = {sid: a.reason for sid, a in state.planning.assignments.items()}
    assert reasons == {
        "gather": "selected",
        "analyse": "negotiated: reassign proposed by analyst and writer",
        "chart_draft": "negotiated: split proposed by analyst and writer",
        "chart_final": "negotiated: split proposed by analyst and writer",
        "report": "selected",
    }
    assert agents_of(state)["analyse"] == "researcher"
    assert state.planning.task_types == {"gather": "research", "analyse": "x"}
    assert state.task_type("chart_draft")  # recomputed for the new subtask


def test_each_agent_reviews_with_its_own_model_and_sees_the_plan() -> None:
    llm = ScriptedLLM(default=NOTHING)
    state, _ = make_state(llm)
    negotiate(state)
    calls = {c.messages[-1].content.split(",")[0]: c for c in llm.calls}
    assert set(calls) == {"Review by researcher", "Review by analyst", "Review by writer"}
    researcher = calls["Review by researcher"]
    assert researcher.model == "model-r" and calls["Review by writer"].model is None
    system, user = (m.content for m in researcher.messages)
    assert system.startswith("You are researcher, one agent of a team")
    assert system.endswith("About you: finds facts [capabilities: research]")
    assert "- analyse: analyse the trend (agent: analyst; depends on: gather)" in user
    assert "- report: write the report (agent: writer; depends on: analyse, chart)" in user
    assert "Your subtasks: gather" in user
    assert "- writer: writes reports [capabilities: writing]" in user
    assert "- generalist: " in user
    assert "- researcher:" not in user
    assert "Report on the sales trend" in user
    # no proposals at all: one round, recorded, nothing changed
    report = state.planning.negotiation
    assert report is not None and report.rounds == 1 and report.proposals == ()


def test_a_failed_review_call_is_a_rejection_and_the_others_go_on() -> None:
    change = {"kind": "reassign", "subtask": "chart", "agent": "writer"}
    llm = ScriptedLLM(
        rules=[
            Rule(r"^Review by researcher", Fault.server_error()),
            review("analyst", change, round_=1),
            review("writer", change, round_=1),
        ],
        default=NOTHING,
    )
    state, _ = make_state(llm)
    negotiate(state)
    failed = "the review call failed (ProviderUnavailableError): HTTP 500: scripted server error"
    assert outcome_pairs(state)[:2] == [
        ("failed", "rejected", failed),
        ("reassign", "applied", "proposed by analyst and writer"),
    ]
    assert state.warnings[-1].startswith("stage 2b: 2 model call(s) failed or were not allowed")


@pytest.mark.parametrize(
    ("planner_reply", "reason"),
    [
        (
            Fault.server_error(),
            "the planner could not be asked (ProviderUnavailableError): HTTP 500: scripted "
            "server error",
        ),
        (json.dumps({"decisions": [{"proposal": 9, "accept": True}]}), "gave no decision"),
        (
            json.dumps({"decisions": [{"proposal": 1, "accept": False}]}),
            "the planner rejected it: no reason given",
        ),
    ],
    ids=["call fails", "no decision", "no reason"],
)
def test_lone_proposals_the_planner_does_not_accept_are_rejected(
    planner_reply: object, reason: str
) -> None:
    change = {"kind": "reassign", "subtask": "chart", "agent": "writer"}
    llm = ScriptedLLM(
        rules=[
            review("writer", change),
            Rule(r"^Proposals to decide", planner_reply),  # type: ignore[arg-type]
        ],
        default=NOTHING,
    )
    state, _ = make_state(llm)
    negotiate(state)
    [(kind, status, why)] = outcome_pairs(state)
    assert (kind, status) == ("reassign", "rejected") and reason in why
    assert agents_of(state) == OWNERS


def test_a_budget_that_forbids_the_calls_leaves_the_plan_unchanged() -> None:
    change = {"kind": "reassign", "subtask": "chart", "agent": "writer"}
    llm = ScriptedLLM(rules=[review("writer", change)], default=NOTHING)
    state, _ = make_state(llm, budget_tokens=100)
    negotiate(state)
    assert not llm.calls
    outcomes = outcome_pairs(state)
    assert [(k, s) for k, s, _ in outcomes] == [("failed", "rejected")] * 3
    assert all("(BudgetExceededError): the budget stopped" in why for _, _, why in outcomes)
    assert agents_of(state) == OWNERS and deps(state) == deps_before()
    assert state.warnings == [
        "stage 2b: 3 model call(s) failed or were not allowed; the plan went on without them "
        f"(last: {outcomes[-1][2]})"
    ]


def test_a_deadline_that_cuts_the_reviews_leaves_the_plan_unchanged() -> None:
    change = {"kind": "reassign", "subtask": "chart", "agent": "writer"}
    llm = ScriptedLLM(
        rules=[review("writer", change), review("analyst", change)], default=NOTHING, latency=5
    )
    state, _ = make_state(llm)

    async def cut() -> float:
        state.deadline = asyncio.get_running_loop().time() + 0.3
        started = time.perf_counter()
        await NegotiateStage().run(state)
        return time.perf_counter() - started

    elapsed = asyncio.run(cut())
    checked(state)
    assert elapsed < 1
    outcomes = outcome_pairs(state)
    assert [(k, s) for k, s, _ in outcomes] == [("failed", "rejected")] * 3
    assert all("WorkflowTimeoutError" in why for _, _, why in outcomes)
    assert agents_of(state) == OWNERS
    assert state.warnings and "deadline" in state.warnings[-1]


class Negotiating:
    """The engine's own stages, with stage 2b after the agents are chosen (whether or not
    the PhaseSelector has it yet)."""

    def select(self, request: WorkflowRequest, level: Level, runtime: Runtime) -> StageSelection:
        chosen = PhaseSelector().select(request, level, runtime)
        stages: list[Stage] = list(chosen.stages)
        names = [s.name for s in stages]
        if "negotiate" not in names:
            stages.insert(names.index("select_agents") + 1, NegotiateStage())
        return StageSelection(stages, chosen.skipped)


async def test_a_negotiated_plan_is_what_the_engine_runs() -> None:
    selection = {
        "assignments": [
            {"subtask_id": sid, "agent": agent, "confidence": 0.9, "reason": "fits"}
            for sid, agent in OWNERS.items()
        ]
    }
    split = {"kind": "split", "subtask": "chart", "into": PARTS, "reason": "two steps"}
    llm = ScriptedLLM(
        rules=[
            planner(*(s.model_dump(exclude={"agent"}) for s in SPECS)),
            Rule(lambda p: p.startswith("Subtasks:"), json.dumps(selection)),
            review("analyst", split, round_=1),
            review("writer", split, round_=1),
            Rule(r"^Review by", NOTHING),
        ],
        default=lambda messages: f"out:{step_of(messages)}",
    )
    seen: list[Event] = []
    result = await Engine(fast_settings(), llm=llm, selector=Negotiating()).run(
        WorkflowRequest(text="Report on the sales trend", agents=AGENTS), on_event=seen.append
    )
    assert result.status.value == "succeeded", result.warnings
    assert "negotiate" in result.stages
    ids = [s.id for s in result.plan.subtasks]
    assert ids == ["gather", "analyse", "chart_draft", "chart_final", "report"]
    assert {sid: r.output for sid, r in result.results.items()} == {i: f"out:{i}" for i in ids}
    assert result.negotiation is not None
    assert [(p.kind, p.status) for p in result.negotiation.proposals] == [("split", "applied")]
    assert [s["id"] for s in result.negotiation.plan_before] == list(OWNERS)
    assert {a.subtask_id: a.agent for a in result.assignments}["chart_final"] == "analyst"
    kinds = [e.kind for e in seen]
    assert kinds.index("proposal_decided") < kinds.index("plan_negotiated")
    assert sum(c.stage == "negotiate" for c in result.llm_calls) == 3 + 3
