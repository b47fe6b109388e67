from automatos import (
    Event,
    SubtaskFinished,
    SubtaskResult,
    SubtaskSkipped,
    SubtaskStatus,
    WorkflowRequest,
)
from automatos.phases.events import EventBus
from automatos.phases.execute.commit import commit_result
from automatos.phases.state import Runtime, WorkflowState
from automatos.runners.local import LocalTaskRunner
from automatos.testing import ScriptedLLM
from tests.conftest import fast_settings


def state() -> tuple[WorkflowState, list[Event]]:
    llm = ScriptedLLM()
    bus = EventBus("w")
    seen: list[Event] = []
    bus.subscribe(seen.append)
    return WorkflowState(
        request=WorkflowRequest(text="r"),
        runtime=Runtime(fast_settings(), llm, LocalTaskRunner(llm)),
        bus=bus,
    ), seen


def test_a_subtask_has_exactly_one_committed_result() -> None:
    s, seen = state()
    first = SubtaskResult("a", SubtaskStatus.SUCCEEDED, output="first")
    late = SubtaskResult("a", SubtaskStatus.SUCCEEDED, output="late duplicate")
    assert commit_result(s, first) is True
    assert commit_result(s, late) is False
    assert s.execution.results["a"].output == "first"
    assert [type(e) for e in seen] == [SubtaskFinished]


def test_skips_are_announced_with_their_reason() -> None:
    s, seen = state()
    commit_result(s, SubtaskResult("b", SubtaskStatus.SKIPPED), "dependency 'a' failed")
    event = seen[0]
    assert isinstance(event, SubtaskSkipped)
    assert event.reason == "dependency 'a' failed"
    assert event.seq == 1
    assert event.workflow_id == "w"
