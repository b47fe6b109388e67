"""Settings, read from ``AUTOMATOS_*`` environment variables (nested with ``__``) or passed in.

Nothing reads the environment at import: build a :class:`Settings` where the program starts
(the CLI does) and hand it to :class:`automatos.Engine`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = [
    "ExecutionSettings",
    "LLMSettings",
    "ModelPrice",
    "PlanLimits",
    "QualitySettings",
    "SelectionSettings",
    "Settings",
    "StoreSettings",
]

ProviderName = Literal["openai", "anthropic", "local"]


class ModelPrice(BaseModel):
    """US dollars per million tokens for one model."""

    input_per_mtok: float = Field(ge=0)
    output_per_mtok: float = Field(ge=0)


class LLMSettings(BaseModel):
    """Which model to call, and how patiently."""

    provider: ProviderName | None = None
    """``openai`` (any OpenAI-compatible endpoint), ``anthropic`` or ``local`` (a GGUF file run
    in-process by llama.cpp). Unset: ``openai`` if a base URL or key is set, else ``local``."""
    base_url: str | None = None
    """Endpoint of an OpenAI-compatible server, e.g. ``http://127.0.0.1:11434/v1`` for Ollama."""
    api_key: SecretStr | None = None
    model: str = "gpt-4o-mini"
    """Model used by every stage unless an agent names its own."""
    json_mode: Literal["json_schema", "json_object", "json_object_schema", "prompt"] = "json_schema"
    """How structured output is asked for: ``json_schema`` (OpenAI, vLLM, OpenRouter),
    ``json_object`` (plain JSON mode), ``json_object_schema`` (JSON mode with a ``schema``, as
    llama.cpp servers take it) or ``prompt`` (the prompt alone)."""
    timeout_s: float = Field(default=120.0, gt=0)
    """Timeout of one call, retries not included."""
    max_retries: int = Field(default=4, ge=0)
    """Retries of one call on 429, 5xx and timeouts."""
    backoff_base_s: float = Field(default=0.5, ge=0)
    backoff_max_s: float = Field(default=30.0, ge=0)
    max_tokens: int = Field(default=2048, gt=0)
    model_path: Path | None = None
    """GGUF file for the ``local`` provider; unset means the embedded Gemma 3 270M."""
    local_prompt_style: Literal["auto", "chat", "completion"] = "auto"
    """``chat`` for instruction-tuned models, ``completion`` (few-shot) for base models;
    ``auto`` is ``completion`` for the embedded model and ``chat`` for your own file."""
    local_n_ctx: int = Field(default=4096, gt=0)
    """Context window of the local model, in tokens."""
    local_threads: int | None = Field(default=None, gt=0)
    """CPU threads of the local model; unset lets llama.cpp choose."""
    local_max_tokens: int = Field(default=320, gt=0)
    """Longest answer of the local model, in tokens."""
    prices: dict[str, ModelPrice] = Field(
        default_factory=lambda: {
            "gpt-4o-mini": ModelPrice(input_per_mtok=0.15, output_per_mtok=0.60),
            "gpt-4o": ModelPrice(input_per_mtok=2.50, output_per_mtok=10.0),
            "claude-3-5-haiku-latest": ModelPrice(input_per_mtok=0.80, output_per_mtok=4.0),
            "claude-sonnet-4-5": ModelPrice(input_per_mtok=3.0, output_per_mtok=15.0),
        }
    )
    """Price table by model name; a model missing here is costed at zero."""


class PlanLimits(BaseModel):
    """How plans are asked for, and the bounds on what a decomposer or recipe may ask to run."""

    max_subtasks: int = Field(default=50, gt=0)
    max_depth: int = Field(default=20, gt=0)
    """Longest chain of dependent subtasks, counted in subtasks."""
    max_fanout: int = Field(default=50, gt=0)
    """Most subtasks that may depend directly on one subtask."""
    max_plan_chars: int = Field(default=1_000_000, gt=0)
    """Largest decomposer answer that is parsed at all."""
    max_field_chars: int = Field(default=20_000, gt=0)
    """Longest description or expected output of one subtask."""
    max_request_chars: int = Field(default=100_000, gt=0)
    schema_style: Literal["auto", "open", "numbered"] = "auto"
    """``open``: the decomposer names its subtasks. ``numbered``: ids are ``step_1``, ``step_2``,
    … and a step may depend only on earlier ones, which a grammar-constrained model then
    cannot get wrong (``numbered_min_steps`` to ``numbered_max_steps`` steps). ``auto``:
    numbered for the embedded model."""
    numbered_min_steps: int = Field(default=2, ge=1, le=12)
    numbered_max_steps: int = Field(default=3, ge=1, le=12)


class ExecutionSettings(BaseModel):
    """How subtasks are dispatched."""

    max_concurrency: int = Field(default=8, gt=0)
    """Subtasks running at once across the workflow."""
    subtask_timeout_s: float = Field(default=300.0, gt=0)
    max_attempts: int = Field(default=3, gt=0)
    """Attempts per subtask, the first included."""
    retry_backoff_s: float = Field(default=1.0, ge=0)
    """Longest delay before the first retry of a subtask (jittered down to half of it);
    doubles on each further retry, and gives way to a rate limit's ``Retry-After``."""
    budget_tokens: int | None = Field(default=None, gt=0)
    """Tokens (in and out, every stage) a workflow may spend; unset is no limit."""
    budget_usd: float | None = Field(default=None, gt=0)
    """Dollars a workflow may spend; unset is no limit."""
    max_dependency_chars: int = Field(default=12_000, gt=0)
    """Longest output of one dependency quoted into a subtask's prompt."""
    max_quoted_chars: int = Field(default=48_000, gt=0)
    """Most characters of earlier outputs quoted into one prompt (a subtask's dependencies,
    the final synthesis): short outputs are kept whole, long ones share the rest."""


class SelectionSettings(BaseModel):
    """Stage 2: how agents are chosen."""

    use_llm: bool | None = None
    """Ask the model to assign agents; the score decides otherwise. Unset: ask, unless the
    model is the embedded small one, whose choices would be no better than chance."""
    batch_size: int = Field(default=12, gt=0)
    """Subtasks per selection call: a larger plan is assigned in several calls, made at once,
    so that no answer outgrows the model's output limit (``llm.max_tokens``)."""
    min_confidence: float = Field(default=0.5, ge=0, le=1)
    """Below this confidence the model's choice is replaced by the score's."""
    exploration: float = Field(default=0.15, ge=0)
    """Bonus ``exploration / sqrt(1 + executions)`` added to an agent's score, so that agents
    with few runs get tried before the engine settles on one (explore, then exploit)."""
    jitter: float = Field(default=0.02, ge=0)
    """Random spread added to scores so that equal agents share work and get measured."""
    seed: int | None = None
    """Seed of that spread, for reproducible runs."""
    min_type_executions: int = Field(default=3, ge=0)
    """Executions of a task type before its own metrics replace an agent's overall ones."""


class QualitySettings(BaseModel):
    """Stages 5 and 7: how outputs are scored."""

    enabled: bool = True
    """Off skips stages 5 and 7, as the PRD's Atom level does; agents then learn from
    success, latency and cost alone."""
    weights: dict[str, float] = Field(
        default_factory=lambda: {
            "completeness": 0.3,
            "accuracy": 0.25,
            "efficiency": 0.1,
            "reliability": 0.1,
            "coherence": 0.25,
        }
    )
    """Weights of the five dimensions in Q."""
    gate: float = Field(default=0.6, ge=0, le=1)
    """A workflow whose Q is below this is marked as needing review."""
    judge: Literal["never", "auto", "always"] = "auto"
    """When an LLM judge scores the outputs: ``auto`` for multi-agent plans (three agents or
    more, the Organ level and above) unless the model is the embedded small one; the
    heuristic scorer otherwise."""
    judge_min_agents: int = Field(default=3, ge=1)


def _data_dir() -> Path:
    return Path.home() / ".automatos"


class StoreSettings(BaseModel):
    """Where runs, agents and what was learned are kept."""

    enabled: bool = True
    """Persist every run; off, the engine keeps nothing between runs and learns nothing."""
    url: str | None = None
    """SQLAlchemy URL, e.g. ``postgresql+asyncpg://postgres@127.0.0.1:5432/test``; unset is a
    SQLite file ``automatos.db`` in ``data_dir``."""
    data_dir: Path = Field(default_factory=_data_dir)
    workspace: str = Field(default="default", min_length=1, max_length=64)
    batch_size: int = Field(default=500, gt=0)
    """Results, events and calls written per transaction."""
    flush_interval_s: float = Field(default=0.05, gt=0)
    """Longest a finished subtask's result waits before it is written: a crash loses at most
    what finished in this interval (or one batch)."""


class Settings(BaseSettings):
    """All settings of an engine. ``Settings()`` reads ``AUTOMATOS_*`` variables, e.g.
    ``AUTOMATOS_LLM__PROVIDER=openai`` or ``AUTOMATOS_EXECUTION__MAX_CONCURRENCY=16``."""

    model_config = SettingsConfigDict(
        env_prefix="AUTOMATOS_", env_nested_delimiter="__", extra="ignore"
    )

    llm: LLMSettings = Field(default_factory=LLMSettings)
    plan: PlanLimits = Field(default_factory=PlanLimits)
    execution: ExecutionSettings = Field(default_factory=ExecutionSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    selection: SelectionSettings = Field(default_factory=SelectionSettings)
    quality: QualitySettings = Field(default_factory=QualitySettings)
