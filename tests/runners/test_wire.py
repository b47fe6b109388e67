"""The queue's wire format: jobs and answers as versioned JSON."""

from __future__ import annotations

import json

import pytest

from automatos.domain.agent import DEFAULT_AGENT, AgentSpec
from automatos.domain.plan import SubtaskSpec
from automatos.errors import (
    EmptyAnswerError,
    ProviderRequestError,
    QueueError,
    RateLimitedError,
    RunnerError,
    StoreError,
)
from automatos.graph import build_plan
from automatos.llm.base import Completion, Message, ToolCall
from automatos.runners.base import AgentTask
from automatos.runners.wire import (
    decode_answer,
    decode_job,
    encode_error,
    encode_job,
    encode_result,
    reply_of,
)


def _task() -> AgentTask:
    plan = build_plan(
        [
            SubtaskSpec(id="a", description="first"),
            SubtaskSpec(id="b", description="second \u00e9\u2603", depends_on=("a",), complexity=4),
        ]
    )
    agent = AgentSpec(name="writer", model="m", temperature=0.3, max_tokens=99)
    messages = (Message("system", "be brief"), Message("user", 'quote " and \\ and \n'))
    return AgentTask("wf1", plan.by_id["b"], 2, agent, messages, 12.5)


def test_a_job_carries_its_task_whole() -> None:
    task = _task()
    data = encode_job(task, "q:answers:r1", 1e9, task.agent.model_dump_json())
    job = decode_job(data)
    assert (job.job, job.reply, job.deadline) == ("wf1:b:2", "q:answers:r1", 1e9)
    again = job.task()
    assert again.subtask == task.subtask
    assert again.agent == task.agent
    assert again.messages == task.messages
    assert (again.workflow_id, again.attempt, again.timeout_s) == ("wf1", 2, 12.5)


def test_a_job_of_another_version_or_shape_is_refused_by_name() -> None:
    task = _task()
    data = json.loads(encode_job(task, "r", 1.0, DEFAULT_AGENT.model_dump_json()))
    with pytest.raises(QueueError, match="version 2") as caught:
        decode_job(json.dumps({**data, "v": 2}))
    assert not caught.value.retryable
    with pytest.raises(QueueError, match="attempt"):
        decode_job(json.dumps({**data, "attempt": 0}))
    with pytest.raises(QueueError, match="not of the wire schema"):
        decode_job(b"\x80 not json")
    with pytest.raises(QueueError, match="not of the wire schema"):
        decode_job(json.dumps({**data, "extra": 1}))


def test_a_completion_comes_back_as_it_went() -> None:
    done = Completion("answer \u2603", "m", 10, 5, 0.25, cost_usd=0.01, finish_reason="stop")
    job, outcome = decode_answer(encode_result("wf:a:1", done))
    assert job == "wf:a:1"
    assert outcome == done


@pytest.mark.parametrize(
    ("error", "retryable"),
    [
        (RateLimitedError("slow down", retry_after=3.0), True),
        (ProviderRequestError("bad call"), False),
        (EmptyAnswerError("blank"), True),
        (StoreError("db gone", transient=False), False),
    ],
)
def test_an_engine_error_keeps_its_type_message_and_retry_flag(
    error: Exception, retryable: bool
) -> None:
    _, outcome = decode_answer(encode_error("wf:a:1", error))
    assert type(outcome) is type(error)
    assert str(outcome) == str(error)
    assert outcome.retryable is retryable
    if isinstance(error, RateLimitedError):
        assert isinstance(outcome, RateLimitedError)
        assert outcome.retry_after == 3.0


def test_a_foreign_or_unknown_error_becomes_a_runner_error() -> None:
    _, outcome = decode_answer(encode_error("j", KeyError("oops")))
    assert isinstance(outcome, RunnerError)
    assert "KeyError" in str(outcome)
    assert outcome.retryable
    forged = json.dumps(
        {"v": 1, "job": "j", "error": {"type": "SystemExit", "message": "x", "retryable": True}}
    )
    _, outcome = decode_answer(forged)
    assert isinstance(outcome, RunnerError)  # never a class the answer names outside the tree
    assert "unknown error 'SystemExit'" in str(outcome)


@pytest.mark.parametrize(
    "data",
    [b"", b"[]", b'{"v": 1}', b'{"v": 9, "job": "j", "ok": {}}', b'{"v":1,"job":"j","ok":{}}'],
)
def test_an_unreadable_answer_is_a_queue_error(data: bytes) -> None:
    with pytest.raises(QueueError, match="not of the wire schema"):
        decode_answer(data)


def test_bytes_nested_too_deep_are_refused_not_raised() -> None:
    deep = b"[" * 100_000
    with pytest.raises(QueueError):
        decode_answer(deep)
    with pytest.raises(QueueError):
        decode_job(deep)
    assert reply_of(deep, "q") is None


def test_a_job_names_an_answer_list_of_its_queue_only() -> None:
    job = json.dumps({"v": 2, "job": "wf:a:1", "reply": "q:answers:r1"})
    assert reply_of(job, "q") == ("wf:a:1", "q:answers:r1")
    assert reply_of(job, "other") is None
    hostile = json.dumps({"v": 2, "job": "wf:a:1", "reply": "q:jobs"})
    assert reply_of(hostile, "q") is None


def _tool_task() -> AgentTask:
    task = _task()
    calls = (ToolCall("c1", "calculator", '{"expression": "6*7"}'), ToolCall("c2", "x", "{bad"))
    messages = (
        *task.messages,
        Message("assistant", "", tool_calls=calls),
        Message("tool", "42", tool_call_id="c1", name="calculator"),
        Message("tool", "error: unknown tool", tool_call_id="c2"),
    )
    return AgentTask(task.workflow_id, task.subtask, task.attempt, task.agent, messages, 12.5)


def test_a_job_carries_tool_calls_and_results() -> None:
    task = _tool_task()
    data = encode_job(task, "q:answers:r1", 1e9, task.agent.model_dump_json())
    assert decode_job(data).task().messages == task.messages
    # Messages without tool fields are written as before: a worker of an older release
    # (which refuses unknown fields) reads them.
    sent = json.loads(data)["messages"]
    assert sent[0] == {"role": "system", "content": "be brief"}
    assert sent[3] == {"role": "tool", "content": "42", "tool_call_id": "c1", "name": "calculator"}


@pytest.mark.parametrize(
    "hostile",
    [
        {"role": "assistant", "content": "", "tool_calls": "calculator"},
        {"role": "assistant", "content": "", "tool_calls": [{"id": "c", "name": "x"}]},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"id": 1, "name": "x", "arguments": ""}],
        },
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"id": "c", "name": "x", "arguments": {"a": 1}}],
        },
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"id": "c", "name": "x", "arguments": "", "run": "rm -rf /"}],
        },
        {"role": "tool", "content": "r", "tool_call_id": ["c"]},
        {"role": "function", "content": "r"},
    ],
)
def test_a_job_with_malformed_tool_fields_is_a_queue_error(hostile: dict[str, object]) -> None:
    task = _task()
    data = json.loads(encode_job(task, "r", 1.0, DEFAULT_AGENT.model_dump_json()))
    data["messages"].append(hostile)
    with pytest.raises(QueueError, match="not of the wire schema: messages") as caught:
        decode_job(json.dumps(data))
    assert not caught.value.retryable


def test_a_completion_with_tool_calls_comes_back_as_it_went() -> None:
    calls = (ToolCall("c1", "calculator", '{"expression": "6*7"}'), ToolCall("c2", "?", "{bad"))
    done = Completion("", "m", 10, 5, 0.25, finish_reason="tool_calls", tool_calls=calls)
    _, outcome = decode_answer(encode_result("wf:a:1", done))
    assert outcome == done
    plain = json.loads(encode_result("j", Completion("x", "m", 1, 1, 0.1)))
    assert "tool_calls" not in plain["ok"]  # as an orchestrator of an older release reads it


@pytest.mark.parametrize(
    "tool_calls",
    [
        "calculator",
        {"id": "c", "name": "x", "arguments": "{}"},
        [None],
        [{"id": "c", "name": "x"}],
        [{"id": "c", "name": "x", "arguments": {}}],
        [{"id": "c", "name": 3, "arguments": "{}"}],
        [{"id": "c", "name": "x", "arguments": "{}", "extra": 1}],
    ],
)
def test_an_answer_with_malformed_tool_calls_is_a_queue_error(tool_calls: object) -> None:
    answer = json.loads(encode_result("j", Completion("", "m", 1, 1, 0.1)))
    answer["ok"]["tool_calls"] = tool_calls
    with pytest.raises(QueueError, match="not of the wire schema"):
        decode_answer(json.dumps(answer))
