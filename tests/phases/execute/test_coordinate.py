"""Stage 4b: findings shared by one group of subtasks reach later groups, with provenance."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Sequence
from typing import Any

import pytest

from automatos import (
    AgentSpec,
    Engine,
    Event,
    FindingShared,
    Level,
    StageError,
    SubtaskSpec,
    WorkflowRequest,
    WorkflowStatus,
)
from automatos.domain.collaboration import Finding
from automatos.domain.level import Phase
from automatos.field.base import FindingKind, SharedContext
from automatos.field.findings import instruction
from automatos.field.memory import InProcessSharedContext
from automatos.llm.base import Message
from automatos.phases.contracts import ASSIGNMENTS, PLAN, SHARED, Stage
from automatos.phases.events import EventBus
from automatos.phases.execute.coordinate import CoordinateStage, close_shared
from automatos.phases.quotes import CUT_MARK
from automatos.phases.selector import PhaseSelector, StageSelection
from automatos.phases.state import Runtime, WorkflowState
from automatos.runners.local import LocalTaskRunner
from automatos.settings import Settings
from automatos.testing import ScriptedLLM
from tests.conftest import fast_settings, step_of

LAUNCH = "FACT: the launch date moved to 14 March"
PROVENANCE = '[F1 fact, from research by analyst] "the launch date moved to 14 March"'


class WithStage:
    """The engine's own stages, with ``stage`` just before execution (where the
    PhaseSelector puts stage 4b at Organ and above), unless it is there already."""

    def __init__(self, stage: Stage | None = None) -> None:
        self.stage = stage or CoordinateStage()

    def select(self, request: WorkflowRequest, level: Level, runtime: Runtime) -> StageSelection:
        chosen = PhaseSelector().select(request, level, runtime)
        stages = [s for s in chosen.stages if s.name != "coordinate"]
        at = next(i for i, s in enumerate(stages) if s.name == "execute")
        stages.insert(at, self.stage)
        return StageSelection(stages, chosen.skipped)


def engine(
    llm: ScriptedLLM, settings: Settings | None = None, stage: Stage | None = None
) -> Engine:
    return Engine(settings or fast_settings(), llm=llm, selector=WithStage(stage))


def prompt_of(llm: ScriptedLLM, step: str) -> str:
    return next(c.messages[-1].content for c in llm.calls if step_of(c.messages) == step)


def launch_plan() -> WorkflowRequest:
    """Three groups in a chain: research -> draft -> announce, each its own agent."""
    agents = tuple(AgentSpec(name=n) for n in ("analyst", "writer", "announcer"))
    return WorkflowRequest(
        text="Plan the product launch and write its announcement.",
        subtasks=(
            SubtaskSpec(id="research", description="check the launch facts", agent="analyst"),
            SubtaskSpec(
                id="draft", description="draft the plan", depends_on=("research",), agent="writer"
            ),
            SubtaskSpec(
                id="announce",
                description="write the announcement with the launch date",
                depends_on=("draft",),
                agent="announcer",
            ),
        ),
        agents=agents,
    )


def launch_llm() -> ScriptedLLM:
    def reply(messages: Sequence[Message]) -> str:
        step, prompt = step_of(messages), messages[-1].content
        if step == "research":
            return f"The venue is ready and the press list is done.\n\nFindings:\n- {LAUNCH}"
        if step == "draft":  # passing on what it read shares nothing new
            repeat = "Fact: The launch date moved to 14 March."
            return f"Plan drafted: venue, press, keynote.\n\nFindings:\n- {repeat}"
        if step == "announce":  # what the announcer knows decides what it writes
            date = "14 March" if PROVENANCE in prompt else "1 March"
            return f"We launch on {date}."
        return "{}"  # a judge's or other stage's call: not what this test is about

    return ScriptedLLM(default=reply)


async def test_a_finding_of_group_one_changes_group_three_answer_with_provenance() -> None:
    llm = launch_llm()
    events: list[Event] = []
    result = await engine(llm).run(launch_plan(), on_event=events.append)
    assert result.status is WorkflowStatus.SUCCEEDED
    assert "coordinate" in result.stages
    announce = prompt_of(llm, "announce")
    # announce depends on draft only: research's finding reached it through the shared
    # context, quoted with its provenance, not as a dependency's output.
    assert "from research by analyst" in announce and PROVENANCE in announce
    assert "The venue is ready" not in announce
    assert result.final_answer == "We launch on 14 March."
    # the direct dependent sees it too; the first group has nothing to read
    assert PROVENANCE in prompt_of(llm, "draft")
    assert "Findings shared by other agents" not in prompt_of(llm, "research")
    # asked to share: the groups some later group reads; the last is not asked
    ask = instruction(fast_settings().coordination.max_findings)
    assert prompt_of(llm, "research").endswith(ask) and prompt_of(llm, "draft").endswith(ask)
    assert ask not in announce
    # the committed output (what the user sees, what is scored) no longer carries the block
    research = result.results["research"]
    assert research.output == "The venue is ready and the press list is done."
    assert result.results["draft"].output == "Plan drafted: venue, press, keynote."
    # reported as an event and in the result, once (draft's repeat is not a finding of its own)
    assert result.findings == (
        Finding(
            id=1,
            kind="fact",
            text="the launch date moved to 14 March",
            subtask_id="research",
            agent="analyst",
        ),
    )
    shared = [e for e in events if isinstance(e, FindingShared)]
    assert [(e.finding, e.finding_kind, e.subtask_id, e.agent, e.contradicts) for e in shared] == [
        (1, "fact", "research", "analyst", [])
    ]
    # shared before research's result was committed, so before draft started
    kinds = [(type(e).__name__, getattr(e, "subtask_id", "")) for e in events]
    assert kinds.index(("FindingShared", "research")) < kinds.index(("SubtaskFinished", "research"))

    # the same workflow without coordination: the announcer never learns of the new date
    off = fast_settings()
    off.coordination.enabled = False
    llm = launch_llm()
    events = []
    result = await engine(llm, off).run(launch_plan(), on_event=events.append)
    assert result.status is WorkflowStatus.SUCCEEDED
    assert result.final_answer == "We launch on 1 March."
    assert result.findings == () and not any(isinstance(e, FindingShared) for e in events)
    for step in ("research", "draft", "announce"):
        assert "Findings shared by other agents" not in prompt_of(llm, step)
        assert ask not in prompt_of(llm, step)
    # not asked, so not parsed: its answer is committed as the agent wrote it
    research = result.results["research"]
    assert research.output is not None and research.output.endswith(LAUNCH)


async def test_a_contradicting_finding_is_marked_in_the_event_the_result_and_the_prompt() -> None:
    answers = {
        "a": "Checked.\nFindings:\n- FACT: the launch date moved to 14 March",
        "b": "Rechecked.\nFindings:\n- FACT: the launch date is 21 March\n- QUESTION: which holds?",
        "c": "Done.",
    }
    llm = ScriptedLLM(default=lambda m: answers.get(step_of(m), "{}"))
    events: list[Event] = []
    request = WorkflowRequest(
        text="the request",
        subtasks=(
            SubtaskSpec(id="a", description="step a"),
            SubtaskSpec(id="b", description="step b", depends_on=("a",)),
            SubtaskSpec(id="c", description="step c", depends_on=("b",)),
        ),
    )
    result = await engine(llm).run(request, on_event=events.append)
    assert [(f.id, f.kind, f.contradicts) for f in result.findings] == [
        (1, "fact", ()),
        (2, "fact", (1,)),
        (3, "question", ()),
    ]
    assert [e.contradicts for e in events if isinstance(e, FindingShared)] == [[], [1], []]
    prompt = prompt_of(llm, "c")
    agent = result.findings[1].agent
    assert f'[F2 fact, from b by {agent}; contradicts F1] "the launch date is 21 March"' in prompt
    assert f'[F1 fact, from a by {agent}] "the launch date moved to 14 March"' in prompt


async def test_findings_and_dependency_outputs_share_the_quoted_budget() -> None:
    # Five noisy subtasks share 8 long findings each; "source" shares one and, slower,
    # finishes last; "target" depends on source only. Its prompt can hold few findings.
    noise = [f"noise{i}" for i in range(5)]

    def reply(messages: Sequence[Message]) -> str:
        step = step_of(messages)
        if step in noise:
            lines = [f"- FACT: {step} item{j} " + f"w{j}x " * 120 for j in range(8)]
            return "Noise.\n\nFindings:\n" + "\n".join(lines)
        if step == "source":
            why = "for contrast " * 30  # as long as a noisy one: only priority keeps it
            return "S" * 20_000 + f"\n\nFindings:\n- DECISION: the target uses the blue theme {why}"
        return "{}" if not step else "ok"

    llm = ScriptedLLM(default=reply, latency=lambda m: 0.05 if step_of(m) == "source" else 0.0)
    settings = fast_settings(max_quoted_chars=6_000, max_dependency_chars=50_000)
    request = WorkflowRequest(
        text="the request",
        subtasks=(
            *(SubtaskSpec(id=n, description=f"step {n}") for n in noise),
            SubtaskSpec(id="source", description="step source"),
            SubtaskSpec(id="target", description="step target", depends_on=("source",)),
        ),
    )
    result = await engine(llm, settings).run(request)
    assert result.status is WorkflowStatus.SUCCEEDED
    assert len(result.findings) == 41  # every finding was shared...
    prompt = prompt_of(llm, "target")
    quoted = prompt[prompt.index("Findings shared by other agents") :]
    quoted = quoted[: quoted.index("\n\n")] if "\n\n" in quoted else quoted
    assert len(quoted) <= 6_000 // 4  # ... but findings get a quarter of the budget at most
    assert re.search(r"\((\d+) more findings not shown: the quoted-output budget\)", quoted)
    # the finding of its own dependency comes first, whatever else was shared
    agent = result.results["source"].agent
    assert f'decision, from source by {agent}] "the target uses the blue theme' in quoted
    assert all(len(f.text) <= 500 for f in result.findings)  # coordination.max_finding_chars
    output = prompt[prompt.index("### source\n") + len("### source\n") :]
    output = output[: output.index("\n\nFindings shared")]
    assert output.endswith(CUT_MARK)
    assert len(output) - len(CUT_MARK) + len(quoted) <= 6_000  # together within the budget


async def test_an_answer_that_is_only_findings_is_empty_and_retried() -> None:
    replies = iter(["Findings:\n- FACT: only a finding", "Real answer.\nFindings:\n- FACT: kept"])
    llm = ScriptedLLM(default=lambda m: next(replies) if step_of(m) == "a" else "ok")
    request = WorkflowRequest(
        text="the request",
        subtasks=(
            SubtaskSpec(id="a", description="step a"),
            SubtaskSpec(id="b", description="step b", depends_on=("a",)),
        ),
    )
    result = await engine(llm).run(request)
    a = result.results["a"]
    assert a.attempts == 2 and a.output == "Real answer."
    assert [f.text for f in result.findings] == ["kept"]  # the rejected answer shared nothing


async def test_a_single_step_or_single_layer_workflow_is_not_asked_for_findings() -> None:
    llm = ScriptedLLM(default="42")
    text = "What is six times seven?"
    result = await engine(llm).run(WorkflowRequest(text=text, level=Level.ATOM))
    assert result.final_answer == "42"
    assert llm.calls[0].messages[-1].content == text  # the request itself, nothing added

    llm = ScriptedLLM(default=lambda m: "Done.\nFindings:\n- FACT: x is 1" if step_of(m) else "{}")
    request = WorkflowRequest(
        text="the request",
        subtasks=tuple(SubtaskSpec(id=s, description=f"step {s}") for s in "abc"),
    )
    result = await engine(llm).run(request)
    assert result.findings == ()  # one layer: no one could read a finding
    steps = [c.messages[-1].content for c in llm.calls if step_of(c.messages)]
    assert len(steps) == 3 and all("Findings:" not in p for p in steps)


class OpensThis:
    """A coordinate stage that opens a given shared context."""

    name = "coordinate"
    phase = Phase.EXECUTE
    reads = frozenset({PLAN, ASSIGNMENTS})
    writes = frozenset({SHARED})

    def __init__(self, shared: SharedContext) -> None:
        self.shared = shared

    async def run(self, state: WorkflowState) -> None:
        state.execution.shared = self.shared


class Failing(InProcessSharedContext):
    async def add(
        self,
        kind: FindingKind,
        text: str,
        subtask_id: str,
        agent: str,
        contradicts: tuple[int, ...] = (),
    ) -> Finding:
        raise ConnectionError("the shared context is down")


class Unreadable(InProcessSharedContext):
    async def findings(self, after: int = 0) -> list[Finding]:
        raise ConnectionError("the shared context is unreachable")


async def test_a_shared_context_that_cannot_be_read_costs_the_findings_not_the_subtasks() -> None:
    llm = launch_llm()
    result = await engine(llm, stage=OpensThis(Unreadable())).run(launch_plan())
    assert result.status is WorkflowStatus.SUCCEEDED
    assert result.final_answer == "We launch on 1 March."
    assert any(
        "subtask 'announce': the shared context Unreadable could not be read" in w
        and "unreachable" in w
        for w in result.warnings
    )


async def test_a_shared_context_that_fails_costs_the_findings_not_the_subtask() -> None:
    shared = Failing()
    llm = launch_llm()
    result = await engine(llm, stage=OpensThis(shared)).run(launch_plan())
    assert result.status is WorkflowStatus.SUCCEEDED
    assert result.findings == ()
    assert any(
        "subtask 'research': its findings could not be shared" in w
        and "the shared context is down" in w
        for w in result.warnings
    )
    research = result.results["research"]
    assert research.output == "The venue is ready and the press list is done."
    assert result.final_answer == "We launch on 1 March."
    assert shared.closed


async def test_the_shared_context_is_closed_when_the_workflow_is_cancelled() -> None:
    shared = InProcessSharedContext()
    started = asyncio.Event()

    def latency(messages: Sequence[Message]) -> float:
        if step_of(messages) == "draft":
            started.set()
            return 60.0
        return 0.0

    llm = launch_llm()
    llm.latency = latency
    run = asyncio.ensure_future(engine(llm, stage=OpensThis(shared)).run(launch_plan()))
    await asyncio.wait_for(started.wait(), 10)
    assert [f.text for f in await shared.findings()] == ["the launch date moved to 14 March"]
    assert not shared.closed
    run.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await run
    assert shared.closed


async def test_a_prompt_quotes_findings_of_earlier_layers_only() -> None:
    # b and c are both layer 1; c waits for the slow x, so b has shared by the time c
    # starts: c still does not read it (same layer), d (layer 2) does.
    def reply(messages: Sequence[Message]) -> str:
        step = step_of(messages)
        return f"Done {step}.\nFindings:\n- DECISION: {step} picked option {step}" if step else "{}"

    llm = ScriptedLLM(default=reply, latency=lambda m: 0.05 if step_of(m) == "x" else 0.0)
    request = WorkflowRequest(
        text="the request",
        subtasks=(
            SubtaskSpec(id="a", description="step a"),
            SubtaskSpec(id="x", description="step x"),
            SubtaskSpec(id="b", description="step b", depends_on=("a",)),
            SubtaskSpec(id="c", description="step c", depends_on=("a", "x")),
            SubtaskSpec(id="d", description="step d", depends_on=("b", "c")),
        ),
    )
    events: list[Event] = []
    await engine(llm).run(request, on_event=events.append)
    order = [(type(e).__name__, getattr(e, "subtask_id", "")) for e in events]
    assert order.index(("FindingShared", "b")) < order.index(("SubtaskStarted", "c"))
    c = prompt_of(llm, "c")
    assert "from a by" in c and "from x by" in c
    assert "from b by" not in c
    d = prompt_of(llm, "d")
    assert all(f"from {s} by" in d for s in "axbc")


async def test_findings_beyond_the_limit_stay_in_the_answer_with_one_warning() -> None:
    block = "Findings:\n- FACT: the venue is booked\n- FACT: the venue holds 300\n"
    answers = {
        "a": "Checked.\n\n" + block + "- QUESTION: who caters?\n- DECISION: press on Monday",
        "b": "Drafted.",
    }
    llm = ScriptedLLM(default=lambda m: answers.get(step_of(m), "{}"))
    settings = fast_settings()
    settings.coordination.max_findings = 2
    request = WorkflowRequest(
        text="the request",
        subtasks=(
            SubtaskSpec(id="a", description="step a"),
            SubtaskSpec(id="b", description="step b", depends_on=("a",)),
        ),
    )
    result = await engine(llm, settings).run(request)
    assert result.status is WorkflowStatus.SUCCEEDED
    assert [f.text for f in result.findings] == ["the venue is booked", "the venue holds 300"]
    # what was not shared is not lost: it stays in the committed answer, under its heading
    assert result.results["a"].output == (
        "Checked.\n\nFindings:\n- QUESTION: who caters?\n- DECISION: press on Monday"
    )
    assert "- QUESTION: who caters?" in prompt_of(llm, "b")
    left = [w for w in result.warnings if "beyond the limit" in w]
    assert left == [
        "subtask 'a': 2 findings beyond the limit of 2 were not shared and left in its answer "
        "(setting coordination.max_findings)"
    ]


def bare_state(shared: SharedContext | None) -> WorkflowState:
    llm = ScriptedLLM()
    state = WorkflowState(
        request=WorkflowRequest(text="r"),
        runtime=Runtime(fast_settings(), llm, LocalTaskRunner(llm)),
        bus=EventBus("w"),
    )
    state.execution.shared = shared
    return state


class Hangs(InProcessSharedContext):
    async def aclose(self) -> None:
        await asyncio.sleep(3600)


class BreaksOnClose(InProcessSharedContext):
    async def aclose(self) -> None:
        raise OSError("the socket is gone")


async def test_closing_the_shared_context_is_bounded_and_never_raises() -> None:
    shared = InProcessSharedContext()
    state = bare_state(shared)
    await close_shared(state)
    assert shared.closed and state.execution.shared is None  # closed once, then let go
    await close_shared(state)  # again: harmless
    assert state.warnings == []

    await close_shared(bare_state(None))  # no context, nothing to do

    hung = bare_state(Hangs())
    started = time.perf_counter()
    await close_shared(hung, timeout_s=0.05)
    assert time.perf_counter() - started < 2.0
    assert hung.warnings == [
        "the workflow's shared context could not be closed: it did not close within 0.05 s"
    ]

    broken = bare_state(BreaksOnClose())
    await close_shared(broken)
    assert len(broken.warnings) == 1
    assert broken.warnings[0].startswith("the workflow's shared context could not be closed")
    assert "the socket is gone" in broken.warnings[0]


class SlowAdd(InProcessSharedContext):
    async def add(self, *args: Any, **kwargs: Any) -> Finding:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")


class SameId(InProcessSharedContext):
    async def add(self, *args: Any, **kwargs: Any) -> Finding:
        return (await super().add(*args, **kwargs)).model_copy(update={"id": 1})


async def test_a_context_that_hangs_costs_its_findings_not_the_answer() -> None:
    settings = fast_settings()
    settings.coordination.io_timeout_s = 0.05
    llm = launch_llm()
    result = await engine(llm, settings, OpensThis(SlowAdd())).run(launch_plan())
    assert result.status is WorkflowStatus.SUCCEEDED
    assert result.results["research"].output == "The venue is ready and the press list is done."
    assert any("could not be shared through SlowAdd" in w for w in result.warnings)
    assert result.final_answer == "We launch on 1 March."  # the finding never reached it


async def test_a_context_whose_ids_do_not_increase_is_named() -> None:
    llm = ScriptedLLM(default=lambda m: f"{step_of(m)} done.\n\nFindings:\n- FACT: a {step_of(m)}")
    result = await engine(llm, stage=OpensThis(SameId())).run(launch_plan())
    assert [f.id for f in result.findings] == [1]  # the second was refused, not shared twice
    assert any("SameId numbered a new finding 1 after 1" in w for w in result.warnings)


async def test_a_stage_that_installs_no_shared_context_is_named() -> None:
    not_one: Any = {"not": "a context"}
    with pytest.raises(StageError, match="stage 'coordinate' did not write what it declares"):
        await engine(launch_llm(), stage=OpensThis(not_one)).run(launch_plan())
