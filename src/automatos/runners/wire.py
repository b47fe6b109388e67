"""The queue's wire format: an agent task as a job, and a job's answer, as versioned JSON.

Never pickle: a worker may run another release of the engine, and a queue is data that any
process able to reach Redis can write. A job names its schema version (``v``); a worker that
meets a version it does not know answers with a :class:`~automatos.errors.QueueError`
instead of guessing.

A job carries what one attempt needs and nothing that lives only in the orchestrator: the
task (subtask, agent, messages), its id (one per attempt, ``workflow:subtask:attempt``:
answers are deduplicated by it), the list its answer goes to, and its absolute deadline
(seconds since the epoch: clocks of the machines involved are assumed to agree to within a
second or so, as NTP keeps them). The job of an agent that has tools carries what its tool
loop needs too (the MCP servers its tools name, the loop's bounds, the token budget left).

An answer carries the completion, with the rounds and tool calls of a tool loop; an error
carries what the attempt spent before it failed (``spent``). Fields added since version 1
are left out when empty, so that releases before them read what does not use them.
"""

from __future__ import annotations

import json
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import PydanticSerializationError, from_json, to_json

from automatos import errors
from automatos.domain.agent import AgentSpec
from automatos.domain.plan import GraphMetadata, Subtask
from automatos.domain.tools import MCPServerConfig
from automatos.errors import (
    AutomatosError,
    QueueError,
    RateLimitedError,
    RunnerError,
    StructuredOutputError,
    ToolError,
    describe_exception,
    describe_kind,
)
from automatos.llm.base import (
    Completion,
    Message,
    ToolCall,
    ToolOutcome,
    ToolUse,
    completion_problem,
)
from automatos.phases.execute.tool_loop import attach_spent, spent_of
from automatos.runners.base import AgentTask, ToolLimits

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
    "json_bytes",
    "reply_of",
]

VERSION = 1
"""The schema version this release writes and reads."""


def json_bytes(value: object) -> bytes:
    """``value`` as compact JSON in UTF-8.

    pydantic-core's encoder (four times ``json.dumps``'s speed: the orchestrator encodes
    every job). Text that UTF-8 cannot carry (a lone surrogate, from a model's broken
    output) has each such character replaced by U+FFFD, so that the job or the answer can
    still be read."""
    try:
        return to_json(value)
    except PydanticSerializationError:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace").encode()


def _parsed(data: bytes | str) -> Any:
    """JSON read with pydantic-core's parser (twice ``json.loads``'s speed), or with
    ``json``'s where that one refuses (an escaped lone surrogate), whose error is raised."""
    try:
        return from_json(data)
    except ValueError:
        return json.loads(data)


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


class _ToolLimits(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_calls: int = Field(ge=0)
    call_timeout_s: float = Field(gt=0)
    secret_names: tuple[str, ...] = ()


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
    mcp_servers: tuple[MCPServerConfig, ...] = ()
    """The MCP servers the agent's tools name (an agent with tools only)."""
    tool_limits: _ToolLimits | None = None
    token_budget: int | None = None

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
        limits = self.tool_limits
        return AgentTask(
            self.workflow_id,
            subtask,
            self.attempt,
            self.agent,
            messages,
            self.timeout_s,
            self.mcp_servers,
            None
            if limits is None
            else ToolLimits(limits.max_calls, limits.call_timeout_s, limits.secret_names),
            self.token_budget,
        )


def encode_job(task: AgentTask, reply: str, deadline: float, agent_json: str | bytes) -> bytes:
    """``task`` as a job's JSON; ``agent_json`` is its agent's ``model_dump_json()`` (callers
    keep it per agent: a workflow sends one agent many times)."""
    subtask = task.subtask
    fields = {
        "v": VERSION,
        "job": task.task_id,
        "reply": reply,
        "deadline": deadline,
        "workflow_id": task.workflow_id,
        "subtask": _subtask(subtask),
        "attempt": task.attempt,
        "messages": [_message(m) for m in task.messages],
        "timeout_s": task.timeout_s,
    }
    if task.agent.tools:  # what a tool loop needs; the others read none of it
        _add_tool_fields(fields, task)
    agent = agent_json.encode() if isinstance(agent_json, str) else agent_json
    return b"".join((json_bytes(fields)[:-1], b',"agent":', agent, b"}"))


def _add_tool_fields(fields: dict[str, Any], task: AgentTask) -> None:
    if task.mcp_servers:
        fields["mcp_servers"] = [c.model_dump(mode="json") for c in task.mcp_servers]
    limits = task.tool_limits
    if limits is not None:
        fields["tool_limits"] = {
            "max_calls": limits.max_calls,
            "call_timeout_s": limits.call_timeout_s,
            "secret_names": limits.secret_names,
        }
    if task.token_budget is not None:
        fields["token_budget"] = task.token_budget


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
        parsed = _parsed(data)
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


def encode_result(job: str, done: Completion) -> bytes:
    """The answer of a job that ran: what the model wrote, and what it cost (its tool calls,
    and a tool loop's rounds and tool uses, only when there are some: an orchestrator of a
    release before tools reads the rest)."""
    return json_bytes({"v": VERSION, "job": job, "ok": _completion(done)})


def _completion(done: Completion) -> dict[str, Any]:
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
    if done.rounds:
        ok["rounds"] = [_completion(r) for r in done.rounds]
    if done.tool_uses:
        ok["tool_uses"] = [_use(u) for u in done.tool_uses]
    return ok


def _use(use: ToolUse) -> dict[str, Any]:
    out: dict[str, Any] = {
        "tool": use.tool,
        "call_id": use.call_id,
        "arguments_digest": use.arguments_digest,
        "latency_s": use.latency_s,
        "outcome": use.outcome,
    }
    if use.error is not None:
        out["error"] = use.error
    return out


def encode_error(job: str, exc: BaseException) -> bytes:
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
    if isinstance(exc, ToolError):
        error["tool"], error["detail"] = exc.tool[:200], exc.detail[:4000]
    spent = spent_of(exc)
    if spent is not None:
        error["spent"] = _completion(spent)
    return json_bytes({"v": VERSION, "job": job, "error": error})


def decode_answer(data: bytes | str) -> tuple[str, Completion | AutomatosError]:
    """A job's id and its answer: a :class:`Completion`, or the error to raise.

    Raises:
        QueueError: not an answer of this schema (the job it answers cannot be known).
    """
    try:
        parsed = _parsed(data)
        job = parsed["job"]
        if parsed.get("v") != VERSION or not isinstance(job, str):
            raise ValueError(f"version {parsed.get('v')!r}")
        ok = parsed.get("ok")
        if ok is not None:
            return job, _decoded(ok)
        error = parsed["error"]
        return job, _error(error["type"], error["message"], error)
    except Exception as exc:  # whatever the bytes are (nested too deep: RecursionError)
        raise QueueError(
            f"an answer that is not of the wire schema ({describe_exception(exc, 200)})",
            transient=False,
        ) from None


def _decoded(ok: Any, nested: bool = False) -> Completion:
    """A completion as :func:`_completion` wrote it; its figures are checked by whoever uses
    it (:func:`~automatos.llm.base.completion_problem`).

    Raises:
        ValueError, KeyError, TypeError: not of that shape.
    """
    if not isinstance(ok, dict):
        raise ValueError(f"a completion that is {describe_kind(ok)}, not an object")
    rounds, uses = ok.get("rounds"), ok.get("tool_uses")
    if rounds is not None and nested:
        raise ValueError("a round of a tool loop with rounds of its own")
    return Completion(
        text=ok["text"],
        model=ok["model"],
        tokens_in=ok["tokens_in"],
        tokens_out=ok["tokens_out"],
        latency_s=ok["latency_s"],
        cost_usd=ok["cost_usd"],
        finish_reason=ok["finish_reason"],
        priced=ok["priced"],
        tool_calls=_decoded_calls(ok.get("tool_calls", ())),
        rounds=() if rounds is None else tuple(_decoded(r, True) for r in _items(rounds, "rounds")),
        tool_uses=() if uses is None else tuple(_decoded_use(u) for u in _items(uses, "uses")),
    )


def _items(raw: object, what: str) -> list[Any] | tuple[Any, ...]:
    if not isinstance(raw, list | tuple):
        raise ValueError(f"{what} is {describe_kind(raw)}, not a list")
    return raw


_OUTCOMES = frozenset(get_args(ToolOutcome))
_USE_FIELDS = {"tool", "call_id", "arguments_digest", "latency_s", "outcome"}


def _decoded_use(item: object) -> ToolUse:
    """One tool use of an answer, each field of its type.

    Raises:
        ValueError: it is not.
    """
    if not isinstance(item, dict) or not _USE_FIELDS <= set(item) <= _USE_FIELDS | {"error"}:
        raise ValueError("a tool use that is not an object of the tool use's fields")
    tool, call_id, digest = item["tool"], item["call_id"], item["arguments_digest"]
    latency, outcome, error = item["latency_s"], item["outcome"], item.get("error")
    if not (type(tool) is str and type(call_id) is str and type(digest) is str):
        raise ValueError("a tool use whose tool, call_id or arguments_digest is not a string")
    if type(latency) not in (int, float) or not 0 <= latency < float("inf"):
        raise ValueError(f"a tool use whose latency_s is {describe_kind(latency)}")
    if outcome not in _OUTCOMES:
        raise ValueError("a tool use of an unknown outcome")
    if error is not None and type(error) is not str:
        raise ValueError(f"a tool use whose error is {describe_kind(error)}, not a string")
    return ToolUse(tool, call_id, digest, float(latency), outcome, error)


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
    elif isinstance(exc, ToolError):
        exc.tool, exc.detail = str(fields.get("tool", "")), str(fields.get("detail", message))
    spent = fields.get("spent")
    if spent is not None:
        _attach_sent_spent(exc, spent)
    return exc


def _attach_sent_spent(exc: AutomatosError, raw: object) -> None:
    """Put on ``exc`` what its attempt spent, as the worker sent it; dropped when it is not a
    sound completion (the error itself is what matters most)."""
    try:
        spent = _decoded(raw)
    except Exception:
        return
    if completion_problem(spent) is None:
        attach_spent(exc, spent)
