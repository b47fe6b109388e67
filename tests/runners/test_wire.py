"""The queue's wire format: jobs and answers as versioned JSON."""

from __future__ import annotations

import dataclasses
import json

import pytest

from automatos.domain.agent import DEFAULT_AGENT, AgentSpec
from automatos.domain.plan import SubtaskSpec
from automatos.domain.tools import MCPServerConfig
from automatos.errors import (
    EmptyAnswerError,
    ProviderRequestError,
    ProviderUnavailableError,
    QueueError,
    RateLimitedError,
    RunnerError,
    StoreError,
    ToolLoopError,
    ToolNotFoundError,
)
from automatos.graph import build_plan
from automatos.llm.base import Completion, Message, ToolCall, ToolUse, completion_problem
from automatos.phases.execute.tool_loop import attach_spent, spent_of
from automatos.runners.base import AgentTask, ToolLimits
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


# --- tool loops --------------------------------------------------------------------------


def _loop_task(**fields: object) -> AgentTask:
    task = _task()
    agent = AgentSpec(name="calc", model="m", tools=("calculator", "mcp:files"))
    return dataclasses.replace(task, agent=agent, **fields)


FILES = MCPServerConfig(name="files", command=["mcp-files", "/data"], env={"LEVEL": "2"})
WEB = MCPServerConfig(name="web", url="https://mcp.example.com/mcp", headers={"X-Key": "k"})


def test_a_job_of_an_agent_with_tools_carries_what_its_loop_needs() -> None:
    task = _loop_task(
        mcp_servers=(FILES, WEB),
        tool_limits=ToolLimits(3, 2.5, ("customer_ssn",)),
        token_budget=1200,
    )
    again = decode_job(encode_job(task, "q:answers:r", 1e9, task.agent.model_dump_json())).task()
    assert again.agent.tools == ("calculator", "mcp:files")
    assert again.mcp_servers == (FILES, WEB)
    assert again.tool_limits == ToolLimits(3, 2.5, ("customer_ssn",))
    assert again.token_budget == 1200


def test_the_tool_fields_travel_only_when_set_and_only_with_tools() -> None:
    bare = json.loads(encode_job(_loop_task(), "r", 1.0, DEFAULT_AGENT.model_dump_json()))
    assert not {"mcp_servers", "tool_limits", "token_budget"} & set(bare)
    # an agent without tools: the executor reads none of them, so none are sent
    plain = dataclasses.replace(_task(), mcp_servers=(FILES,), token_budget=5)
    sent = json.loads(encode_job(plain, "r", 1.0, plain.agent.model_dump_json()))
    assert not {"mcp_servers", "tool_limits", "token_budget"} & set(sent)
    assert decode_job(json.dumps(sent)).task().mcp_servers == ()


@pytest.mark.parametrize(
    "hostile",
    [
        {"mcp_servers": [{"name": "x"}]},
        {"mcp_servers": [{"name": "a__b", "command": ["x"]}]},
        {"tool_limits": {"max_calls": -1, "call_timeout_s": 1}},
        {"tool_limits": {"max_calls": 1, "call_timeout_s": 1, "shell": True}},
        {"token_budget": "lots"},
    ],
)
def test_a_job_with_malformed_tool_loop_fields_is_a_queue_error(
    hostile: dict[str, object],
) -> None:
    task = _loop_task()
    data = json.loads(encode_job(task, "r", 1.0, task.agent.model_dump_json()))
    with pytest.raises(QueueError, match="not of the wire schema") as caught:
        decode_job(json.dumps({**data, **hostile}))
    assert not caught.value.retryable


def _loop_completion() -> Completion:
    call = ToolCall("c1", "calculator", '{"expression": "6*7"}')
    first = Completion("", "m", 10, 5, 0.25, 0.001, "tool_calls", tool_calls=(call,))
    second = Completion("42", "m2", 20, 2, 0.5, 0.002, "stop", priced=False)
    uses = (
        ToolUse("calculator", "c1", "0123456789abcdef", 0.01, "ok"),
        ToolUse("shell", "c2", "fedcba9876543210", 0.0, "unknown_tool", "error: no shell"),
    )
    return Completion(
        "42", "m2", 30, 7, 0.8, 0.003, "stop", priced=False, rounds=(first, second), tool_uses=uses
    )


def test_a_tool_loops_completion_comes_back_with_its_rounds_and_tool_uses() -> None:
    done = _loop_completion()
    _, outcome = decode_answer(encode_result("wf:a:1", done))
    assert outcome == done
    assert isinstance(outcome, Completion) and completion_problem(outcome) is None
    plain = json.loads(encode_result("j", Completion("x", "m", 1, 1, 0.1)))
    assert not {"rounds", "tool_uses"} & set(plain["ok"])  # older orchestrators read it
    plain["ok"]["tool_uses"] = [_use_json(), _use_json(error="error: x", latency_s=0.5)]
    _, outcome = decode_answer(json.dumps(plain))
    assert isinstance(outcome, Completion) and [u.latency_s for u in outcome.tool_uses] == [0, 0.5]


def _use_json(**changes: object) -> dict[str, object]:
    fields: dict[str, object] = {
        "tool": "x",
        "call_id": "c",
        "arguments_digest": "d",
        "latency_s": 0,
        "outcome": "ok",
    }
    return {k: v for k, v in {**fields, **changes}.items() if v is not None}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("rounds", "many"),
        ("rounds", [None]),
        ("rounds", [{"text": "x"}]),
        ("tool_uses", {"tool": "x"}),
        ("tool_uses", [_use_json(outcome=None)]),
        ("tool_uses", [_use_json(tool=1)]),
        ("tool_uses", [_use_json(latency_s=-1)]),
        ("tool_uses", [_use_json(outcome="exploded")]),
        ("tool_uses", [_use_json(error=3)]),
        ("tool_uses", [_use_json(arguments="{}")]),
    ],
)
def test_an_answer_with_malformed_rounds_or_tool_uses_is_a_queue_error(
    field: str, value: object
) -> None:
    answer = json.loads(encode_result("j", _loop_completion()))
    answer["ok"][field] = value
    with pytest.raises(QueueError, match="not of the wire schema"):
        decode_answer(json.dumps(answer))


def test_a_round_with_rounds_of_its_own_is_refused() -> None:
    answer = json.loads(encode_result("j", _loop_completion()))
    answer["ok"]["rounds"][0]["rounds"] = [answer["ok"]["rounds"][1]]
    with pytest.raises(QueueError, match="rounds of its own"):
        decode_answer(json.dumps(answer))


def test_a_failed_loop_sends_what_it_spent_with_its_error() -> None:
    spent = _loop_completion()
    looped = ToolLoopError("agent 'calc' still called tools", spent=spent)
    _, error = decode_answer(encode_error("j", looped))
    assert isinstance(error, ToolLoopError) and not error.retryable
    assert error.spent == spent and spent_of(error) == spent
    # any error of an attempt that spent before failing: a model's, a timeout's
    failed = ProviderUnavailableError("HTTP 503")
    attach_spent(failed, spent)
    _, error = decode_answer(encode_error("j", failed))
    assert isinstance(error, ProviderUnavailableError) and error.retryable
    assert spent_of(error) == spent
    _, error = decode_answer(encode_error("j", ProviderUnavailableError("HTTP 503")))
    assert spent_of(error) is None


def test_a_malformed_spent_is_dropped_and_the_error_kept() -> None:
    answer = json.loads(encode_error("j", ToolLoopError("x", spent=_loop_completion())))
    answer["error"]["spent"]["tokens_in"] = -5
    _, error = decode_answer(json.dumps(answer))
    assert isinstance(error, ToolLoopError) and error.spent is None
    answer["error"]["spent"] = "a lot"
    _, error = decode_answer(json.dumps(answer))
    assert isinstance(error, ToolLoopError) and error.spent is None


def test_a_tool_error_keeps_its_tool_and_detail() -> None:
    _, error = decode_answer(encode_error("j", ToolNotFoundError("nope", "is not a tool")))
    assert isinstance(error, ToolNotFoundError) and not error.retryable
    assert (error.tool, error.detail, str(error)) == (
        "nope",
        "is not a tool",
        "tool 'nope': is not a tool",
    )


def test_text_that_utf8_cannot_carry_travels_replaced_not_refused() -> None:
    # a lone surrogate, as a model's broken output can hold, in a prompt and in an answer
    task = dataclasses.replace(
        _task(), messages=(Message("user", "before \ud800 after \U0001f600"),)
    )
    job = decode_job(encode_job(task, "q:answers:r1", 1e9, task.agent.model_dump_json()))
    assert job.task().messages[0].content == "before \ufffd after \U0001f600"
    done = Completion(text="odd \udfff", model="m", tokens_in=1, tokens_out=1, latency_s=0.1)
    _, back = decode_answer(encode_result("j1", done))
    assert isinstance(back, Completion)
    assert back.text == "odd \ufffd"


def test_an_answer_written_by_json_with_escapes_is_read() -> None:
    # what a release that wrote with json.dumps (ASCII escapes) sends is read the same
    done = Completion(text="caf\u00e9 \u2603", model="m", tokens_in=1, tokens_out=2, latency_s=0.1)
    ours = encode_result("j1", done)
    escaped = json.dumps(json.loads(ours)).encode()
    assert b"\\u00e9" in escaped
    assert decode_answer(escaped) == decode_answer(ours)
