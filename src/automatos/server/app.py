"""The FastAPI application: workflows over HTTP, their events as Server-Sent Events.

``create_app(settings)`` builds one :class:`~automatos.engine.Engine` (the same pipeline as
the library and the CLI) and a :class:`~automatos.server.runs.RunRegistry` of the workflows
it runs. Endpoints:

- ``POST /v1/workflows``: start a workflow (``{"request": "..."}``, optionally ``"level"``);
  an ``Idempotency-Key`` header makes a retried POST return the same workflow.
- ``GET /v1/workflows``: the stored runs, newest first (``limit``, ``status``).
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

Not built yet (issue 14): the agents and prompts endpoints, the live page.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel, Field

from automatos.domain.level import Level
from automatos.domain.request import WorkflowRequest
from automatos.errors import AutomatosError, InvalidRequestError
from automatos.llm.base import LLMProvider
from automatos.server.limits import BodyLimit, RateLimiter
from automatos.server.metrics import ServerMetrics
from automatos.server.runs import LiveRun
from automatos.server.tenants import Tenant, Tenants
from automatos.settings import Settings
from automatos.store.sql import SqlStore

__all__ = ["HEARTBEAT_S", "WorkflowIn", "create_app"]

HEARTBEAT_S = 15.0
"""Seconds of silence after which an event stream sends a comment, so proxies keep it open."""
_PAGE = 500
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


class WorkflowIn(BaseModel):
    """A workflow to start."""

    request: str = Field(min_length=1, description="What the workflow should do.")
    level: Level | None = Field(default=None, description="Its level, else the engine's choice.")


async def _tenant(
    request: Request,
    authorization: Annotated[str | None, Header(max_length=500)] = None,
    x_api_key: Annotated[str | None, Header(max_length=500)] = None,
) -> Tenant:
    """The workspace the request's key is for (401 without a valid key, unless anonymous)."""
    tenants: Tenants = request.app.state.tenants
    secret = x_api_key
    if secret is None and authorization is not None:
        scheme, _, value = authorization.partition(" ")
        secret = value.strip() if scheme.lower() == "bearer" else None
    limiter: RateLimiter = request.app.state.limiter
    if secret is None:
        if request.app.state.anonymous:
            _limit(limiter, "anonymous")
            return await tenants.get(request.app.state.settings.store.workspace)
        raise HTTPException(401, "an API key is needed: Authorization: Bearer <key>", _CHALLENGE)
    key = await (await tenants.open()).authenticate(secret)
    if key is None:
        raise HTTPException(401, "the API key is not valid (unknown or revoked)", _CHALLENGE)
    _limit(limiter, key.id)
    return await tenants.for_key(key)


def _limit(limiter: RateLimiter, client: str) -> None:
    wait = limiter.wait_s(client)
    if wait:
        raise HTTPException(
            429,
            "too many requests for this key (settings server.rate_per_s, server.burst)",
            {"Retry-After": RateLimiter.retry_after(wait)},
        )


Scoped = Annotated[Tenant, Depends(_tenant)]
"""An endpoint's workspace, from its key."""


def create_app(
    settings: Settings, *, llm: LLMProvider | None = None, anonymous: bool = False
) -> FastAPI:
    """The application: its workflows run on engines built from ``settings`` (one per
    workspace, sharing the model, by default the one the settings configure, and the
    database). ``anonymous`` serves requests without a key in the settings' workspace."""
    metrics = ServerMetrics()
    tenants = Tenants(settings, llm, metrics)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await tenants.open()
        try:
            yield
        finally:
            await tenants.aclose(settings.execution.cancel_grace_s)

    app = FastAPI(title="Automatos", version="0.1.0", lifespan=lifespan)
    app.state.tenants = tenants
    app.state.settings = settings
    app.state.anonymous = anonymous
    app.state.limiter = RateLimiter(settings.server.rate_per_s, settings.server.burst)
    app.add_middleware(BodyLimit, max_bytes=settings.server.max_body_bytes)

    @app.exception_handler(AutomatosError)
    async def _typed(_: Request, exc: AutomatosError) -> JSONResponse:
        status = 422 if isinstance(exc, InvalidRequestError) else 503
        return JSONResponse({"detail": str(exc), "error": type(exc).__name__}, status_code=status)

    @app.post("/v1/workflows", status_code=202)
    async def start(
        body: WorkflowIn,
        tenant: Scoped,
        idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
    ) -> dict[str, Any]:
        limit = settings.plan.max_request_chars
        if len(body.request) > limit:
            raise HTTPException(
                422, f"the request is {len(body.request)} characters long; the limit is {limit}"
            )
        try:
            request = WorkflowRequest(text=body.request, level=body.level)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        workflow_id, started = tenant.runs.start(request, idempotency_key)
        return {
            "workflow_id": workflow_id,
            "started": started,
            "events": f"/v1/workflows/{workflow_id}/events",
        }

    @app.get("/v1/workflows")
    async def list_workflows(
        tenant: Scoped,
        limit: Annotated[int, Query(ge=1, le=1000)] = 20,
        status: Annotated[str | None, Query(max_length=32)] = None,
    ) -> list[dict[str, Any]]:
        found = await tenant.store.list_runs(limit if status is None else 1000)
        shown = [r.model_dump(mode="json") for r in found if status in (None, r.status)]
        return shown[:limit]

    @app.get("/v1/workflows/{workflow_id}")
    async def get_workflow(workflow_id: str, tenant: Scoped) -> dict[str, Any]:
        live = tenant.runs.live(workflow_id)
        if live is not None:
            return _progress(live)
        run = await tenant.store.get_run(workflow_id)
        if run is None or run.id != workflow_id:
            raise HTTPException(404, f"no workflow {workflow_id!r}")
        return run.model_dump(mode="json")

    @app.post("/v1/workflows/{workflow_id}/cancel", status_code=202)
    async def cancel(workflow_id: str, tenant: Scoped) -> dict[str, Any]:
        if tenant.runs.cancel(workflow_id):
            return {"workflow_id": workflow_id, "cancelling": True}
        run = await tenant.store.get_run(workflow_id)
        if run is None or run.id != workflow_id:
            raise HTTPException(404, f"no workflow {workflow_id!r}")
        raise HTTPException(409, f"workflow {workflow_id!r} has ended ({run.status})")

    @app.get("/v1/workflows/{workflow_id}/events")
    async def events(
        workflow_id: str,
        tenant: Scoped,
        last_event_id: Annotated[str | None, Header()] = None,
    ) -> StreamingResponse:
        after = _seq(last_event_id)
        live = tenant.runs.live(workflow_id)
        store = tenant.store
        if live is None:
            run = await store.get_run(workflow_id)
            if run is None or run.id != workflow_id:
                raise HTTPException(404, f"no workflow {workflow_id!r}")
        return StreamingResponse(
            _stream(live, store, workflow_id, after),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @app.get("/metrics")
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
    live: LiveRun | None, store: SqlStore, workflow_id: str, after: int
) -> AsyncIterator[str]:
    """The events after ``after``: from the running workflow while it runs, then (or for a
    finished one) from the store, until ``workflow_finished``."""
    sent = after
    if live is not None:
        while True:
            for event in live.events[sent:]:
                yield _sse(event)
                sent = event["seq"]
            if live.done and sent >= len(live.events):
                return
            await live.changed(HEARTBEAT_S)
            if not live.done and sent >= len(live.events):
                yield ": keep-alive\n\n"
    while True:
        page = await store.events_after(workflow_id, sent, _PAGE)
        for event in page:
            yield _sse(event)
            sent = event["seq"]
        if len(page) < _PAGE:
            return
