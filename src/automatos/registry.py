"""The agent registry: agents defined in YAML, kept in the store with what was learned.

A workspace starts with the starter team (``automatos/data/agents.yaml``) the first time it is
used; ``automatos agents add`` and ``automatos agents import FILE`` add or replace agents.
A run never does: the agents a request defines for itself (a recipe's ``agents:``) serve that
run only, and learning keeps metrics for registered agents alone, so the candidates of every
later run are the ones registered here.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from automatos.domain.agent import AgentSpec
from automatos.errors import InvalidRequestError
from automatos.files import parse_data, read_user_file
from automatos.llm.structured import describe_fields
from automatos.store.base import Store

__all__ = ["load_agents", "parse_agents", "registered_agents", "starter_agents"]

_MAX_BYTES = 1_000_000


def parse_agents(text: str, *, source: str = "agents") -> list[AgentSpec]:
    """Agents from YAML: a list, or a mapping with an ``agents`` list.

    Each agent is an :class:`~automatos.domain.agent.AgentSpec`'s fields, ``tools:`` (the
    names of the tools it may call, ``mcp:SERVER`` for all of a server's) and
    ``mcp_servers:`` (servers of its own: ``name`` and either ``command``, with ``env`` and
    ``cwd``, or ``url``, with ``headers``) among them.

    Raises:
        InvalidRequestError: not YAML, or an agent of the wrong shape (named in the message).
    """
    data: Any = parse_data(text, source=source)
    if isinstance(data, dict):
        data = data.get("agents")
    if not isinstance(data, list) or not data:
        raise InvalidRequestError(f"{source} must hold a non-empty list of agents")
    specs = []
    for i, item in enumerate(data):
        try:
            specs.append(AgentSpec.model_validate(item))
        except ValidationError as exc:
            name = item.get("name") if isinstance(item, dict) else None
            which = f"agent {i + 1}" + (f" ({name!r})" if isinstance(name, str) else "")
            raise InvalidRequestError(
                f"{source}: {which} is not valid: {describe_fields(exc)}"
            ) from exc
    names = [s.name for s in specs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InvalidRequestError(f"{source} names agents twice: {', '.join(dupes)}")
    return specs


def load_agents(path: str | Path) -> list[AgentSpec]:
    """Agents from a YAML file."""
    text = read_user_file(path, _MAX_BYTES)
    return parse_agents(text, source=str(path))


def starter_agents() -> list[AgentSpec]:
    """The starter team shipped with the package."""
    text = files("automatos").joinpath("data", "agents.yaml").read_text(encoding="utf-8")
    return parse_agents(text, source="starter agents")


async def registered_agents(store: Store) -> list[AgentSpec]:
    """The workspace's agents; an empty workspace gets the starter team first."""
    agents = await store.agents()
    if not agents:  # in one transaction, so that a run starting meanwhile sees all or none
        await store.save_agents(starter_agents())
        agents = await store.agents()
    return agents
