"""The lines `automatos run` and `automatos runs show` print of the tools agents called."""

from __future__ import annotations

from automatos import SubtaskResult, SubtaskStatus, ToolUse
from automatos.cli.tool_calls import result_tool_calls, tool_call_lines

OK = ToolUse("calculator", "c1", "0123456789abcdef", 0.0042, "ok")
TIMED_OUT = ToolUse(
    "search", "c2", "fedcba9876543210", 30.0, "timeout", "error: tool 'search': no result\n" * 9
)


def test_each_call_of_each_subtask_that_called_tools_is_a_line() -> None:
    results = {
        "plain": SubtaskResult("plain", SubtaskStatus.SUCCEEDED),
        "calc": SubtaskResult("calc", SubtaskStatus.SUCCEEDED, tool_calls=(OK, TIMED_OUT)),
    }
    lines = tool_call_lines(result_tool_calls(results))
    assert lines[:2] == ["tool calls of calc: 2", "  1. calculator ok 0.004s"]
    assert lines[2].startswith("  2. search timeout 30.000s: error: tool 'search': no result error")
    assert lines[2].endswith("…") and "\n" not in lines[2]
    assert len(lines) == 3


def test_a_long_list_is_cut_and_a_stored_row_without_calls_shows_nothing() -> None:
    stored = [("a", [{"tool": "t", "outcome": "ok", "latency_s": 0.1}] * 25), ("b", None)]
    lines = tool_call_lines(stored)
    assert lines[0] == "tool calls of a: 25"
    assert lines[-1] == "  … and 5 more" and len(lines) == 22
    assert tool_call_lines([("b", None), ("c", [])]) == []
