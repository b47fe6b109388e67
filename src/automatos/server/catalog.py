"""``/v1/agents`` and ``/v1/prompts``: the workspace's agent registry with what was learned
about each agent, and its prompt registry. The same semantics as ``automatos agents`` and
``automatos prompts``.

- ``GET /v1/agents``: every agent (a workspace never used gets the starter team, as its first
  workflow would) with its learned metrics: ``overall`` and per task type.
- ``GET /v1/agents/{name}``: one agent, with its ``history``: the score of each subtask it
  ran in the newest runs, oldest first.
- ``POST /v1/agents``: register an agent (201; 409 if the name is taken).
- ``PUT /v1/agents/{name}``: replace an agent's definition (404 if there is none; the body's
  ``name`` must be the path's: an agent is not renamed). What was learned about it stays.
- ``GET /v1/prompts``: each stage's prompt with its active version and running A/B test.
- ``GET /v1/prompts/{slug}``: its versions, the active one and its A/B tests.

A workspace's agents and prompts are its own: another workspace's answer 404.
"""

from __future__ import annotations

import asyncio
import math
import re
from typing import Annotated, Any
from urllib.parse import quote
from weakref import WeakKeyDictionary

from fastapi import APIRouter, HTTPException, Path, Query, Response
from pydantic import BaseModel, Field, field_serializer, field_validator

from automatos.domain.agent import AgentMetrics, AgentSpec
from automatos.domain.tools import MCPServerConfig
from automatos.prompts.base import AbTest, PromptVersion
from automatos.prompts.catalog import CATALOG
from automatos.registry import registered_agents
from automatos.server.auth import Scoped
from automatos.server.history import AgentHistory, HistoryPoint
from automatos.server.tenants import Tenant
from automatos.store.base import OVERALL
from automatos.store.sql import SqlStore

__all__ = ["AgentDetail", "AgentIn", "AgentOut", "PromptDetail", "PromptOut", "router"]

router = APIRouter()

_PRINTABLE = r"^[^\x00-\x1f\x7f]+$"
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
"""Control characters other than tabs and line breaks (which a prompt may hold)."""
"""No control characters: a name is shown in lists and paths (and PostgreSQL refuses NUL)."""
AgentName = Annotated[
    str, Path(min_length=1, max_length=128, pattern=_PRINTABLE, description="The agent's name.")
]
Slug = Annotated[str, Path(max_length=64, description="The prompt's slug.")]


class AgentIn(AgentSpec):
    """An agent as a request defines it: :class:`AgentSpec`, its name without control
    characters."""

    name: str = Field(min_length=1, max_length=128, pattern=_PRINTABLE)

    @field_validator("name", "description", "capabilities", "model", "system_prompt")
    @classmethod
    def _utf8(cls, value: str | tuple[str, ...] | None) -> str | tuple[str, ...] | None:
        """Refuse what JSON can carry and UTF-8 cannot: a lone surrogate (``"\\ud800"``),
        which no store keeps and no model can be sent."""
        for text in (value,) if isinstance(value, str) else value or ():
            try:
                text.encode("utf-8")
            except UnicodeEncodeError as exc:
                where = f"U+{ord(text[exc.start]):04X} at character {exc.start}"
                raise ValueError(f"not UTF-8 text (the lone surrogate {where})") from None
            odd = _CONTROL.search(text)
            if odd is not None:  # PostgreSQL refuses a NUL; none is any use in a prompt
                where = f"U+{ord(odd.group()):04X} at character {odd.start()}"
                raise ValueError(f"a control character ({where})")
        return value

    @field_validator("mcp_servers")
    @classmethod
    def _no_commands(cls, servers: tuple[MCPServerConfig, ...]) -> tuple[MCPServerConfig, ...]:
        """A command server is a program the engine's host runs: an API key must not make
        the server run one. The operator adds those (``automatos mcp add``); agents made over
        HTTP name them (``mcp:NAME``), or bring servers reached by URL where the server allows
        it (:func:`_urls_allowed`)."""
        for server in servers:
            if server.command is not None:
                raise ValueError(
                    f"MCP server {server.name!r} runs a command, which an agent made over HTTP "
                    "may not bring: add it on the host (automatos mcp add NAME -- COMMAND) and "
                    f"name it in tools as mcp:{server.name}, or give a url"
                )
        return servers

    @field_validator("name")
    @classmethod
    def _not_a_path_step(cls, name: str) -> str:
        """``.`` and ``..`` would name the agents collection or its parent in a URL."""
        if name.strip(".") == "":
            raise ValueError("an agent's name cannot be only dots")
        return name

    @field_validator("cost_hint_usd", "temperature")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value


class AgentOut(BaseModel):
    """An agent and what was learned about it."""

    name: str
    spec: AgentSpec
    """Shown with its MCP servers' environment and header values hidden (``***``)."""
    metrics: dict[str, AgentMetrics] = Field(
        description="By task type; `overall` over every task. Empty before its first run."
    )

    @field_serializer("spec")
    def _hidden(self, spec: AgentSpec) -> dict[str, Any]:
        return spec.shown()


class AgentDetail(AgentOut):
    """An agent, what was learned about it, and the scores it was learned from."""

    history: list[HistoryPoint] = Field(
        description="The score of each subtask it ran in the workspace's newest 200 runs, "
        "oldest first."
    )


class PromptOut(BaseModel):
    """A stage's prompt in the registry."""

    slug: str
    stage: str
    purpose: str
    active: int = Field(description="The version every workflow uses (but an A/B test's share).")
    versions: int = Field(description="How many versions there are.")
    test: AbTest | None = Field(description="Its running A/B test, if any.")


class PromptDetail(BaseModel):
    """A stage's prompt with every version and every A/B test."""

    slug: str
    stage: str
    purpose: str
    fields: list[str] = Field(description="The placeholders a version may use.")
    active: int
    versions: list[PromptVersion] = Field(description="Oldest first.")
    tests: list[AbTest] = Field(description="Newest first, ended ones too.")


class _Workspace:
    """What the catalog keeps per workspace: its scored runs, and one registry write at a
    time, so that of two creations of one name at once, one gets 409 (in one process: of two
    servers on one database, both may answer 201, the later definition kept)."""

    def __init__(self) -> None:
        self.history = AgentHistory()
        self.writing = asyncio.Lock()


_WORKSPACES: WeakKeyDictionary[SqlStore, _Workspace] = WeakKeyDictionary()


def _workspace(store: SqlStore) -> _Workspace:
    found = _WORKSPACES.get(store)
    if found is None:
        found = _WORKSPACES[store] = _Workspace()
    return found


def _metrics(learned: dict[str, AgentMetrics]) -> dict[str, AgentMetrics]:
    return {("overall" if kind == OVERALL else kind): m for kind, m in sorted(learned.items())}


def _spec(body: AgentIn) -> AgentSpec:
    return AgentSpec.model_validate(body.model_dump())


async def _find(store: SqlStore, name: str) -> AgentSpec | None:
    return next((a for a in await registered_agents(store) if a.name == name), None)


@router.get("/v1/agents")
async def list_agents(
    tenant: Scoped,
    history: Annotated[
        bool, Query(description="With each agent's `history`, as GET /v1/agents/{name} has it.")
    ] = False,
) -> list[AgentDetail] | list[AgentOut]:
    """Every agent of the workspace, by name, with what was learned about it (and, with
    ``history=true``, its scores over the newest runs: one request for a whole page)."""
    store = tenant.store
    agents, learned = await asyncio.gather(registered_agents(store), store.agent_metrics())
    if not history:
        return [
            AgentOut(name=a.name, spec=a, metrics=_metrics(learned.get(a.name, {}))) for a in agents
        ]
    scores = _workspace(store).history
    return [
        AgentDetail(
            name=a.name,
            spec=a,
            metrics=_metrics(learned.get(a.name, {})),
            history=await scores.of(store, a.name),
        )
        for a in agents
    ]


@router.get("/v1/agents/{name:path}")
async def get_agent(name: AgentName, tenant: Scoped) -> AgentDetail:
    """One agent, what was learned about it, and its scores over the newest runs."""
    store = tenant.store
    agent = await _find(store, name)
    if agent is None:
        raise HTTPException(404, f"no agent {name!r}")
    learned = (await store.agent_metrics()).get(name, {})
    history = await _workspace(store).history.of(store, name)
    return AgentDetail(name=name, spec=agent, metrics=_metrics(learned), history=history)


@router.post("/v1/agents", status_code=201)
async def create_agent(spec: AgentIn, tenant: Scoped, response: Response) -> AgentOut:
    """Register a new agent (409 if the workspace has one of that name: PUT replaces)."""
    _urls_allowed(spec, tenant)
    store, agent = tenant.store, _spec(spec)
    async with _workspace(store).writing:
        if await _find(store, agent.name) is not None:
            raise HTTPException(
                409, f"agent {agent.name!r} exists: PUT /v1/agents/{agent.name} replaces it"
            )
        await store.save_agent(agent)
    response.headers["Location"] = f"/v1/agents/{quote(agent.name, safe='')}"
    return AgentOut(name=agent.name, spec=agent, metrics={})


def _urls_allowed(spec: AgentIn, tenant: Tenant) -> None:
    """Refuse an MCP server reached by URL unless ``server.agent_mcp_urls``: the engine's host
    would connect to it from inside its network (a database, a cloud's metadata address)."""
    if tenant.engine.settings.server.agent_mcp_urls:
        return
    for server in spec.mcp_servers:
        if server.url is not None:
            raise HTTPException(
                422,
                f"mcp_servers: MCP server {server.name!r} is reached by URL, which an agent made "
                "over HTTP may not bring on this server (setting server.agent_mcp_urls): add it "
                f"on the host (automatos mcp add {server.name} --url URL) and name it in tools "
                f"as mcp:{server.name}",
            )


@router.put("/v1/agents/{name:path}")
async def update_agent(name: AgentName, spec: AgentIn, tenant: Scoped) -> AgentOut:
    """Replace an agent's definition; what was learned about it stays."""
    if spec.name != name:
        raise HTTPException(
            422, f"the body names agent {spec.name!r}, the path {name!r}: agents are not renamed"
        )
    _urls_allowed(spec, tenant)
    store, agent = tenant.store, _spec(spec)
    async with _workspace(store).writing:
        if await _find(store, name) is None:
            raise HTTPException(404, f"no agent {name!r}: POST /v1/agents creates one")
        await store.save_agent(agent)
    learned = (await store.agent_metrics()).get(name, {})
    return AgentOut(name=name, spec=agent, metrics=_metrics(learned))


@router.get("/v1/prompts")
async def list_prompts(tenant: Scoped) -> list[PromptOut]:
    """Each stage's prompt: its active version, how many versions, its running test."""
    store = tenant.store
    state = await store.prompt_state({slug: spec.text for slug, spec in CATALOG.items()})
    tests = {test.slug: test for test in state.tests}
    counts = await asyncio.gather(*(store.prompt_versions(slug) for slug in CATALOG))
    return [
        PromptOut(
            slug=slug,
            stage=spec.stage,
            purpose=spec.purpose,
            active=state.active[slug].version,
            versions=len(versions),
            test=tests.get(slug),
        )
        for (slug, spec), versions in zip(CATALOG.items(), counts, strict=True)
    ]


@router.get("/v1/prompts/{slug}")
async def get_prompt(slug: Slug, tenant: Scoped) -> PromptDetail:
    """A stage's prompt: every version (the active one marked) and every A/B test."""
    spec = CATALOG.get(slug)
    if spec is None:
        raise HTTPException(404, f"no prompt {slug!r}; the slugs are {', '.join(CATALOG)}")
    store = tenant.store
    state = await store.prompt_state({s: p.text for s, p in CATALOG.items()})
    versions, tests = await asyncio.gather(store.prompt_versions(slug), store.ab_tests(slug))
    return PromptDetail(
        slug=slug,
        stage=spec.stage,
        purpose=spec.purpose,
        fields=sorted(spec.fields),
        active=state.active[slug].version,
        versions=versions,
        tests=tests,
    )
