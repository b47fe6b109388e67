"""The FastAPI application: workflows over HTTP, their events as Server-Sent Events.

``create_app(settings)`` builds one :class:`~automatos.engine.Engine` (the same pipeline as
the library and the CLI) and a :class:`~automatos.server.runs.RunRegistry` of the workflows
it runs. Endpoints:

- ``POST /v1/workflows``: start a workflow (``{"request": "..."}``, optionally ``"level"``);
  an ``Idempotency-Key`` header makes a retried POST return the same workflow. The answer is
  JSON (202: its id and where its events are), or, with ``Accept: text/event-stream``, the
  workflow's event stream itself, from its first event (201 when started now, 200 for the
  workflow the key started before; ``Location`` names it): a client that wants the events
  loses none to the time between the answer and a ``GET`` of them, and makes one request.
  As with the ``GET``, closing the stream leaves the workflow running (``…/cancel`` stops it),
  and ``Last-Event-ID`` (on a retry with the same key) resumes after that event.
- ``GET /v1/workflows``: the stored runs, newest first, a page at a time (``limit``,
  ``status``, ``cursor``: the ``next`` of the page before).
- ``GET /v1/workflows/{id}``: the stored run, or the progress of a running one.
- ``POST /v1/workflows/{id}/cancel``.
- ``GET /v1/workflows/{id}/events``: every event as SSE, its ``seq`` as the SSE id; a client
  that reconnects with ``Last-Event-ID`` resumes after it; the stream ends with the workflow
  (a finished workflow's events replay from the store). Comments keep idle proxies open.
- ``GET /healthz``, ``GET /readyz`` (the store answers), ``GET /metrics`` (Prometheus text:
  workflows by status and running, subtask latency, tokens, cost, failed attempts).

Every ``/v1`` request carries an API key (``Authorization: Bearer atm_…`` or ``X-API-Key``;
``automatos keys create --workspace W``) and is served in its key's workspace: another
workspace's workflows answer 404. Without ``anonymous`` (``automatos serve --no-auth``, on a
loopback address only) a request without a valid key gets 401.

The agent and prompt registries are :mod:`automatos.server.catalog`'s (``/v1/agents``,
``/v1/prompts``). Every error answer is ``{"detail": ..., "error": ...}``
(:mod:`automatos.server.problems`).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from functools import partial
from typing import Annotated, Any

from fastapi import FastAPI, Header, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel, ConfigDict, Field

from automatos.domain.level import Level
from automatos.domain.request import WorkflowRequest
from automatos.domain.tools import hide_server_secrets
from automatos.errors import AutomatosError, InvalidRequestError, ServerStoppingError
from automatos.heap import freeze_startup_heap
from automatos.llm.base import LLMProvider
from automatos.server import catalog, page
from automatos.server.auth import Scoped
from automatos.server.limits import BodyLimit, RateLimiter
from automatos.server.listing import RunPage, RunStatus, list_page
from automatos.server.metrics import ServerMetrics
from automatos.server.problems import ERRORS, invalid_request
from automatos.server.runs import LiveRun
from automatos.server.tenants import Tenant, Tenants
from automatos.settings import Settings
from automatos.store.sql import SqlStore
from automatos.tools.base import Tool

__all__ = ["HEARTBEAT_S", "WorkflowIn", "WorkflowStarted", "create_app"]

HEARTBEAT_S = 15.0
"""Seconds of silence after which an event stream sends a comment, so proxies keep it open."""
_PAGE = 500
WorkflowId = Annotated[
    str,
    Path(pattern=r"^[^\x00-\x1f\x7f]+$", description="A workflow's id, or a unique prefix of it."),
]
"""No control characters: none is in an id, and PostgreSQL refuses a NUL even to compare."""


class WorkflowIn(BaseModel):
    """A workflow to start."""

    model_config = ConfigDict(extra="forbid")  # a misspelt field is an error, not ignored

    request: str = Field(min_length=1, description="What the workflow should do.")
    level: Level | None = Field(default=None, description="Its level, else the engine's choice.")


def create_app(
    settings: Settings,
    *,
    llm: LLMProvider | None = None,
    anonymous: bool = False,
    tools: Sequence[Tool | Callable[..., Any]] = (),
) -> FastAPI:
    """The application: its workflows run on engines built from ``settings`` (one per
    workspace, sharing the model, by default the one the settings configure, the database
    and ``tools``, Python tools as :class:`~automatos.engine.Engine` takes them).
    ``anonymous`` serves requests without a key in the settings' workspace."""
    metrics = ServerMetrics()
    tenants = Tenants(settings, llm, metrics, tools=tools)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await tenants.open()
        app.state.loop = asyncio.get_running_loop()
        if app.state.freeze_heap:  # run as automatos serve runs it (run_server)
            freeze_startup_heap()
        try:
            yield
        finally:
            # uvicorn may have spent part of the grace waiting for event streams to end
            asked = app.state.stop_requested_at
            spent = 0.0 if asked is None else time.monotonic() - asked
            await tenants.aclose(max(0.0, settings.server.shutdown_grace_s - spent))

    app = FastAPI(title="Automatos", version="0.1.0", lifespan=lifespan, responses=ERRORS)
    app.state.tenants = tenants
    app.state.settings = settings
    app.state.anonymous = anonymous
    app.state.stop_requested_at = None
    app.state.freeze_heap = False  # the process is the caller's, unless run_server runs it
    app.state.loop = None
    app.state.limiter = RateLimiter(settings.server.rate_per_s, settings.server.burst)
    app.add_middleware(BodyLimit, max_bytes=settings.server.max_body_bytes)

    app.add_exception_handler(RequestValidationError, invalid_request)

    @app.exception_handler(AutomatosError)
    async def _typed(_: Request, exc: AutomatosError) -> JSONResponse:
        status = 422 if isinstance(exc, InvalidRequestError) else 503
        headers = {"Retry-After": "5"} if isinstance(exc, ServerStoppingError) else None
        return JSONResponse(
            {"detail": str(exc), "error": type(exc).__name__}, status_code=status, headers=headers
        )

    @app.post(
        "/v1/workflows",
        status_code=202,
        response_model=WorkflowStarted,
        response_description="Started, or found started by its Idempotency-Key: its id, "
        "and where its events are.",
        responses=_STREAMED,
    )
    async def start(
        body: WorkflowIn,
        tenant: Scoped,
        request: Request,
        idempotency_key: Annotated[str | None, Header(min_length=1, max_length=200)] = None,
        last_event_id: Annotated[str | None, Header(description=_RESUME)] = None,
    ) -> WorkflowStarted | StreamingResponse:
        after = _seq(last_event_id)
        limit = settings.plan.max_request_chars
        if len(body.request) > limit:
            raise InvalidRequestError(
                f"the request is {len(body.request)} characters long; the limit is {limit} "
                "(setting plan.max_request_chars)"
            )
        try:
            asked = WorkflowRequest(text=body.request, level=body.level)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        workflow_id, started = tenant.runs.start(asked, idempotency_key)
        if _wants_events(request.headers.get("accept")):
            return await _event_stream(
                tenant,
                workflow_id,
                # a new workflow has no event yet: a Last-Event-ID is another one's, stale
                after if not started else 0,
                request,
                status=201 if started else 200,
                location=f"/v1/workflows/{workflow_id}",
            )
        return WorkflowStarted(
            workflow_id=workflow_id,
            started=started,
            events=f"/v1/workflows/{workflow_id}/events",
        )

    @app.get("/v1/workflows")
    async def list_workflows(
        tenant: Scoped,
        limit: Annotated[int, Query(ge=1, le=1000)] = 20,
        status: RunStatus | None = None,
        cursor: Annotated[str | None, Query(max_length=500)] = None,
    ) -> RunPage:
        return await list_page(tenant.store, limit, status, cursor)

    @app.get("/v1/workflows/{workflow_id}")
    async def get_workflow(workflow_id: WorkflowId, tenant: Scoped) -> dict[str, Any]:
        live = tenant.runs.live(workflow_id)
        if live is not None:
            return _progress(live)
        run = await tenant.store.get_run(workflow_id)
        if run is None or run.id != workflow_id:
            raise HTTPException(404, f"no workflow {workflow_id!r}")
        return hide_server_secrets(run.model_dump(mode="json"))  # type: ignore[no-any-return]

    @app.post("/v1/workflows/{workflow_id}/cancel", status_code=202)
    async def cancel(workflow_id: WorkflowId, tenant: Scoped) -> dict[str, Any]:
        if tenant.runs.cancel(workflow_id):
            return {"workflow_id": workflow_id, "cancelling": True}
        live = tenant.runs.live(workflow_id)
        if live is not None and live.error is not None:
            raise HTTPException(409, f"workflow {workflow_id!r} has ended (failed)")
        if live is not None and live.ended is not None:
            raise HTTPException(409, f"workflow {workflow_id!r} has ended ({live.ended})")
        run = await tenant.store.get_run(workflow_id)
        if run is None or run.id != workflow_id:
            raise HTTPException(404, f"no workflow {workflow_id!r}")
        raise HTTPException(409, f"workflow {workflow_id!r} has ended ({run.status})")

    @app.get("/v1/workflows/{workflow_id}/events")
    async def events(
        workflow_id: WorkflowId,
        tenant: Scoped,
        request: Request,
        last_event_id: Annotated[str | None, Header()] = None,
    ) -> StreamingResponse:
        return await _event_stream(tenant, workflow_id, _seq(last_event_id), request)

    app.include_router(catalog.router)
    app.include_router(page.router)

    @app.get("/metrics", response_class=PlainTextResponse)
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        try:
            async with asyncio.timeout(settings.store.timeout_s):
                await (await tenants.open()).list_runs(1)
        except (TimeoutError, AutomatosError) as exc:
            return JSONResponse({"status": "unavailable", "detail": str(exc)}, status_code=503)
        return JSONResponse({"status": "ready"})

    return app


class WorkflowStarted(BaseModel):
    """The JSON answer to a workflow's POST."""

    workflow_id: str = Field(description="Its id.")
    started: bool = Field(
        description="Started by this request; false when its Idempotency-Key started it before."
    )
    events: str = Field(description="Where its events are (SSE).")


_RESUME = (
    "The last event a client saw (its SSE id): its stream resumes after it. On a POST, only "
    "with Accept: text/event-stream (a retry, with the same Idempotency-Key, of a POST whose "
    "stream broke)."
)
_STREAM_HEADERS = {
    "Location": {"description": "The workflow.", "schema": {"type": "string"}},
}
_STREAMED: dict[int | str, dict[str, Any]] = {
    201: {
        "description": "With `Accept: text/event-stream`: the workflow was started, and this "
        "is its event stream from its first event, as `GET /v1/workflows/{id}/events` sends "
        "it (each event's `seq` as its SSE id); it ends with the workflow.",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
        "headers": _STREAM_HEADERS,
    },
    200: {
        "description": "With `Accept: text/event-stream`: the workflow its Idempotency-Key "
        "started before, and its event stream (from its first event, or after Last-Event-ID).",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
        "headers": _STREAM_HEADERS,
    },
}
"""The streamed answers of ``POST /v1/workflows``, beside its JSON one."""


async def _event_stream(
    tenant: Tenant,
    workflow_id: str,
    after: int,
    request: Request,
    *,
    status: int = 200,
    location: str | None = None,
) -> StreamingResponse:
    """The events of ``workflow_id`` after ``after`` as SSE (404 if there is no such
    workflow): while it runs, from the registry, then from the store."""
    live = tenant.runs.live(workflow_id)
    store = tenant.store
    if live is None:
        run = await store.get_run(workflow_id)
        if run is None or run.id != workflow_id:
            raise HTTPException(404, f"no workflow {workflow_id!r}")
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    if location is not None:
        headers["Location"] = location
    return StreamingResponse(
        _stream(live, store, workflow_id, after, partial(_grace_left, request.app)),
        status_code=status,
        media_type="text/event-stream",
        headers=headers,
    )


def _wants_events(accept: str | None) -> bool:
    """Whether an ``Accept`` header asks for ``text/event-stream`` (at a q above 0): the
    answer is then the stream, whatever else it lists. No header, ``*/*`` or JSON: JSON."""
    if not accept:
        return False
    for media_range in accept.split(","):
        kind, *params = media_range.split(";")
        if kind.strip().lower() != "text/event-stream":
            continue
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    return float(value) > 0
                except ValueError:
                    return False
        return True
    return False


def begin_stop(app: FastAPI) -> None:
    """The server is stopping (SIGTERM): start no workflow, and let event streams follow
    their workflows for the rest of ``server.shutdown_grace_s``. Called in the event loop."""
    if app.state.stop_requested_at is None:
        app.state.stop_requested_at = time.monotonic()
    app.state.tenants.stop_accepting()


def _grace_left(app: FastAPI) -> float | None:
    asked: float | None = app.state.stop_requested_at
    if asked is None:
        return None
    grace: float = app.state.settings.server.shutdown_grace_s
    return grace - (time.monotonic() - asked)


def _seq(header: str | None) -> int:
    if header is None or not header.strip():
        return 0
    try:
        value = int(header.strip())
    except ValueError:
        raise HTTPException(
            422, f"Last-Event-ID must be an event's number, not {header!r}"
        ) from None
    return max(0, value)


def _progress(live: LiveRun) -> dict[str, Any]:
    if live.error is not None:
        return {"id": live.workflow_id, "status": "failed", "events": 0, "error": live.error}
    stages = [e["stage"] for e in live.events if e["kind"] == "stage_finished"]
    finished = [e for e in live.events if e["kind"] == "subtask_finished"]
    return {
        "id": live.workflow_id,
        "status": "running",
        "events": len(live.events),
        "stages_finished": stages,
        "subtasks_finished": len(finished),
    }


def _sse(event: dict[str, Any]) -> str:
    data = json.dumps(event, separators=(",", ":"), default=str)
    return f"id: {event['seq']}\nevent: {event['kind']}\ndata: {data}\n\n"


async def _stream(
    live: LiveRun | None,
    store: SqlStore,
    workflow_id: str,
    after: int,
    closing: Callable[[], float | None],
) -> AsyncIterator[str]:
    """The events after ``after``: from the running workflow while it runs, then (or for a
    finished one) from the store, until ``workflow_finished``; or, while the server stops,
    until its grace is over (``closing()``: the seconds left, none while it serves)."""
    sent = after
    if live is not None:
        while True:
            events = live.events
            if sent < len(events):
                # what came while the last write was waiting goes out in one write
                batch = events[sent : sent + _PAGE]
                sent = batch[-1]["seq"]
                yield "".join(_sse(event) for event in batch)
                continue
            if live.done:
                if live.error is not None:  # it never started: no event, no record
                    yield f"event: error\ndata: {json.dumps(live.error)}\n\n"
                return
            left = closing()
            if left is not None and left <= 0:
                # the server stops: the stream ends cleanly, and its client resumes with
                # Last-Event-ID elsewhere (the rest is in the store)
                return
            await live.changed(HEARTBEAT_S if left is None else min(HEARTBEAT_S, left))
            if not live.done and sent >= len(live.events) and closing() is None:
                yield ": keep-alive\n\n"
    while True:
        page = await store.events_after(workflow_id, sent, _PAGE)
        if page:
            sent = page[-1]["seq"]
            yield "".join(_sse(event) for event in page)
        if len(page) < _PAGE:
            return
