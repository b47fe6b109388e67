"""Agents and the assignment of agents to subtasks."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from automatos.domain.tools import MCP_PREFIX, SERVER_NAME, MCPServerConfig, check_tool_name
from automatos.errors import ConfigurationError

__all__ = ["DEFAULT_AGENT", "MCP_PREFIX", "AgentMetrics", "AgentSpec", "Assignment"]

MAX_CAPABILITIES = 100
MAX_TOOLS = 256
"""More than a model can choose among well, and every one of them goes to it with each call."""
MAX_MCP_SERVERS = 32


class AgentSpec(BaseModel):
    """An agent: a system prompt and model settings under a name."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=128)
    description: str = ""
    capabilities: tuple[str, ...] = Field(default=(), max_length=MAX_CAPABILITIES)
    model: str | None = None
    """Model to call; ``None`` uses the engine's configured model."""
    system_prompt: str = "You are a careful, capable assistant."
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, gt=0)
    cost_hint_usd: float | None = Field(default=None, ge=0)
    """Expected dollars per subtask, used for cost efficiency until runs have been measured."""
    tools: tuple[str, ...] = Field(default=(), max_length=MAX_TOOLS)
    """The tools the agent may call, and no others: a registered tool's name
    (``calculator``, an MCP server's ``SERVER__TOOL``), or ``mcp:SERVER`` for every tool of
    the MCP server ``SERVER`` (the agent's own, or its workspace's). Empty: the agent answers
    without tools."""
    mcp_servers: tuple[MCPServerConfig, ...] = Field(default=(), max_length=MAX_MCP_SERVERS)
    """MCP servers of this agent alone; its ``tools`` name what it may call of them."""

    @field_validator("tools")
    @classmethod
    def _tool_names(cls, tools: tuple[str, ...]) -> tuple[str, ...]:
        """Each entry a tool's name or ``mcp:SERVER``, each once."""
        for entry in tools:
            if entry.startswith(MCP_PREFIX):
                server = entry.removeprefix(MCP_PREFIX)
                if not SERVER_NAME.fullmatch(server) or "__" in server:
                    raise ValueError(
                        f"{entry[:80]!r} does not name an MCP server: {MCP_PREFIX}NAME, where a "
                        "server's name is 1 to 32 letters, digits, '_' or '-' (no '__')"
                    )
                continue
            try:
                check_tool_name(entry)
            except ConfigurationError as exc:  # a ValueError names the entry's field
                raise ValueError(f"{exc} (or {MCP_PREFIX}SERVER: an MCP server's tools)") from None
        twice = _twice(tools)
        if twice:
            raise ValueError(f"tools named twice: {', '.join(twice)}")
        return tools

    @field_validator("mcp_servers")
    @classmethod
    def _one_server_per_name(
        cls, servers: tuple[MCPServerConfig, ...]
    ) -> tuple[MCPServerConfig, ...]:
        twice = _twice(server.name for server in servers)
        if twice:
            raise ValueError(f"servers named twice: {', '.join(twice)}")
        return servers

    def shown(self) -> dict[str, Any]:
        """The agent as JSON fit to show (the CLI, the HTTP API): its MCP servers'
        environments and headers hidden (:meth:`MCPServerConfig.shown`)."""
        data = self.model_dump(mode="json")
        data["mcp_servers"] = [server.shown() for server in self.mcp_servers]
        return data


def _twice(names: Iterable[str]) -> list[str]:
    """The names given more than once, sorted (in one pass: a request may bring thousands)."""
    listed = list(names)
    if len(set(listed)) == len(listed):  # the usual case, without counting (a worker validates
        return []  # the agent of every job it takes)
    return sorted(name for name, count in Counter(listed).items() if count > 1)


@dataclass(slots=True)
class Assignment:
    """Which agent runs a subtask, and why."""

    subtask_id: str
    agent: str
    reason: str = ""


@dataclass(slots=True)
class AgentMetrics:
    """What was learned about an agent, overall or for one task type (stage 6 writes it)."""

    success_rate: float = 0.5
    """Exponential moving average of success (1) and failure (0); starts undecided."""
    avg_quality: float = 0.5
    avg_latency_s: float = 0.0
    avg_cost_usd: float = 0.0
    total_executions: int = 0


DEFAULT_AGENT = AgentSpec(
    name="generalist",
    description="A general-purpose agent for research, analysis and writing.",
    capabilities=("research", "analysis", "writing"),
    system_prompt=(
        "You are a careful, capable assistant working on one step of a larger task. "
        "Do exactly the step you are given, use the results of earlier steps when they "
        "are provided, and answer with the result itself."
    ),
)
