"""The queue's wire format: an agent task as a job, and a job's answer, as versioned JSON.

Never pickle: a worker may run another release of the engine, and a queue is data that any
process able to reach Redis can write. A job names its schema version (``v``); a worker that
meets a version it does not know answers with a :class:`~automatos.errors.QueueError`
instead of guessing.

A job carries what one attempt needs and nothing that lives only in the orchestrator: the
task (subtask, agent, messages), its id (one per attempt, ``workflow:subtask:attempt``:
answers are deduplicated by it), the list its answer goes to, and its absolute deadline
(seconds since the epoch: clocks of the machines involved are assumed to agree to within a
second or so, as NTP keeps them).
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from automatos import errors
from automatos.domain.agent import AgentSpec
from automatos.domain.plan import GraphMetadata, Subtask
from automatos.errors import (
    AutomatosError,
    QueueError,
    RateLimitedError,
    RunnerError,
    StructuredOutputError,
    describe_exception,
    describe_kind,
)
from automatos.llm.base import Completion, Message, ToolCall
from automatos.runners.base import AgentTask

__all__ = [
    "VERSION",
    "Job",
    "decode_answer",
    "decode_job",
    "encode_error",
    "encode_job",
    "encode_result",
    "field_of",
    "is_reply_key",
    "reply_of",
]

VERSION = 1
"""The schema version this release writes and reads."""


class _ToolCall(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    name: str
    arguments: str


class _Message(BaseModel):
    """A message; the tool fields are left out of a job when unset, so that a worker of a
    release before tools reads every job without them."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "user", "assistant", "tool"]
    content: str
    tool_calls: tuple[_ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None


class _Graph(BaseModel):
    layer: int
    depth: int
    predecessors: tuple[str, ...]
    successors: tuple[str, ...]
    earliest_start: float
    slack: float
    on_critical_path: bool


class _Subtask(BaseModel):
    id: str = Field(min_length=1, max_length=128)
    description: str
    depends_on: tuple[str, ...]
    requires_context: bool
    complexity: int
    expected_output: str
    agent: str | None
    graph: _Graph


class Job(BaseModel):
    """One attempt at one subtask, as it travels through the queue (version 1)."""

    model_config = ConfigDict(extra="forbid")

    v: Literal[1]
    job: str = Field(min_length=1, max_length=512)
    """Unique per attempt (:attr:`AgentTask.task_id`)."""
    reply: str = Field(min_length=1, max_length=512)
    """The Redis list the answer is pushed to."""
    deadline: float
    """Seconds since the epoch after which the attempt is worthless to its orchestrator."""
    workflow_id: str
    subtask: _Subtask
    attempt: int = Field(ge=1)
    agent: AgentSpec
    messages: tuple[_Message, ...]
    timeout_s: float = Field(gt=0)

    def task(self) -> AgentTask:
        """The :class:`AgentTask` this job carries."""
        s = self.subtask
        graph = GraphMetadata(**s.graph.model_dump())
        subtask = Subtask(
            s.id,
            s.description,
            s.depends_on,
            s.requires_context,
            s.complexity,
            s.expected_output,
            s.agent,
            graph,
        )
        messages = tuple(
            Message(
                m.role,
                m.content,
                tuple(ToolCall(c.id, c.name, c.arguments) for c in m.tool_calls),
                m.tool_call_id,
                m.name,
            )
            for m in self.messages
        )
        return AgentTask(
            self.workflow_id, subtask, self.attempt, self.agent, messages, self.timeout_s
        )


def encode_job(task: AgentTask, reply: str, deadline: float, agent_json: str) -> str:
    """``task`` as a job's JSON; ``agent_json`` is its agent's ``model_dump_json()`` (callers
    keep it per agent: a workflow sends one agent many times)."""
    subtask = task.subtask
    head = json.dumps(
        {
            "v": VERSION,
            "job": task.task_id,
            "reply": reply,
            "deadline": deadline,
            "workflow_id": task.workflow_id,
            "subtask": _subtask(subtask),
            "attempt": task.attempt,
            "messages": [_message(m) for m in task.messages],
            "timeout_s": task.timeout_s,
        },
        separators=(",", ":"),
    )
    return f'{head[:-1]},"agent":{agent_json}}}'


def _message(m: Message) -> dict[str, Any]:
    """``m`` as JSON; the tool fields only when set."""
    out: dict[str, Any] = {"role": m.role, "content": m.content}
    if m.tool_calls:
        out["tool_calls"] = _calls(m.tool_calls)
    if m.tool_call_id is not None:
        out["tool_call_id"] = m.tool_call_id
    if m.name is not None:
        out["name"] = m.name
    return out


def _calls(calls: tuple[ToolCall, ...]) -> list[dict[str, str]]:
    return [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in calls]


def _subtask(s: Subtask) -> dict[str, Any]:
    """``dataclasses.asdict(s)`` without its deep copies (15 us a job)."""
    g = s.graph
    return {
        "id": s.id,
        "description": s.description,
        "depends_on": s.depends_on,
        "requires_context": s.requires_context,
        "complexity": s.complexity,
        "expected_output": s.expected_output,
        "agent": s.agent,
        "graph": {
            "layer": g.layer,
            "depth": g.depth,
            "predecessors": g.predecessors,
            "successors": g.successors,
            "earliest_start": g.earliest_start,
            "slack": g.slack,
            "on_critical_path": g.on_critical_path,
        },
    }


def decode_job(data: bytes | str) -> Job:
    """A job read from the queue.

    Raises:
        QueueError: not a job of a schema version this worker reads (not retryable: the
            same bytes will not read better).
    """
    try:
        return Job.model_validate_json(data)
    except RecursionError:
        raise QueueError(
            "a job that is not of the wire schema: nested too deep", transient=False
        ) from None
    except ValidationError as exc:
        version = _version_of(data)
        if version is not None and version != VERSION:
            raise QueueError(
                f"a job of wire schema version {version}; this worker reads version {VERSION} "
                "(run workers of the orchestrator's release)",
                transient=False,
            ) from None
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "the job"
        raise QueueError(
            f"a job that is not of the wire schema: {where}: {first['msg']}", transient=False
        ) from None


def _version_of(data: bytes | str) -> object:
    return field_of(data, "v")


def field_of(data: bytes | str, name: str) -> object:
    """One top-level field of a JSON object that may be anything at all."""
    try:
        parsed = json.loads(data)
    except Exception:  # not JSON, or nested too deep (RecursionError)
        return None
    return parsed.get(name) if isinstance(parsed, dict) else None


def reply_of(data: bytes | str, prefix: str) -> tuple[str, str] | None:
    """The job id and answer list of a job that did not validate, if it names them and the
    list is one of the queue's (so that its orchestrator learns at once why it failed; a job
    cannot make a worker write to any other key)."""
    job, reply = field_of(data, "job"), field_of(data, "reply")
    if isinstance(job, str) and isinstance(reply, str) and is_reply_key(reply, prefix):
        return job[:512], reply
    return None


def is_reply_key(key: str, prefix: str) -> bool:
    """Whether ``key`` is an answer list of the queue ``prefix``."""
    return key.startswith(f"{prefix}:answers:") and len(key) <= 512


def encode_result(job: str, done: Completion) -> str:
    """The answer of a job that ran: what the model wrote, and what it cost (its tool calls
    only when it made some: an orchestrator of a release before tools reads the rest)."""
    ok: dict[str, Any] = {
        "text": done.text,
        "model": done.model,
        "tokens_in": done.tokens_in,
        "tokens_out": done.tokens_out,
        "latency_s": done.latency_s,
        "cost_usd": done.cost_usd,
        "finish_reason": done.finish_reason,
        "priced": done.priced,
    }
    if done.tool_calls:
        ok["tool_calls"] = _calls(done.tool_calls)
    return json.dumps({"v": VERSION, "job": job, "ok": ok}, separators=(",", ":"))


def encode_error(job: str, exc: BaseException) -> str:
    """The answer of a job that failed: the error's type, message and whether to retry.

    An exception that is not the engine's is sent as a :class:`RunnerError` (a worker's own
    bug or a provider plugin's): its type name alone would mean nothing to the orchestrator.
    """
    if isinstance(exc, AutomatosError):
        kind, message = type(exc).__name__, str(exc)
    else:
        kind, message = "RunnerError", f"worker raised {describe_exception(exc)}"
    error: dict[str, Any] = {
        "type": kind,
        "message": message[:4000],
        "retryable": errors.is_retryable(exc) if isinstance(exc, AutomatosError) else True,
    }
    retry_after = getattr(exc, "retry_after", None)
    if isinstance(retry_after, int | float):
        error["retry_after"] = float(retry_after)
    return json.dumps({"v": VERSION, "job": job, "error": error}, separators=(",", ":"))


def decode_answer(data: bytes | str) -> tuple[str, Completion | AutomatosError]:
    """A job's id and its answer: a :class:`Completion`, or the error to raise.

    Raises:
        QueueError: not an answer of this schema (the job it answers cannot be known).
    """
    try:
        parsed = json.loads(data)
        job = parsed["job"]
        if parsed.get("v") != VERSION or not isinstance(job, str):
            raise ValueError(f"version {parsed.get('v')!r}")
        ok = parsed.get("ok")
        if ok is not None:
            return job, Completion(
                text=ok["text"],
                model=ok["model"],
                tokens_in=ok["tokens_in"],
                tokens_out=ok["tokens_out"],
                latency_s=ok["latency_s"],
                cost_usd=ok["cost_usd"],
                finish_reason=ok["finish_reason"],
                priced=ok["priced"],
                tool_calls=_decoded_calls(ok.get("tool_calls", ())),
            )
        error = parsed["error"]
        return job, _error(error["type"], error["message"], error)
    except Exception as exc:  # whatever the bytes are (nested too deep: RecursionError)
        raise QueueError(
            f"an answer that is not of the wire schema ({describe_exception(exc, 200)})",
            transient=False,
        ) from None


def _decoded_calls(raw: object) -> tuple[ToolCall, ...]:
    """An answer's tool calls; each one's fields must be text (what they say is the tool
    layer's to judge).

    Raises:
        ValueError: not a list of calls of that shape.
    """
    if not isinstance(raw, list | tuple):
        raise ValueError(f"tool_calls is {describe_kind(raw)}, not a list")
    calls: list[ToolCall] = []
    for item in raw:
        if not isinstance(item, dict) or set(item) != _CALL_FIELDS:
            raise ValueError("a tool call that is not an object of id, name and arguments")
        call_id, name, arguments = item["id"], item["name"], item["arguments"]
        if not (type(call_id) is str and type(name) is str and type(arguments) is str):
            raise ValueError("a tool call whose id, name or arguments is not a string")
        calls.append(ToolCall(call_id, name, arguments))
    return tuple(calls)


_CALL_FIELDS = {"id", "name", "arguments"}


def _error(kind: str, message: str, fields: dict[str, Any]) -> AutomatosError:
    """The engine error ``kind`` names, carrying ``message``; a name that is not one of the
    engine's errors becomes a :class:`RunnerError` (never an arbitrary class)."""
    cls = getattr(errors, kind, None)
    if not (isinstance(cls, type) and issubclass(cls, AutomatosError)):
        return RunnerError("queued", f"answered with an unknown error {kind[:80]!r}: {message}")
    # Built without its own __init__: the classes' arguments differ, their state does not.
    exc = cls.__new__(cls)
    Exception.__init__(exc, str(message))
    exc.retryable = bool(fields.get("retryable", cls.retryable))
    retry_after = fields.get("retry_after")
    if isinstance(exc, RateLimitedError):
        exc.retry_after = float(retry_after) if isinstance(retry_after, int | float) else None
    elif isinstance(exc, RunnerError):
        exc.runner, exc.detail = "queued", str(message)
    elif isinstance(exc, StructuredOutputError):
        exc.raw = ""
    return exc
