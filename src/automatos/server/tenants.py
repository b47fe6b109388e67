"""The workspaces a server serves: each key names one, and each workspace has its own engine
and running workflows over one shared database and one shared model.

A request's key decides its workspace (:meth:`Tenants.for_key`); everything it reads or
starts is that workspace's, so another workspace's workflow is simply not found (404).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from automatos.engine import Engine
from automatos.llm.base import LLMProvider
from automatos.llm.factory import build_provider
from automatos.phases.pipeline import records_closed
from automatos.server.metrics import ServerMetrics
from automatos.server.runs import RunRegistry
from automatos.settings import Settings
from automatos.store.keys import ApiKey
from automatos.store.sql import SqlStore
from automatos.tools.base import Tool

__all__ = ["Tenant", "Tenants"]


@dataclass(frozen=True)
class Tenant:
    """One workspace as the server serves it."""

    workspace: str
    engine: Engine
    runs: RunRegistry
    store: SqlStore


class Tenants:
    """The engines of the workspaces requests came for, made on first use."""

    def __init__(
        self,
        settings: Settings,
        llm: LLMProvider | None = None,
        metrics: ServerMetrics | None = None,
        *,
        tools: Sequence[Tool | Callable[..., Any]] = (),
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self._llm = llm
        self._tools = tuple(tools)
        self._control: SqlStore | None = None
        self._tenants: dict[str, Tenant] = {}
        self._lock = asyncio.Lock()
        self._stopping = False

    async def open(self) -> SqlStore:
        """The database, opened and migrated (the settings' workspace made)."""
        if self._control is None:
            self._control = await SqlStore.open(self.settings.store)
        return self._control

    async def for_key(self, key: ApiKey) -> Tenant:
        """The tenant of ``key``'s workspace."""
        return await self.get(key.workspace)

    async def get(self, workspace: str) -> Tenant:
        """The tenant of ``workspace`` (made on first use)."""
        tenant = self._tenants.get(workspace)
        if tenant is not None:
            return tenant
        async with self._lock:
            tenant = self._tenants.get(workspace)
            if tenant is None:
                control = await self.open()
                if self._llm is None:
                    self._llm = build_provider(self.settings.llm)
                settings = self.settings.model_copy(deep=True)
                settings.store.workspace = workspace
                store = SqlStore(control.engine, workspace, settings.store.lease_s)
                engine = Engine(settings, llm=self._llm, store=store, tools=self._tools)
                runs = RunRegistry(engine, metrics=self.metrics)
                runs.stopping = self._stopping
                tenant = Tenant(workspace, engine, runs, store)
                self._tenants[workspace] = tenant
        return tenant

    def stop_accepting(self) -> None:
        """Start no more workflows (SIGTERM came): a POST gets 503 with Retry-After."""
        self._stopping = True
        for tenant in self._tenants.values():
            tenant.runs.stopping = True
            tenant.runs.wake_all()  # streams waiting on them see the grace begin

    async def aclose(self, grace_s: float) -> None:
        """Let running workflows finish within ``grace_s`` (the rest are stopped and
        recorded ``interrupted``), close the engines, then the database."""
        self.stop_accepting()
        tenants = list(self._tenants.values())
        await asyncio.gather(*(t.runs.aclose(grace_s) for t in tenants))
        await records_closed()
        for tenant in tenants:
            await tenant.store.drain()  # its writes, before the shared engine goes
            await tenant.engine.aclose()  # each closes the shared model's connections, if any
        if self._control is not None:
            await self._control.aclose()
