"""The store seam: what the engine keeps between runs, and the records it reads back."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from pydantic import BaseModel, field_validator

from automatos.domain.agent import AgentMetrics, AgentSpec
from automatos.domain.event import Event
from automatos.domain.result import LLMCall, SubtaskResult

if TYPE_CHECKING:
    from automatos.domain.tools import MCPServerConfig

__all__ = [
    "MCPServerRecord",
    "MCPServerStore",
    "MetricsUpdate",
    "RunDetail",
    "RunSummary",
    "Store",
    "StoredRun",
    "WriteBatch",
]

OVERALL = "*"
"""The task type under which an agent's overall metrics are kept."""


@dataclass
class WriteBatch:
    """Rows of one workflow waiting to be written together (by ``owner``, the token its
    process holds the run's record by; ``None``: not checked)."""

    workflow_id: str
    results: list[SubtaskResult] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    calls: list[LLMCall] = field(default_factory=list)
    owner: str | None = None

    def __len__(self) -> int:
        return len(self.results) + len(self.events) + len(self.calls)


class RunSummary(BaseModel):
    """One stored workflow execution, without its details.

    ``status`` is the workflow's (``succeeded``, ``partial``, ``failed``, ``cancelled``),
    ``running`` while it runs, or ``interrupted`` when its process died before it ended
    (its lease expired; what it wrote before is kept).
    """

    id: str
    request: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    heartbeat_at: datetime | None = None
    """When the run last renewed its lease (while it was running)."""
    totals: dict[str, Any] | None
    stages: list[dict[str, Any]]

    @field_validator("started_at", "finished_at", "heartbeat_at")
    @classmethod
    def _in_utc(cls, moment: datetime | None) -> datetime | None:
        """Times say their zone: SQLite gives back the naive UTC time it was given."""
        if moment is not None and moment.tzinfo is None:
            return moment.replace(tzinfo=UTC)
        return moment


class RunDetail(RunSummary):
    """A stored execution with its results, model calls and events."""

    final_answer: str | None
    error: str | None
    quality: dict[str, Any] | None = None
    plan: dict[str, Any] | None
    extra: dict[str, Any]
    results: list[dict[str, Any]]
    calls: list[dict[str, Any]]
    events: int


@dataclass(frozen=True)
class StoredRun:
    """What a resumed workflow takes over from its record (:meth:`Store.resume_execution`).

    ``results`` are the subtasks that ended for good (succeeded or failed): those cancelled or
    skipped when the process stopped are removed from the record, to run again. ``calls``
    are every model call stored, which the run's totals count. ``findings`` are the data of
    its ``finding_shared`` events, in order. The row's own fields (``stages`` … ``quality``)
    are as the record had them, for :meth:`Store.finish_execution` to put back should the
    resume fail before it starts.
    """

    workflow_id: str
    request: str
    extra: dict[str, Any]
    checkpoint: dict[str, Any] | None
    """What :meth:`Store.save_checkpoint` last saved; ``None``: it stopped before its plan."""
    results: list[SubtaskResult]
    calls: list[LLMCall]
    findings: list[dict[str, Any]]
    last_seq: int
    """The ``seq`` of its last stored event: the resumed run's events go on from it."""
    stages: list[dict[str, Any]] = field(default_factory=list)
    plan: dict[str, Any] | None = None
    totals: dict[str, Any] | None = None
    final_answer: str | None = None
    quality: dict[str, Any] | None = None
    owner: str | None = None
    """The token the resumer now holds the record by: its writes name it."""


MetricsUpdate = Callable[
    [dict[str, dict[str, AgentMetrics]]], Mapping[str, Mapping[str, AgentMetrics]]
]
"""From the stored metrics (by agent name, then task type) to those to save."""


@runtime_checkable
class Store(Protocol):
    """Durable records of runs, agents and learned metrics.

    A run's record is owned by the process running it: :meth:`start_execution` and
    :meth:`resume_execution` set its *owner* token, and the lease renewals, rows,
    checkpoint and end that name an owner are written only while it is still the run's (in
    the same transaction as the check). One that is not raises
    :class:`~automatos.errors.RunTakenOverError`: another process resumed the run, and this
    one must stop it. Writes that name no owner are not checked.
    """

    async def start_execution(
        self,
        workflow_id: str,
        request: str,
        extra: Mapping[str, Any],
        started_at: datetime | None = None,
        *,
        owner: str | None = None,
    ) -> None:
        """Record that a workflow began (now, unless ``started_at`` says when), owned by
        ``owner`` (a token of at most 32 characters, unique to this run in this process);
        its lease starts now.

        Raises:
            InvalidRequestError: a stored run already has this workflow id.
        """
        ...

    async def heartbeat(self, workflow_id: str, *, owner: str | None = None) -> None:
        """Renew a running workflow's lease (at least every ``store.lease_s``): a run whose
        lease is older than twice that is marked ``interrupted`` when the store is opened or
        its runs are listed or shown.

        Raises:
            RunTakenOverError: ``owner`` no longer owns the run (nothing was written).
        """
        ...

    async def write(self, batch: WriteBatch) -> None:
        """Write results, events and calls of one workflow in one transaction (which
        renews its lease when the batch names its owner).

        Raises:
            RunTakenOverError: the batch's owner no longer owns the run (nothing was written).
            StoreError: nothing was written; ``retryable`` if the cause is transient (the
                same batch may then succeed), not if the database refused a row.
        """
        ...

    async def finish_execution(
        self,
        workflow_id: str,
        *,
        status: str,
        stages: Sequence[Mapping[str, Any]],
        plan: Mapping[str, Any] | None,
        totals: Mapping[str, Any] | None,
        final_answer: str | None,
        error: str | None,
        finished_at: datetime | None = None,
        quality: Mapping[str, Any] | None = None,
        extra: Mapping[str, Any] | None = None,
        owner: str | None = None,
    ) -> None:
        """Record how a workflow ended; the keys of ``extra`` are merged into the ``extra``
        it started with, replacing those of the same name.

        Raises:
            RunTakenOverError: ``owner`` no longer owns the run (nothing was written).
        """
        ...

    async def save_checkpoint(
        self, workflow_id: str, checkpoint: Mapping[str, Any], *, owner: str | None = None
    ) -> None:
        """Keep what a running workflow needs to be resumed (its plan, agents, …: see
        :mod:`automatos.phases.resume`), replacing the one saved before.

        Raises:
            RunTakenOverError: ``owner`` no longer owns the run (nothing was written).
        """
        ...

    async def resume_execution(self, workflow_id: str, *, owner: str | None = None) -> StoredRun:
        """Take over a run whose process stopped: ``interrupted``, or ``running`` with a lease
        that has expired. One conditional update makes it ``running`` again with a fresh
        lease, owned by ``owner`` (a fresh token when none is given: the returned run's
        ``owner``), so that of two processes resuming it at once one wins, and the process
        that ran it before, should it go on, finds it is no longer its own; its cancelled and
        skipped results are removed in the same transaction (all of them when it has no
        checkpoint: it starts over).

        Raises:
            InvalidRequestError: no run of this workspace has this id, or it cannot be resumed
                (it ended, or another process holds its lease); the message says which.
            StoreError: the database failed.
        """
        ...

    async def list_runs(
        self,
        limit: int = 20,
        *,
        status: str | None = None,
        before: tuple[datetime, str] | None = None,
    ) -> list[RunSummary]:
        """The newest executions first (runs whose lease expired marked ``interrupted``): of
        one ``status`` if given, and older than ``before``, the ``(started_at, id)`` of the
        last run of the previous page (ties on ``started_at`` go by ``id``, descending)."""
        ...

    async def get_run(self, workflow_id: str) -> RunDetail | None:
        """One execution with its details, or ``None``."""
        ...

    async def agents(self) -> list[AgentSpec]:
        """Every registered agent of the workspace."""
        ...

    async def save_agent(self, spec: AgentSpec) -> None:
        """Add an agent, or replace the one of the same name."""
        ...

    async def save_agents(self, specs: Sequence[AgentSpec]) -> None:
        """:meth:`save_agent` for each, in one transaction: readers see all or none."""
        ...

    async def agent_metrics(self) -> dict[str, dict[str, AgentMetrics]]:
        """Learned metrics by agent name, then task type (``"*"`` is overall)."""
        ...

    async def save_metrics(self, metrics: Mapping[str, Mapping[str, AgentMetrics]]) -> None:
        """Replace the metrics given, by agent name and task type. Only registered agents
        keep metrics: learning never adds an agent to the registry."""
        ...

    async def update_metrics(self, update: MetricsUpdate) -> None:
        """Read the metrics, apply ``update`` and save what it returns (as
        :meth:`save_metrics`), with no other update of this store in between, from this
        process or any other (learning from runs that finish at once)."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


@dataclass(frozen=True)
class MCPServerRecord:
    """One MCP server configured for a workspace (``automatos mcp add``)."""

    config: MCPServerConfig
    """How to start or reach it."""
    created_at: datetime

    @property
    def name(self) -> str:
        """What agents name it by (``mcp:NAME``); unique in the workspace."""
        return self.config.name


@runtime_checkable
class MCPServerStore(Protocol):
    """The MCP servers of a workspace, which every agent of it may name in its tools.

    A run reads them when it starts (:meth:`mcp_servers`); servers configured on an agent
    itself are part of its :class:`~automatos.domain.agent.AgentSpec` instead.
    """

    async def add_mcp_server(self, config: MCPServerConfig) -> MCPServerRecord:
        """Keep ``config`` as the workspace's server of its name.

        Raises:
            InvalidRequestError: the workspace has a server of that name already.
        """
        ...

    async def mcp_servers(self) -> list[MCPServerRecord]:
        """The workspace's servers, by name.

        Raises:
            StoreError: a stored config is no longer valid (the message names its server).
        """
        ...

    async def mcp_server(self, name: str) -> MCPServerRecord | None:
        """The workspace's server ``name``, or ``None``."""
        ...

    async def remove_mcp_server(self, name: str) -> None:
        """Forget the workspace's server ``name``.

        Raises:
            InvalidRequestError: the workspace has no server of that name.
        """
        ...
