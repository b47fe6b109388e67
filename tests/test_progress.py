"""The CLI's live display: subtasks that wait for the in-process model show as queued."""

from __future__ import annotations

import asyncio
import io
import threading
from pathlib import Path

import pytest
from rich.console import Console

from automatos.domain.agent import AgentSpec
from automatos.domain.event import (
    Event,
    SubtaskFinished,
    SubtaskQueued,
    SubtaskStarted,
    ToolCalled,
    WorkflowResumed,
)
from automatos.domain.plan import Subtask, SubtaskSpec
from automatos.graph import build_plan
from automatos.llm.base import Message
from automatos.llm.factory import wrap_provider
from automatos.llm.local import LlamaCppProvider
from automatos.progress import ProgressDisplay
from automatos.runners.base import AgentTask
from automatos.runners.local import LocalTaskRunner, subtask_events
from automatos.settings import LLMSettings, PlanLimits
from automatos.testing import ScriptedLLM


def rendered(display: ProgressDisplay) -> str:
    console = Console(record=True, force_terminal=True, width=120)
    console.print(display._render())
    return console.export_text()


def test_a_subtask_waiting_for_the_model_is_queued_until_its_turn() -> None:
    display = ProgressDisplay(Console(force_terminal=True))
    display.on_event(SubtaskStarted(1, "w", 0.0, subtask_id="a", agent="writer", attempt=1))
    display.on_event(SubtaskStarted(2, "w", 0.0, subtask_id="b", agent="writer", attempt=1))
    display.on_event(SubtaskQueued(3, "w", 0.0, subtask_id="b", attempt=1, ahead=1))
    assert display.rows["a"].status == "running"
    assert display.rows["b"].status == "queued"
    assert "1 ahead for the model" in rendered(display)
    display.on_event(SubtaskFinished(4, "w", 0.0, subtask_id="a", status="succeeded", elapsed_s=2))
    display.on_event(SubtaskQueued(5, "w", 0.0, subtask_id="b", attempt=1, ahead=0))
    assert display.rows["b"].status == "running"
    assert "ahead" not in rendered(display)


def test_a_late_report_does_not_reopen_a_finished_subtask() -> None:
    display = ProgressDisplay(Console(force_terminal=True))
    display.on_event(SubtaskStarted(1, "w", 0.0, subtask_id="a", agent="writer", attempt=1))
    display.on_event(SubtaskFinished(2, "w", 0.0, subtask_id="a", status="cancelled", elapsed_s=1))
    display.on_event(SubtaskQueued(3, "w", 0.0, subtask_id="a", attempt=1, ahead=0))
    assert display.rows["a"].status == "cancelled"


def test_a_resumed_run_shows_the_subtasks_it_kept() -> None:
    display = ProgressDisplay(Console(force_terminal=True))
    carried = {"a": "succeeded", "b": "failed"}
    display.on_event(WorkflowResumed(9, "w", 0.0, carried_over=2, remaining=1, carried=carried))
    display.on_event(SubtaskStarted(10, "w", 0.0, subtask_id="c", agent="writer", attempt=1))
    assert display.rows["a"].status == "succeeded"
    assert display.rows["b"].status == "failed"
    assert rendered(display).count("kept from the earlier run") == 2


def test_queued_subtasks_stay_in_view_in_a_long_plan() -> None:
    display = ProgressDisplay(Console(force_terminal=True))
    for i in range(60):
        display.on_event(SubtaskStarted(i, "w", 0.0, subtask_id=f"s{i}", agent="a", attempt=1))
        if i:
            display.on_event(SubtaskQueued(i, "w", 0.0, subtask_id=f"s{i}", attempt=1, ahead=i))
    text = rendered(display)
    assert "queued" in text
    assert "more subtasks not shown" in text


def task_for(subtask_id: str) -> AgentTask:
    plan = build_plan([SubtaskSpec(id=subtask_id, description="Say hello.")], PlanLimits())
    subtask: Subtask = plan.subtasks[0]
    return AgentTask("w", subtask, 1, AgentSpec(name="writer"), (Message("user", "hi"),), 30.0)


async def test_the_runner_reports_subtasks_that_wait_for_the_in_process_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = tmp_path / "model.gguf"
    model.write_bytes(b"GGUF")
    provider = LlamaCppProvider(model, prompt_style="completion")
    release = threading.Event()

    def generate(messages: list[Message], *args: object) -> tuple[str, int, int, str]:
        release.wait(10)
        return "Hello.", 1, 1, "stop"

    monkeypatch.setattr(provider, "_generate_unchecked", generate)
    runner = LocalTaskRunner(wrap_provider(provider, LLMSettings()))
    display = ProgressDisplay(Console(force_terminal=True))
    events: list[Event] = []

    def emit(kind: type[Event], *args: object) -> None:
        event = kind(len(events) + 1, "w", 0.0, *args)
        events.append(event)
        display.on_event(event)

    async def attempt(subtask_id: str) -> None:
        subtask_events.set(emit)  # what the dispatcher sets for the subtasks it runs
        emit(SubtaskStarted, subtask_id, "writer", 1)
        done = await runner.run(task_for(subtask_id))
        emit(SubtaskFinished, subtask_id, "succeeded", done.latency_s)

    first = asyncio.create_task(attempt("first"))
    await asyncio.sleep(0.05)
    second = asyncio.create_task(attempt("second"))
    await asyncio.sleep(0.05)
    assert display.rows["first"].status == "running"
    assert display.rows["second"].status == "queued"
    release.set()
    await asyncio.gather(first, second)
    queued = [(e.subtask_id, e.ahead) for e in events if isinstance(e, SubtaskQueued)]
    assert queued == [("second", 1), ("second", 0)]
    assert display.rows["second"].status == "succeeded"
    await provider.aclose()


async def test_other_models_are_not_reported() -> None:
    runner = LocalTaskRunner(wrap_provider(ScriptedLLM(default="Hello."), LLMSettings()))
    heard: list[object] = []
    subtask_events.set(lambda *args: heard.append(args))
    done = await asyncio.gather(*(runner.run(task_for(f"s{i}")) for i in range(3)))
    assert [d.text for d in done] == ["Hello."] * 3
    assert heard == []


def test_the_title_counts_proposals_decided_and_findings_shared() -> None:
    from rich.console import Console

    from automatos.domain.event import FindingShared, ProposalDecided
    from automatos.progress import ProgressDisplay

    display = ProgressDisplay(Console(file=io.StringIO()))
    for n in (1, 2):
        display.on_event(ProposalDecided(n, "w", 0.0, 1, ["a"], "split", {}, "applied", "ok"))
    assert display.stage == "negotiate (round 1: 2 proposal(s) decided)"
    display.on_event(FindingShared(3, "w", 0.0, 1, "fact", "x", "s", "a", []))
    assert display.stage == "execute (1 finding(s) shared)"


def test_a_tool_call_shows_as_it_is_reported_and_the_count_stays() -> None:
    display = ProgressDisplay(Console(force_terminal=True))
    display.on_event(SubtaskStarted(1, "w", 0.0, subtask_id="a", agent="math", attempt=1))
    display.on_event(ToolCalled(2, "w", 0.0, "a", 1, "calculator", "0123456789abcdef", 0.012, "ok"))
    assert "tool calculator (0.01s); 1 tool call so far" in rendered(display)
    display.on_event(
        ToolCalled(3, "w", 0.0, "a", 1, "read_file", "fedcba9876543210", 2.5, "timeout", "slow")
    )
    assert "tool read_file timeout (2.50s); 2 tool calls so far" in rendered(display)
    display.on_event(SubtaskFinished(4, "w", 0.0, subtask_id="a", status="succeeded", elapsed_s=3))
    assert display.rows["a"].note == "2 tool calls"
    # A subtask that failed shows its error rather than the count.
    display.on_event(SubtaskStarted(5, "w", 0.0, subtask_id="b", agent="math", attempt=1))
    display.on_event(ToolCalled(6, "w", 0.0, "b", 1, "calculator", "0123456789abcdef", 0.0, "ok"))
    display.on_event(
        SubtaskFinished(7, "w", 0.0, subtask_id="b", status="failed", elapsed_s=1, error="loop")
    )
    assert display.rows["b"].note == "loop"
