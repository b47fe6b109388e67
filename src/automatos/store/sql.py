"""The SQLAlchemy store, on SQLite or PostgreSQL: the only code that speaks SQL."""

from __future__ import annotations

import dataclasses
import functools
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Executable, Table, and_, delete, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import ArgumentError, IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from automatos.domain.agent import AgentMetrics, AgentSpec
from automatos.domain.result import ErrorInfo, LLMCall, SubtaskResult, SubtaskStatus
from automatos.errors import (
    ConfigurationError,
    InvalidRequestError,
    RunTakenOverError,
    StoreError,
)
from automatos.settings import StoreSettings
from automatos.store import run_writes
from automatos.store.base import MetricsUpdate, RunDetail, RunSummary, StoredRun, WriteBatch
from automatos.store.database import (
    NewerSchemaError,
    create_engine,
    database_url,
    migrate,
    shown_url,
)
from automatos.store.failures import driver_message, is_transient, typed
from automatos.store.group import Group
from automatos.store.kb_records import KbRecords
from automatos.store.key_records import KeyRecords
from automatos.store.mcp_records import MCPRecords
from automatos.store.memory_records import MemoryRecords
from automatos.store.prompt_records import PromptRecords
from automatos.store.run_writes import RunWrite
from automatos.store.tables import (
    agent_metrics,
    agents,
    events,
    llm_calls,
    subtask_results,
    workflow_executions,
    workspaces,
)

__all__ = ["SqlStore"]


def _now() -> datetime:
    return datetime.now(UTC)


_SHOWN = [c for c in workflow_executions.c if c.name not in ("checkpoint", "owner")]
"""The columns a run is shown with (its checkpoint is only read to resume it, its owner
only checked by writes)."""


def _upsert(
    dialect: str,
    table: Table,
    values: Mapping[str, Any],
    keys: Sequence[str],
    replace: Sequence[str] = (),
) -> Executable:
    """One atomic insert-or-update on the unique ``keys`` (``replace``: the columns a conflict
    overwrites; none: the existing row is kept). Select-then-insert races when two workflows
    register the same agent or learn about it at once; this does not."""
    insert_into = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert_into(table).values(**values)
    if not replace:
        return statement.on_conflict_do_nothing(index_elements=list(keys))
    return statement.on_conflict_do_update(
        index_elements=list(keys), set_={c: statement.excluded[c] for c in replace}
    )


class SqlStore(PromptRecords, KbRecords, MemoryRecords, KeyRecords, MCPRecords):
    """A :class:`~automatos.store.base.Store` over one SQLAlchemy engine and one workspace,
    its :class:`~automatos.prompts.base.PromptStore` (the prompt registry), its
    :class:`~automatos.retrieval.base.KnowledgeStore` (the knowledge base), its
    :class:`~automatos.memory.base.MemoryStore` and its
    :class:`~automatos.store.base.MCPServerStore` (the workspace's MCP servers)."""

    def __init__(self, engine: AsyncEngine, workspace: str, lease_s: float = 30.0) -> None:
        self.engine = engine
        self.workspace = workspace
        self.lease_s = lease_s
        """A running workflow renews its lease at least this often (``store.lease_s``); one
        not renewed for twice as long lost its process and is marked ``interrupted``."""
        # What many workflows ask at once is done in one transaction (see group.py): their
        # starts, rows, lease renewals, learning and ends, one transaction at a time.
        self._writes: Group[RunWrite, RunTakenOverError | None] = Group(
            run_writes.where, self._write_together, self._write_alone, weight=run_writes.weight
        )
        self._agents: Group[None, list[AgentSpec]] = Group(lambda _: "agents", self._read_agents)
        self._metrics: Group[None, dict[str, dict[str, AgentMetrics]]] = Group(
            lambda _: "agent_metrics", self._read_all_metrics
        )
        self._prompt_reads = Group(lambda _: "prompt_state", self._read_prompt_rows)

    @classmethod
    async def open(cls, settings: StoreSettings, **engine_options: Any) -> SqlStore:
        """Connect, migrate the schema to the newest version, make sure the workspace exists,
        and mark its runs whose process died ``interrupted``.

        Raises:
            ConfigurationError: ``store.url`` is not a database URL SQLAlchemy can use.
            StoreError: the database cannot be reached or set up, or a newer automatos
                migrated it (not retryable).
        """
        try:
            engine = create_engine(
                database_url(settings), timeout_s=settings.timeout_s, **engine_options
            )
        except ArgumentError as exc:  # NoSuchModuleError too: an unknown dialect or driver
            raise ConfigurationError(
                f"store.url is not a database URL this install can use: {exc}"
            ) from None
        except OSError as exc:  # the data directory cannot be made
            raise StoreError(
                f"cannot make the store's directory {settings.data_dir}: {exc} "
                "(setting store.data_dir)",
                transient=False,
            ) from exc
        try:
            await migrate(engine)
            async with engine.begin() as conn:
                await conn.execute(
                    _upsert(
                        engine.dialect.name,
                        workspaces,
                        {
                            "id": settings.workspace,
                            "name": settings.workspace,
                            "created_at": _now(),
                        },
                        keys=["id"],
                    )
                )
            store = cls(engine, settings.workspace, settings.lease_s)
            await store._expire_leases()
        except NewerSchemaError as exc:
            await engine.dispose()
            raise StoreError(
                f"the store at {shown_url(settings)} has a newer schema (migration "
                f"{exc.revision!r}) than this version of automatos knows: upgrade automatos, "
                "or point store.url or store.data_dir at another store",
                transient=False,
            ) from None
        except (OSError, SQLAlchemyError) as exc:
            await engine.dispose()
            raise StoreError(
                f"cannot open the store at {shown_url(settings)}: {driver_message(exc)} "
                "(settings store.url, store.data_dir)",
                transient=is_transient(exc),
            ) from exc
        return store

    async def aclose(self) -> None:
        """Finish what was asked, then dispose of the engine's connections."""
        await self.drain()
        await self.engine.dispose()

    async def drain(self) -> None:
        """Finish what was asked (a store sharing another's engine closes with this)."""
        groups = (self._writes, self._agents, self._metrics, self._prompt_reads)
        for group in groups:
            await group.aclose()

    async def _write_together(self, requests: list[RunWrite]) -> list[RunTakenOverError | None]:
        """The requests in one transaction; for each, the error of a run no longer owned as
        it says (it was not written), or ``None``."""
        updates = [r.update for r in requests if isinstance(r, run_writes.Learn)]
        async with self.engine.begin() as conn:
            if updates:  # first: SQLite's BEGIN IMMEDIATE begins the transaction
                await self._lock_learning(conn)
            refused = await run_writes.write_together(conn, requests)
            if updates:
                await self._learn_in(conn, updates)
        if not refused:
            return [None] * len(requests)
        pairs = [run_writes.owner_of(r) for r in requests]
        return [
            RunTakenOverError(pair[0]) if pair is not None and pair in refused else None
            for pair in pairs
        ]

    async def _write_alone(self, request: RunWrite) -> RunTakenOverError | None:
        """One request in its own transaction, failing as it would alone."""
        if isinstance(request, run_writes.Start):
            await self._start_alone(request.row)
            return None
        [refused] = await self._write_together([request])
        return refused

    async def _written(self, request: RunWrite) -> None:
        """Write ``request`` with whatever else is asked meanwhile.

        Raises:
            RunTakenOverError: its run is no longer owned as it says: nothing was written.
        """
        refused = await self._writes(request)
        if refused is not None:
            raise refused

    async def start_execution(
        self,
        workflow_id: str,
        request: str,
        extra: Mapping[str, Any],
        started_at: datetime | None = None,
        *,
        owner: str | None = None,
    ) -> None:
        """Insert the execution as running, owned by ``owner``, its lease starting now (with
        the starts of other workflows asked meanwhile, in one transaction).

        Raises:
            InvalidRequestError: a stored run already has this workflow id.
        """
        row = {
            "id": workflow_id,
            "workspace_id": self.workspace,
            "request": request,
            "status": "running",
            "stages": [],
            "extra": dict(extra),
            "started_at": started_at or _now(),
            "heartbeat_at": _now(),
            "owner": owner,
        }
        await self._written(run_writes.Start(row))

    async def _start_alone(self, row: dict[str, Any]) -> None:
        try:
            async with self.engine.begin() as conn:
                await conn.execute(insert(workflow_executions).values(**row))
        except IntegrityError:
            workflow_id = row["id"]
            async with self.engine.connect() as conn:
                taken = await conn.scalar(
                    select(func.count())
                    .select_from(workflow_executions)
                    .where(workflow_executions.c.id == workflow_id)
                )
            if taken:
                raise InvalidRequestError(
                    f"workflow id {workflow_id!r} is already used by a stored run; "
                    "give each request its own workflow_id (or none: one is made)"
                ) from None
            raise

    async def heartbeat(self, workflow_id: str, *, owner: str | None = None) -> None:
        """Renew a running workflow's lease. A run marked ``interrupted`` while its process
        was only stalled (not dead) is running again, if no other process resumed it: it is
        the process that says how it ends.

        Raises:
            RunTakenOverError: another process resumed the run: ``owner`` is not its own.
        """
        await self._written(run_writes.Beat(workflow_id, owner))

    async def _expire_leases(self) -> None:
        """Mark ``interrupted`` the workspace's running workflows whose lease has expired:
        their process died (or hung) without finishing them. What they wrote stays.

        Looked for first, so that a store with nothing to mark takes no write lock."""
        w = workflow_executions.c
        limit = 2 * self.lease_s
        stale = and_(
            w.workspace_id == self.workspace,
            w.status == "running",
            # runs stored before leases existed have none: their start stands in
            func.coalesce(w.heartbeat_at, w.started_at) < _now() - timedelta(seconds=limit),
        )
        async with self.engine.connect() as conn:
            found = (await conn.execute(select(w.id).where(stale))).scalars().all()
        if not found:
            return
        async with self.engine.begin() as conn:
            await conn.execute(
                update(workflow_executions)
                .where(stale, w.id.in_(found))
                .values(
                    status="interrupted",
                    finished_at=_now(),
                    error=(
                        f"interrupted: the process running it stopped renewing its lease "
                        f"for over {limit:g} s (it died or hung, store.lease_s = "
                        f"{self.lease_s:g}); what it wrote before is kept"
                    ),
                )
            )

    async def save_checkpoint(
        self, workflow_id: str, checkpoint: Mapping[str, Any], *, owner: str | None = None
    ) -> None:
        """Replace the run's checkpoint (with the writes of other workflows asked meanwhile,
        in one transaction).

        Raises:
            RunTakenOverError: another process resumed the run: ``owner`` is not its own.
        """
        await self._written(run_writes.Checkpoint(workflow_id, dict(checkpoint), owner))

    @typed
    async def resume_execution(self, workflow_id: str, *, owner: str | None = None) -> StoredRun:
        """Make an ``interrupted`` run (or a ``running`` one whose lease expired) ``running``
        again with a fresh lease, owned by ``owner`` (a fresh token if none), in one
        conditional ``UPDATE``: of two processes resuming it at once, the second finds it
        running under a fresh lease and is refused, and the process that ran it before, if
        it was only stalled, finds its writes refused when it goes on. In the same
        transaction, its cancelled and skipped results are removed (all of them without a
        checkpoint), and what the resumed run takes over is read.

        Raises:
            InvalidRequestError: no run of this workspace has the id, or it cannot be resumed.
        """
        w = workflow_executions.c
        now = _now()
        mine = and_(w.id == workflow_id, w.workspace_id == self.workspace)
        stopped = or_(
            w.status == "interrupted",
            and_(
                w.status == "running",
                func.coalesce(w.heartbeat_at, w.started_at)
                < now - timedelta(seconds=2 * self.lease_s),
            ),
        )
        owner = owner or uuid.uuid4().hex
        claim = (
            update(workflow_executions)
            .where(mine, stopped)
            .values(status="running", heartbeat_at=now, finished_at=None, error=None, owner=owner)
        )
        async with self.engine.begin() as conn:
            if (await conn.execute(claim)).rowcount != 1:  # refused: nothing was changed
                found = await conn.execute(
                    select(w.status, w.heartbeat_at, w.started_at).where(mine)
                )
                row = found.first()
                status = None if row is None else (row[0], row[1], row[2])
                raise _not_resumable(workflow_id, status, 2 * self.lease_s)
            return await _take_over(conn, workflow_id, owner)

    async def write(self, batch: WriteBatch) -> None:
        """Insert a batch of rows in one transaction (``executemany`` per table), with the
        batches of other workflows asked meanwhile; one that names its owner renews the
        run's lease.

        Raises:
            RunTakenOverError: another process resumed the run: the batch's owner is not its
                own (nothing was written).
        """
        await self._written(run_writes.Rows(batch))

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
        """Record the end of the execution; the keys of ``extra`` are merged into the run's
        ``extra`` (replacing those of the same name).

        Raises:
            RunTakenOverError: another process resumed the run: ``owner`` is not its own.
        """
        values = {
            "status": status,
            "stages": [dict(s) for s in stages],
            "plan": dict(plan) if plan is not None else None,
            "totals": dict(totals) if totals is not None else None,
            "final_answer": final_answer,
            "error": error,
            "finished_at": finished_at or _now(),
            "quality": dict(quality) if quality is not None else None,
        }
        await self._written(run_writes.Finish(workflow_id, values, extra, owner))

    @typed
    async def list_runs(
        self,
        limit: int = 20,
        *,
        status: str | None = None,
        before: tuple[datetime, str] | None = None,
    ) -> list[RunSummary]:
        """The newest executions of the workspace (those whose process died are marked
        ``interrupted`` first), of one ``status`` if given, and older than ``before``: the
        ``(started_at, id)`` of the last run of the page before (a cursor, unlike an offset,
        neither skips nor repeats a run when new ones start between pages)."""
        await self._expire_leases()
        w = workflow_executions.c
        mine = [w.workspace_id == self.workspace]
        if status is not None:
            mine.append(w.status == status)
        if before is not None:
            at, wid = before
            # in UTC, as stored (SQLite keeps the naive UTC time, so it gives one back)
            at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
            mine.append(or_(w.started_at < at, and_(w.started_at == at, w.id < wid)))
        query = (
            select(
                w.id,
                w.request,
                w.status,
                w.started_at,
                w.finished_at,
                w.heartbeat_at,
                w.totals,
                w.stages,
            )
            .where(*mine)
            .order_by(w.started_at.desc(), w.id.desc())
            .limit(limit)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [RunSummary.model_validate(dict(row)) for row in rows]

    @typed
    async def get_run(self, workflow_id: str) -> RunDetail | None:
        """One execution, found by its id or by a unique prefix of it (marked ``interrupted``
        first if its process died)."""
        await self._expire_leases()
        async with self.engine.connect() as conn:
            row = await self._find(conn, workflow_id)
            if row is None:
                return None
            wid = row["id"]
            results = (
                await conn.execute(
                    select(subtask_results).where(subtask_results.c.workflow_id == wid)
                )
            ).mappings()
            calls = (
                await conn.execute(
                    select(llm_calls).where(llm_calls.c.workflow_id == wid).order_by(llm_calls.c.id)
                )
            ).mappings()
            count = await conn.scalar(
                select(func.count()).select_from(events).where(events.c.workflow_id == wid)
            )
            detail = dict(row)
        return RunDetail.model_validate(
            {
                **detail,
                "results": [
                    {k: v for k, v in r.items() if k != "workflow_id"} for r in results.all()
                ],
                "calls": [
                    {k: v for k, v in c.items() if k not in ("workflow_id", "id")}
                    for c in calls.all()
                ],
                "events": count or 0,
            }
        )

    @typed
    async def events_after(
        self, workflow_id: str, after: int = 0, limit: int = 1_000
    ) -> list[dict[str, Any]]:
        """The stored events of a run of this workspace with ``seq > after``, in order, as
        :func:`~automatos.domain.event.event_to_dict` gives them (none for another
        workspace's run)."""
        e, w = events.c, workflow_executions.c
        query = (
            select(e.seq, e.kind, e.at, e.data)
            .join(workflow_executions, w.id == e.workflow_id)
            .where(e.workflow_id == workflow_id, w.workspace_id == self.workspace, e.seq > after)
            .order_by(e.seq)
            .limit(limit)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            {"kind": kind, "seq": seq, "workflow_id": workflow_id, "at": at, **data}
            for seq, kind, at, data in rows
        ]

    async def _find(self, conn: AsyncConnection, workflow_id: str) -> Mapping[str, Any] | None:
        w = workflow_executions.c
        mine = select(*_SHOWN).where(w.workspace_id == self.workspace)
        exact = (await conn.execute(mine.where(w.id == workflow_id))).mappings().first()
        if exact is not None:  # a whole id wins over the longer ids it is a prefix of
            return dict(exact)
        query = mine.where(w.id.startswith(workflow_id, autoescape=True))
        rows = (await conn.execute(query.limit(2))).mappings().all()
        return dict(rows[0]) if len(rows) == 1 else None

    async def agents(self) -> list[AgentSpec]:
        """The workspace's agents, by name (one read for the callers that ask meanwhile)."""
        return list(await self._agents(None))

    async def _read_agents(self, callers: list[None]) -> list[list[AgentSpec]]:
        query = (
            select(agents.c.spec)
            .where(agents.c.workspace_id == self.workspace)
            .order_by(agents.c.name)
        )
        async with self.engine.connect() as conn:
            specs = (await conn.execute(query)).scalars().all()
        found = [AgentSpec.model_validate(spec) for spec in specs]  # frozen: shared
        return [found] * len(callers)

    async def save_agent(self, spec: AgentSpec) -> None:
        """Insert or replace an agent by name."""
        await self.save_agents([spec])

    @typed
    async def save_agents(self, specs: Sequence[AgentSpec]) -> None:
        """Insert or replace agents by name, in one transaction."""
        async with self.engine.begin() as conn:
            for spec in specs:
                row = {
                    "workspace_id": self.workspace,
                    "name": spec.name,
                    "spec": spec.model_dump(mode="json"),
                    "created_at": _now(),
                }
                await conn.execute(
                    _upsert(
                        self.engine.dialect.name,
                        agents,
                        row,
                        keys=["workspace_id", "name"],
                        replace=["spec"],
                    )
                )

    async def agent_metrics(self) -> dict[str, dict[str, AgentMetrics]]:
        """Learned metrics of the workspace's agents (one read for the callers that ask
        meanwhile; each gets its own copy)."""
        return _copied(await self._metrics(None))

    async def _read_all_metrics(
        self, callers: list[None]
    ) -> list[dict[str, dict[str, AgentMetrics]]]:
        async with self.engine.connect() as conn:
            found = await self._read_metrics(conn)
        return [found] * len(callers)

    async def _read_metrics(self, conn: AsyncConnection) -> dict[str, dict[str, AgentMetrics]]:
        m = agent_metrics.c
        query = (
            select(
                agents.c.name,
                m.task_type,
                m.success_rate,
                m.avg_quality,
                m.avg_latency_s,
                m.avg_cost_usd,
                m.total_executions,
            )
            .join(agents, agents.c.id == m.agent_id)
            .where(agents.c.workspace_id == self.workspace)
        )
        out: dict[str, dict[str, AgentMetrics]] = {}
        for row in (await conn.execute(query)).all():
            name, task_type, *values = row
            out.setdefault(name, {})[task_type] = AgentMetrics(*values)
        return out

    async def update_metrics(self, update: MetricsUpdate) -> None:
        """Read, update and save the metrics in one transaction that holds the workspace's
        learning lock: no other update, from this process or another, comes in between.

        The lock is the database's own, so that it holds across processes: on SQLite the
        write lock, taken when the transaction begins (``BEGIN IMMEDIATE``; a deferred one
        would read, then find that another process wrote meanwhile); on PostgreSQL the
        workspace's row, ``SELECT ... FOR NO KEY UPDATE`` (which does not block the
        ``FOR KEY SHARE`` that inserting a run or an agent takes on it). A row lock rather
        than an SQL-side EMA keeps the learning rule in one place, in Python
        (:mod:`automatos.phases.learn.metrics`); learning is one short transaction per run.

        The updates asked while another is written go together in the next transaction,
        applied one after the other: each reads what the one before it saved. One that
        raises costs its own run only.
        """
        await self._written(run_writes.Learn(update))

    async def _lock_learning(self, conn: AsyncConnection) -> None:
        """Hold the workspace's learning lock until ``conn``'s transaction ends."""
        if self.engine.dialect.name == "sqlite":
            await conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            await conn.execute(
                select(workspaces.c.id)
                .where(workspaces.c.id == self.workspace)
                .with_for_update(key_share=True)
            )

    async def _learn_in(self, conn: AsyncConnection, updates: list[MetricsUpdate]) -> None:
        """Apply ``updates`` in turn, each to what the one before saved, and save them all.

        One that raises fails the group, whose requests are then made alone: it raises to its
        own run, and the others are saved."""
        known = await self._read_metrics(conn)
        saved: dict[str, dict[str, AgentMetrics]] = {}
        for learned in updates:
            for name, by_type in learned(_copied(known)).items():
                known.setdefault(name, {}).update(by_type)
                saved.setdefault(name, {}).update(by_type)
        if saved:
            await self._save_metrics(conn, saved)

    @typed
    async def save_metrics(self, metrics: Mapping[str, Mapping[str, AgentMetrics]]) -> None:
        """Upsert the metrics of registered agents; those of other names are not kept.

        Learning never adds candidates: the agents table is the workspace's registry, which
        stage 2 chooses from, so an agent that a request defined for itself (a recipe's
        ``agents:``) must not become a row there because a run learned about it. Its
        metrics would describe a spec the registry does not hold, so they are dropped
        rather than kept aside.
        """
        async with self.engine.begin() as conn:
            await self._save_metrics(conn, metrics)

    async def _save_metrics(
        self, conn: AsyncConnection, metrics: Mapping[str, Mapping[str, AgentMetrics]]
    ) -> None:
        if not metrics:
            return
        query = select(agents.c.name, agents.c.id).where(
            agents.c.workspace_id == self.workspace, agents.c.name.in_(list(metrics))
        )
        ids: dict[str, int] = dict((await conn.execute(query)).all())
        now = _now()
        rows = [
            dataclasses.asdict(value)
            | {"agent_id": ids[name], "task_type": task_type, "updated_at": now}
            for name, by_type in metrics.items()
            if name in ids
            for task_type, value in by_type.items()
        ]
        if rows:  # one statement for them all (executemany)
            await conn.execute(_metrics_upsert(self.engine.dialect.name), rows)


_ENDED = {
    "succeeded": "it succeeded",
    "partial": "it ended partial (some of its subtasks did not succeed)",
    "failed": "it failed",
    "cancelled": "it was cancelled",
}


def _not_resumable(
    workflow_id: str, found: tuple[str, datetime | None, datetime] | None, expires_s: float
) -> InvalidRequestError:
    """Why the run cannot be resumed (``found``: its status and lease, or none)."""
    if found is None:
        return InvalidRequestError(
            f"no stored run has the id {workflow_id!r} (automatos runs list)"
        )
    status, beat, started = found
    if status != "running":
        ended = _ENDED.get(status, f"is {status}")
        return InvalidRequestError(
            f"run {workflow_id} cannot be resumed: {ended}; only an interrupted run can be resumed"
        )
    last = beat or started
    last = last.replace(tzinfo=UTC) if last.tzinfo is None else last  # SQLite: naive UTC
    ago = (_now() - last).total_seconds()
    return InvalidRequestError(
        f"run {workflow_id} cannot be resumed: another process is running it (it renewed "
        f"its lease {ago:.0f} s ago; a run whose process stopped can be resumed once its lease "
        f"is {expires_s:g} s old: twice store.lease_s)"
    )


async def _take_over(conn: AsyncConnection, workflow_id: str, owner: str) -> StoredRun:
    """What a resumed run needs from its record, within the transaction that claimed it."""
    w, r, e, c = workflow_executions.c, subtask_results.c, events.c, llm_calls.c
    row = (await conn.execute(select(workflow_executions).where(w.id == workflow_id))).one()
    checkpoint = row.checkpoint
    gone = r.workflow_id == workflow_id
    if checkpoint is not None:  # without one, it starts over: no result stands
        gone = and_(gone, r.status.in_((SubtaskStatus.CANCELLED, SubtaskStatus.SKIPPED)))
    await conn.execute(delete(subtask_results).where(gone))
    results = await conn.execute(
        select(
            r.subtask_id,
            r.status,
            r.agent,
            r.output,
            r.tokens_in,
            r.tokens_out,
            r.cost_usd,
            r.latency_s,
            r.attempts,
            r.error,
            r.tool_calls,
        ).where(r.workflow_id == workflow_id)
    )
    calls = await conn.execute(
        select(
            c.stage,
            c.model,
            c.subtask_id,
            c.tokens_in,
            c.tokens_out,
            c.cost_usd,
            c.latency_s,
            c.priced,
        )
        .where(c.workflow_id == workflow_id)
        .order_by(c.id)
    )
    last_seq = await conn.scalar(select(func.max(e.seq)).where(e.workflow_id == workflow_id))
    findings = await conn.execute(
        select(e.data)
        .where(e.workflow_id == workflow_id, e.kind == "finding_shared")
        .order_by(e.seq)
    )
    return StoredRun(
        workflow_id=workflow_id,
        request=row.request,
        extra=dict(row.extra or {}),
        checkpoint=checkpoint,
        results=[
            SubtaskResult(
                sid,
                SubtaskStatus(status),
                agent,
                output,
                tokens_in,
                tokens_out,
                cost,
                latency,
                attempts,
                ErrorInfo(**error) if error else None,
                run_writes.tool_uses_of(tool_calls),
            )
            for (
                sid,
                status,
                agent,
                output,
                tokens_in,
                tokens_out,
                cost,
                latency,
                attempts,
                error,
                tool_calls,
            ) in results.all()
        ],
        calls=[LLMCall(*call) for call in calls.all()],
        findings=list(findings.scalars().all()) if checkpoint is not None else [],
        last_seq=last_seq or 0,
        stages=list(row.stages or []),
        plan=row.plan,
        totals=row.totals,
        final_answer=row.final_answer,
        quality=row.quality,
        owner=owner,
    )


@functools.cache
def _metrics_upsert(dialect: str) -> Executable:
    """Insert or update a metrics row by agent and task type (built once per dialect)."""
    insert_into = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert_into(agent_metrics)
    replace = [f.name for f in dataclasses.fields(AgentMetrics)] + ["updated_at"]
    return statement.on_conflict_do_update(
        index_elements=["agent_id", "task_type"],
        set_={c: statement.excluded[c] for c in replace},
    )


def _copied(
    metrics: Mapping[str, Mapping[str, AgentMetrics]],
) -> dict[str, dict[str, AgentMetrics]]:
    """Metrics a caller may add to or remove from without changing another's. The values
    are shared: learning makes new ones (:func:`automatos.phases.learn.metrics.update_metrics`
    copies before it changes), it never changes those it read."""
    return {name: dict(by_type) for name, by_type in metrics.items()}
