"""The one path by which a subtask's result is recorded, whatever ran it.

A subtask has exactly one committed result: a second commit for the same subtask (a task
that ran twice, a late answer after a cancellation) is refused and changes nothing.
"""

from __future__ import annotations

from automatos.domain.event import SubtaskFinished, SubtaskSkipped
from automatos.domain.result import SubtaskResult, SubtaskStatus
from automatos.phases.state import WorkflowState

__all__ = ["commit_result"]

_SKIPPED = SubtaskStatus.SKIPPED
_VALUE = {status: status.value for status in SubtaskStatus}  # Enum.value is a slow property


def commit_result(state: WorkflowState, result: SubtaskResult, reason: str = "") -> bool:
    """Record ``result`` and announce it; ``False`` if the subtask already had one."""
    if result.subtask_id in state.execution.results:
        return False
    state.execution.results[result.subtask_id] = result
    if state.writer is not None:
        state.writer.add_result(result)
    if result.status is _SKIPPED:
        state.bus.emit(SubtaskSkipped, subtask_id=result.subtask_id, reason=reason)
    else:
        error = result.error
        state.bus.emit(
            SubtaskFinished,
            result.subtask_id,
            _VALUE[result.status],
            result.latency_s,
            error.message if error else None,
        )
    return True
