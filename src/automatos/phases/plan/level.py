"""How complex a request is: Atom, Molecule, Cell, Organ or Organism.

The request's own features decide, in microseconds and without a model: how many separate
deliverables it has (:func:`~automatos.phases.plan.shape.shape_of`), the work its verbs ask
for, and its length. A capable model may be asked instead (``plan.level_classifier =
"model"``), with the features' answer as its hint; a caller may set the level outright.
"""

from __future__ import annotations

import asyncio
import math

from pydantic import BaseModel, ConfigDict, field_validator

from automatos.domain.level import Level, LevelChoice
from automatos.errors import LLMError
from automatos.llm.base import Message
from automatos.llm.structured import complete_structured, pydantic_parser, schema_of
from automatos.phases.plan.shape import RequestShape, shape_of
from automatos.phases.state import WorkflowState

__all__ = ["HEAVY_VERBS", "LIGHT_VERBS", "by_features", "choose_level"]

HEAVY_VERBS = frozenset(
    {
        "analyse",
        "analyze",
        "audit",
        "build",
        "compare",
        "debug",
        "design",
        "evaluate",
        "implement",
        "investigate",
        "optimise",
        "optimize",
        "plan",
        "refactor",
        "research",
        "review",
    }
)
"""Work that needs several passes of thought and memory of what was found: a Cell at least."""

LIGHT_VERBS = frozenset(
    {
        "create",
        "describe",
        "draft",
        "explain",
        "list",
        "outline",
        "rewrite",
        "summarise",
        "summarize",
        "translate",
        "write",
    }
)
"""Work a model does in one go, better for examples and context: a Molecule at least."""

_SHARE_OF_TIME = 0.25
"""Of the time left to the workflow's deadline, what the classification may take at most:
the rest is for the work."""
_ANSWER_TOKENS = 80
"""The longest classification answer: a level and a reason of a few words."""

ORGANISM_PARTS = 6
"""Deliverables from which a request is enterprise-sized."""
ORGANISM_WORDS = 400
CELL_WORDS = 80
"""Words from which a single deliverable is substantial work."""
ATOM_WORDS = 15
"""Words up to which a request without work verbs is a simple task."""
_CLASSIFIED_CHARS = 8_000
"""What the features are read from: the start of a longer request says enough (and reading
it stays within a few milliseconds on the event loop)."""
_CHARS_A_WORD = 6
"""Characters of an average English word with its space: text without spaces (Chinese,
Japanese, a pasted blob) is measured by its length instead."""


def by_features(text: str, *, recipe_steps: int | None = None) -> LevelChoice:
    """The level the request's own features give, with the reasons.

    ``recipe_steps``, for a recipe, is its number of subtasks: they are its deliverables.
    """
    shape = shape_of(text[:_CLASSIFIED_CHARS])
    parts = len(shape.parts) if recipe_steps is None else recipe_steps
    reasons = [_parts_reason(shape, recipe_steps)]
    # Chinese, Japanese and Korean write a word in one to three characters, without spaces.
    dense = sum(
        1
        for ch in text[:_CLASSIFIED_CHARS]
        if "\u3040" <= ch <= "\u9fff" or "\uac00" <= ch <= "\ud7af"
    )
    words = max(shape.words, len(text) // _CHARS_A_WORD, dense // 2)
    heavy = sorted(shape.verbs & HEAVY_VERBS)
    light = sorted(shape.verbs & LIGHT_VERBS)
    if parts >= 2:
        if parts >= ORGANISM_PARTS or words >= ORGANISM_WORDS:
            reasons.append(
                f"{parts} deliverables and {words} words: enterprise-sized"
                if words >= ORGANISM_WORDS
                else f"{parts} deliverables ({ORGANISM_PARTS} or more: enterprise-sized)"
            )
            level = Level.ORGANISM
        else:
            team = "run" if recipe_steps is not None else "planned and run"
            reasons.append(f"several deliverables: {team} by a team of agents")
            level = Level.ORGAN
    elif heavy or words > CELL_WORDS:
        reasons.append(
            f"work verb{'s' if len(heavy) > 1 else ''} {', '.join(heavy)}"
            if heavy
            else f"{words} words (over {CELL_WORDS})"
        )
        level = Level.CELL
    elif light or words > ATOM_WORDS:
        reasons.append(
            f"verb{'s' if len(light) > 1 else ''} {', '.join(light)}: written in one go"
            if light
            else f"{words} words (over {ATOM_WORDS})"
        )
        level = Level.MOLECULE
    else:
        reasons.append(f"a direct question of {_words(words)}" if shape.question else _words(words))
        reasons.append("no work verb: one model call")
        level = Level.ATOM
    return LevelChoice(level=level, source="features", reasons=tuple(reasons))


def _words(n: int) -> str:
    return f"{n} word{'s' if n != 1 else ''}"


def _features_decided(features: LevelChoice, why: str) -> LevelChoice:
    note = f"{why}: the features decided"
    return features.model_copy(update={"reasons": (*features.reasons, note)})


def _parts_reason(shape: RequestShape, recipe_steps: int | None) -> str:
    if recipe_steps is not None:
        return f"a recipe of {recipe_steps} subtask{'s' if recipe_steps != 1 else ''}"
    parts = shape.parts
    if len(parts) == 1:
        return "one deliverable"
    shown = "; ".join(_short(p.text) for p in parts[:4]) + ("; …" if len(parts) > 4 else "")
    return f"{len(parts)} deliverables: {shown}"


def _short(text: str, limit: int = 40) -> str:
    if len(text) <= limit:
        return text
    lead, _, item = text.rpartition(": ")
    if lead and item:  # a listed item under its lead-in: the item tells the steps apart
        text = item
        if len(text) <= limit:
            return text
    cut = text[:limit].rsplit(" ", 1)[0] or text[:limit]
    return cut + "…"


class _Answer(BaseModel):
    model_config = ConfigDict(extra="ignore")

    level: Level
    reason: str = ""

    @field_validator("level", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value


_PROMPT = """\
You sort requests to a team of AI agents by how much work they need.
atom: a simple task, one short answer (a fact, a sum, a definition).
molecule: one piece of writing or explanation, done in one go.
cell: one substantial task that needs research, analysis or design.
organ: several separate deliverables, for several agents.
organism: a large multi-part project.
Answer with JSON: {"level": "...", "reason": "..."} (a reason of a few words)."""


async def choose_level(state: WorkflowState) -> LevelChoice:
    """The workflow's level: the caller's, else the features' (or the model's, when
    ``plan.level_classifier`` is ``model`` and the model's profile says it classifies)."""
    request = state.request
    if request.level is not None:
        return LevelChoice(level=request.level, source="caller", reasons=("set by the caller",))
    fixed = state.runtime.settings.plan.level
    if fixed is not None:
        return LevelChoice(level=fixed, source="settings", reasons=("setting plan.level",))
    steps = len(request.subtasks) if request.subtasks is not None else None
    features = by_features(request.text, recipe_steps=steps)
    runtime = state.runtime
    if runtime.settings.plan.level_classifier != "model" or steps is not None:
        return features
    if not runtime.profile.classifies:
        return _features_decided(features, "the model is too small to classify (its profile)")
    return await _ask_model(state, features)


async def _ask_model(state: WorkflowState, features: LevelChoice) -> LevelChoice:
    hint = f"The request's features suggest {features.level.value}: {'; '.join(features.reasons)}."
    messages = [
        Message("system", _PROMPT),
        Message("user", f"Request:\n{state.request.text[:_CLASSIFIED_CHARS]}\n\n{hint}"),
    ]
    count = state.runtime.profile.count_tokens
    refusal = state.call_refusal(sum(count(m.content) for m in messages) + _ANSWER_TOKENS)
    if refusal is not None:  # the budget is for the work, not for sorting it
        return _features_decided(
            features, f"the budget leaves no room to ask the model ({refusal})"
        )
    left = state.time_left() * _SHARE_OF_TIME
    try:
        async with asyncio.timeout(None if math.isinf(left) else left):
            answer = await complete_structured(
                state.runtime.llm,
                messages,
                pydantic_parser(_Answer),
                json_schema=schema_of(_Answer),
                temperature=0.0,
                max_tokens=_ANSWER_TOKENS,
                on_call=lambda done: state.record_call("classify", done),
            )
    except TimeoutError:
        return _features_decided(features, "the deadline passed while the model classified")
    except LLMError as exc:
        return _features_decided(
            features, f"the model's classification failed ({type(exc).__name__})"
        )
    reason = answer.value.reason.strip()[:200] or "no reason given"
    return LevelChoice(
        level=answer.value.level,
        source="model",
        reasons=(f"the model: {reason}", f"features: {features.level.value}"),
    )
