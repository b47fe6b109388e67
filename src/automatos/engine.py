"""The facade: ``Engine(settings, llm=...)``, ``await engine.run(request)``, ``engine.stream``."""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Callable, Iterable
from typing import Any

from pydantic import ValidationError

from automatos.domain.event import Event
from automatos.domain.request import WorkflowRequest
from automatos.domain.result import WorkflowResult
from automatos.errors import ConfigurationError, InvalidRequestError
from automatos.llm.base import LLMProvider
from automatos.llm.factory import build_provider, wrap_provider
from automatos.llm.structured import describe_fields
from automatos.phases.pipeline import resume_workflow, run_workflow
from automatos.phases.selector import StageSelector
from automatos.phases.state import Runtime
from automatos.retrieval.embedder import Embedder
from automatos.retrieval.pool import ContextSource
from automatos.runners.base import TaskRunner
from automatos.runners.factory import build_runner
from automatos.scoring import Scorer
from automatos.settings import Settings, env_warnings
from automatos.store.base import Store
from automatos.streaming import WorkflowStream
from automatos.tools.base import Tool

__all__ = ["Engine"]


class Engine:
    """Plans requests into subtask graphs and runs them with LLM agents.

    Args:
        settings: all settings; ``Settings()`` reads ``AUTOMATOS_*`` variables.
        llm: the model provider; by default the one the settings configure. Whatever it
            is, every call gets the settings' timeout, retries and prices.
        runner: where agent tasks run; by default the one ``settings.runner`` chooses (in
            this process, or on ``automatos worker`` processes through Redis).
        store: where runs, agents and learned metrics are kept; by default the database of
            ``settings.store`` (a SQLite file unless a URL is set), opened on the first run;
            none when ``settings.store.enabled`` is false.
        scorer: scores each subtask's output (stage 7); agents learn from the scores.
        selector: chooses each workflow's stages from its level; by default the
            :class:`~automatos.phases.selector.PhaseSelector` (the PRD's table of levels).
        embedder: turns chunks, memories and subtasks into vectors (stages 3 and 8); by
            default the one ``settings.embeddings`` configures, made on first use (the
            embedded all-MiniLM-L6-v2 loads only when something is embedded).
        tools: Python tools the agents may call, by name in their ``tools`` list: plain
            functions (sync or async, with type hints and a docstring: the arguments'
            schema comes from the signature) or :class:`~automatos.tools.Tool` objects. The
            built-in tools and MCP servers need no passing (see ``tools.*``). With
            ``runner.kind = queued``, give the workers the same (``automatos worker --tool``).

    Raises:
        ConfigurationError: no ``llm`` is given and the settings configure none, or a tool
            cannot be one (no type hints, a bad name, two of one name).
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        llm: LLMProvider | None = None,
        runner: TaskRunner | None = None,
        store: Store | None = None,
        scorer: Scorer | None = None,
        selector: StageSelector | None = None,
        embedder: Embedder | None = None,
        tools: Iterable[Tool | Callable[..., Any]] = (),
    ) -> None:
        if settings is None:
            settings = Settings()
            for line in env_warnings():  # a misspelt variable would leave its default silently
                warnings.warn(line, UserWarning, stacklevel=2)
        self.settings = settings
        self.store = store
        self.scorer = scorer
        self.selector = selector
        self._owns_store = False
        self._store_lock = asyncio.Lock()
        self._provider = llm if llm is not None else build_provider(self.settings.llm)
        self.llm = wrap_provider(
            self._provider,
            self.settings.llm,
            cancel_grace_s=self.settings.execution.cancel_grace_s,
        )
        self.runner = runner if runner is not None else build_runner(settings.runner, self.llm)
        self._embedder = embedder
        self._owns_embedder = embedder is None
        self.tools = _python_tools(tools)
        self._context: ContextSource | None = None
        self._stopping = asyncio.Event()

    async def open_store(self) -> Store | None:
        """The store, opened (and migrated) on first use; ``None`` when storage is off."""
        if self.store is None and self.settings.store.enabled:
            async with self._store_lock:
                if self.store is None:
                    from automatos.store.sql import SqlStore

                    self.store = await SqlStore.open(self.settings.store)
                    self._owns_store = True
        return self.store

    @property
    def runtime(self) -> Runtime:
        """What every workflow of this engine runs with (the store once it is open)."""
        return Runtime(
            self.settings,
            self.llm,
            self.runner,
            store=self.store,
            scorer=self.scorer,
            selector=self.selector,
            profile=self.llm.profile,
            context=self._context_source(),
            stopping=self._stopping,
            tools=self.tools,
        )

    def _context_source(self) -> ContextSource | None:
        """Stage 3's and 8's embedder, made when a workflow could use it (a store to keep a
        knowledge base or memories in, and either stage on)."""
        settings = self.settings
        if self._context is None:
            wanted = settings.context.enabled or settings.memory.enabled
            if self._embedder is None and wanted and (self.store or settings.store.enabled):
                from automatos.retrieval.factory import build_embedder

                self._embedder = build_embedder(settings)
            if self._embedder is not None:
                self._context = ContextSource(self._embedder)
        return self._context

    async def run(
        self,
        request: WorkflowRequest | str,
        *,
        on_event: Callable[[Event], object] | None = None,
    ) -> WorkflowResult:
        """Run one request to the end and return its result.

        ``on_event`` is called with each event as it happens, and must not block; one that
        raises is dropped, with a warning in the result.

        Raises:
            InvalidRequestError: the request is malformed.
            ConfigurationError: a dollar budget is set and a model has no price.
            AutomatosError: the workflow could not go on (a plan error, the store, …).
        """
        return await self._run(request, on_event, None)

    async def _run(
        self,
        request: WorkflowRequest | str,
        on_event: Callable[[Event], object] | None,
        gate: asyncio.Event | None,
    ) -> WorkflowResult:
        if isinstance(request, str):
            try:
                request = WorkflowRequest(text=request)
            except ValidationError as exc:
                raise InvalidRequestError(f"invalid request: {describe_fields(exc)}") from None
        store = await self.open_store()
        await self._check_prices(request, store)
        return await run_workflow(request, self.runtime, on_event, gate=gate)

    def stream(self, request: WorkflowRequest | str, *, max_buffered: int = 1000) -> WorkflowStream:
        """Run one request, giving its events as they happen and then its result.

        ``async for event in engine.stream(request)`` yields the events in order, the last
        being ``workflow_finished``; an error that stopped the workflow is raised when they
        end, and ``.result`` holds the :class:`WorkflowResult` once they ended without one.
        At most ``max_buffered`` events wait for a slow reader: while they do, the workflow
        starts no new work. Leaving the loop early cancels the workflow.
        """
        settings = self.settings
        return WorkflowStream(
            lambda put, gate: self._run(request, put, gate),
            max_buffered,
            stop_within_s=settings.execution.cancel_grace_s + settings.store.timeout_s,
        )

    async def resume(
        self,
        workflow_id: str,
        *,
        on_event: Callable[[Event], object] | None = None,
    ) -> WorkflowResult:
        """Go on with a stored run whose process stopped before it ended, and return its
        result, which describes the whole run (both processes' results and model calls).

        The run is ``interrupted`` (its server stopped, or its process died and its lease
        expired: twice ``store.lease_s``). Its subtasks that ended (succeeded, or failed
        after their attempts) are not run again and their outputs feed their dependents; its
        plan comes from its checkpoint, and a run stopped before it had one starts over under
        the same id. Events go on from the stored ones, from ``workflow_resumed``.

        Raises:
            ConfigurationError: storage is off (``store.enabled``): there is nothing to
                resume from.
            InvalidRequestError: no stored run has this id, or it cannot be resumed (it
                ended; or another process is running it, its lease still fresh).
            StoreError: the store failed.
            AutomatosError: as :meth:`run`, once the run goes on.
        """
        return await self._resume(workflow_id, on_event, None)

    async def _resume(
        self,
        workflow_id: str,
        on_event: Callable[[Event], object] | None,
        gate: asyncio.Event | None,
    ) -> WorkflowResult:
        if await self.open_store() is None:
            raise ConfigurationError(
                "there is no store to resume a run from: storage is off (setting store.enabled)"
            )
        return await resume_workflow(workflow_id, self.runtime, on_event, gate=gate)

    def stream_resume(self, workflow_id: str, *, max_buffered: int = 1000) -> WorkflowStream:
        """:meth:`resume` as a stream of its events, then its result (see :meth:`stream`):
        the first event is ``workflow_resumed``, numbered on from the stored ones."""
        settings = self.settings
        return WorkflowStream(
            lambda put, gate: self._resume(workflow_id, put, gate),
            max_buffered,
            stop_within_s=settings.execution.cancel_grace_s + settings.store.timeout_s,
        )

    async def _check_prices(self, request: WorkflowRequest, store: Store | None) -> None:
        """Refuse a dollar budget that could not be kept: a model whose cost is unknown (the
        engine's, or one an agent of the request or of the registry names)."""
        if request.budget_usd is None and self.settings.execution.budget_usd is None:
            return
        llm = self.llm
        agents = [*request.agents, *(await store.agents() if store is not None else ())]
        models = {self.settings.llm.model} if not llm.free else set()
        models.update(a.model for a in agents if a.model)
        unpriced = sorted(m for m in models if not llm.price_known(m))
        if unpriced:
            raise ConfigurationError(
                f"a dollar budget is set, but the cost of {', '.join(unpriced)} is unknown: "
                "add its price to AUTOMATOS_LLM__PRICES (setting llm.prices) or use a token "
                "budget"
            )

    def begin_shutdown(self) -> None:
        """The engine is shutting down: workflows cancelled from now on are recorded
        ``interrupted`` (stopped with their process, not given up), not ``cancelled``."""
        self._stopping.set()

    async def aclose(self) -> None:
        """Close the runner and the provider's connections."""
        await self.runner.aclose()
        if self._owns_store and self.store is not None:
            await self.store.aclose()
            self.store, self._owns_store = None, False
        close = getattr(self._provider, "aclose", None)
        if close is not None:
            await close()
        if self._owns_embedder and self._embedder is not None:
            from automatos.retrieval.factory import close_embedder

            await close_embedder(self._embedder)
            self._embedder, self._context = None, None

    async def __aenter__(self) -> Engine:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def _python_tools(tools: Iterable[Tool | Callable[..., Any]]) -> tuple[Tool, ...]:
    """The engine's tools as :class:`Tool` objects, each name once (checked here, not at a
    run: a bad tool is the caller's mistake, told at once)."""
    from automatos.tools.function import as_tool
    from automatos.tools.registry import ToolRegistry

    made = [as_tool(t) for t in tools]
    ToolRegistry(made)  # refuses two tools of one name, and names that are not tool names
    return tuple(made)
