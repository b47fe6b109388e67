"""What a person asks the engine to do."""

from __future__ import annotations

import re
import uuid
from collections import Counter

from pydantic import BaseModel, ConfigDict, Field, field_validator

from automatos.domain.agent import AgentSpec
from automatos.domain.level import Level
from automatos.domain.plan import SubtaskSpec
from automatos.errors import InvalidRequestError

__all__ = ["WorkflowRequest", "check_request_text"]


_UNSTORABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


def _new_id() -> str:
    return uuid.uuid4().hex


def check_request_text(text: str) -> str:
    """``text`` if it can be a request: it has at least one letter or digit.

    A request of blanks, punctuation or emoji alone gives the planner nothing to plan, and a
    model asked anyway invents a task.

    Raises:
        InvalidRequestError: ``text`` has no letter or digit, or has a control character
            other than a tab or a line break, or a lone surrogate (neither can be stored:
            PostgreSQL refuses a NUL, UTF-8 a surrogate).
    """
    odd = _UNSTORABLE.search(text)
    if odd is not None:
        raise InvalidRequestError(
            f"the request has the character {odd.group()!r} at position {odd.start()}: "
            "control characters (other than tabs and line breaks) cannot be stored"
        )
    if not any(ch.isalnum() for ch in text):
        shown = repr(text[:40]) + ("…" if len(text) > 40 else "")
        raise InvalidRequestError(
            f"the request {shown} has no letters or digits: say what to do, in words"
        )
    return text


class WorkflowRequest(BaseModel):
    """A request; with ``subtasks`` it is a recipe and skips decomposition.

    Raises:
        InvalidRequestError: ``text`` has no letter or digit (``"!!!"``, ``"   "``).
        pydantic.ValidationError: another field is malformed (an empty ``text`` included).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    text: str = Field(min_length=1)
    subtasks: tuple[SubtaskSpec, ...] | None = None
    agents: tuple[AgentSpec, ...] = ()
    """Agents available to this workflow, in addition to the default one."""
    workflow_id: str = Field(default_factory=_new_id, min_length=1, max_length=64)
    budget_tokens: int | None = Field(default=None, gt=0)
    """This workflow's token budget; unset uses ``execution.budget_tokens``."""
    budget_usd: float | None = Field(default=None, gt=0)
    """This workflow's dollar budget; unset uses ``execution.budget_usd``."""
    level: Level | None = None
    """The complexity level to run at (``atom`` … ``organism``); unset, the engine
    classifies the request."""

    @field_validator("text")
    @classmethod
    def _has_words(cls, text: str) -> str:
        # InvalidRequestError is not a ValueError, so pydantic lets it through as it is: the
        # library's callers get the engine's own error and message, not a validation report.
        return check_request_text(text)

    @field_validator("agents")
    @classmethod
    def _one_agent_per_name(cls, agents: tuple[AgentSpec, ...]) -> tuple[AgentSpec, ...]:
        """Two agents of one name: which one a subtask naming it gets would be a guess."""
        counts = Counter(agent.name for agent in agents)
        twice = sorted(name for name, count in counts.items() if count > 1)
        if twice:
            raise ValueError(f"agents named twice: {', '.join(twice)}")
        return agents

    @property
    def is_recipe(self) -> bool:
        """Whether the request carries its own plan."""
        return self.subtasks is not None
