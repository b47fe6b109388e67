"""Plans built from the request's own structure, for a model too small to plan.

Each deliverable the request names (:func:`~automatos.phases.plan.shape.shape_of`) becomes a
step worded in the request's own words; a step depends on exactly the steps whose results
it uses, so deliverables that do not use each other share the first layer and run in
parallel. No model is called: the small model's rewordings added nothing the request's
words did not say and took seconds a plan (see :mod:`automatos.phases.plan.decompose`).

A request with one deliverable that weighs several named things ("Compare PostgreSQL, Redis
and SQLite") gets one fact-finding step per thing, in parallel, before the request itself.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from automatos.domain.plan import Plan, SubtaskSpec
from automatos.errors import PlanLimitError
from automatos.graph import build_plan
from automatos.phases.plan.context_need import needs_context
from automatos.phases.plan.lexicon import AGGREGATE_VERBS, DETERMINERS, PREPOSITIONS
from automatos.phases.plan.shape import RequestShape
from automatos.settings import PlanLimits

__all__ = ["ITEM_STEP", "Step", "plan_from_shape", "steps_of"]

ITEM_STEP = "Key facts about {item}"
"""The wording of a fact-finding step for one named thing: the only words of a structured
plan that are not the request's own."""

_MAX_ITEM_STEPS = 8
_ID_WORDS = 3
_ID_STOP = (
    DETERMINERS
    | PREPOSITIONS
    | frozenset(ITEM_STEP.format(item="").lower().split())
    | frozenset("and or then it them me us our my your its their is are do does i you".split())
)
"""Words an id leaves out: "Find the flights from London" is ``find_flights_london``."""


@dataclass(frozen=True, slots=True)
class Step:
    """One step of a structured plan: what to do and the steps (by index) it uses."""

    description: str
    uses: tuple[int, ...] = ()


def steps_of(shape: RequestShape) -> list[Step]:
    """The steps of ``shape``: one per deliverable, or per weighed item then the request."""
    parts = shape.parts
    if len(parts) >= 2:
        return [Step(p.text, p.uses) for p in parts]
    part = parts[0]
    weighs = part.question or part.verb in AGGREGATE_VERBS
    if weighs and 2 <= len(shape.items) <= _MAX_ITEM_STEPS:
        facts = [Step(ITEM_STEP.format(item=item)) for item in shape.items]
        return [*facts, Step(part.text, tuple(range(len(facts))))]
    return [Step(part.text)]


def plan_from_shape(shape: RequestShape, limits: PlanLimits) -> Plan:
    """The checked plan of ``shape``'s steps, merged where they exceed ``limits``.

    Raises:
        PlanError: only if even a one-step plan breaks a limit (a request longer than
            ``plan.max_field_chars`` is cut at a word, so none does).
    """
    steps = steps_of(shape)
    groups = min(len(steps), limits.max_subtasks)
    while True:
        try:
            return build_plan(_specs(_merged(steps, groups), limits), limits)
        except PlanLimitError:  # too deep or too wide: fewer, larger steps
            if groups == 1:
                raise
            groups //= 2


def _merged(steps: Sequence[Step], groups: int) -> list[Step]:
    """``steps`` as at most ``groups`` steps: runs of consecutive steps joined, their uses
    joined (a step never uses its own run, so the plan stays acyclic)."""
    if groups >= len(steps):
        return list(steps)
    size = -(-len(steps) // groups)
    run_of = [i // size for i in range(len(steps))]
    merged: list[Step] = []
    for run in range(run_of[-1] + 1):
        members = [i for i in range(len(steps)) if run_of[i] == run]
        uses = sorted({run_of[u] for i in members for u in steps[i].uses} - {run})
        text = "; ".join(steps[i].description for i in members)
        merged.append(Step(text, tuple(uses)))
    return merged


def _specs(steps: Sequence[Step], limits: PlanLimits) -> list[SubtaskSpec]:
    ids = _ids([s.description for s in steps])
    return [
        SubtaskSpec(
            id=ids[i],
            description=_clip(step.description, limits.max_field_chars),
            depends_on=tuple(ids[u] for u in step.uses),
            requires_context=needs_context(step.description, bool(step.uses)),
            complexity=3 if len(step.uses) > 1 else 2,
        )
        for i, step in enumerate(steps)
    ]


def _ids(descriptions: Sequence[str]) -> list[str]:
    """Short snake_case ids from each description's first content words ("find_flights_
    london"), unique, ``step_n`` for a description without a latin letter or digit."""
    ids: list[str] = []
    seen: set[str] = set()
    leads = Counter(text.rsplit(": ", 1)[0] for text in descriptions if ": " in text)
    for n, text in enumerate(descriptions, 1):
        lead, _, item = text.rpartition(": ")
        if lead and leads[lead] > 1:
            # Steps expanded from one list share its lead-in: their items tell them apart
            # ("write_testing", not "write_handbook_new_2").
            text = f"{lead.split(None, 1)[0]} {item}"
        ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
        words = re.findall(r"[a-z0-9]+(?:-[a-z0-9]+)*", ascii_text.lower())
        content = [w for w in words if w not in _ID_STOP] or words
        base = "_".join(content[:_ID_WORDS]).replace("-", "_")[:60].strip("_") or f"step_{n}"
        candidate, k = base, 2
        while candidate in seen:
            candidate, k = f"{base}_{k}", k + 1
        seen.add(candidate)
        ids.append(candidate)
    return ids


def _clip(text: str, limit: int) -> str:
    """``text`` within ``limit`` characters, cut after a whole word (a text without a space
    in its first ``limit`` characters is left whole, for the plan's check to refuse)."""
    if len(text) <= limit:
        return text
    head = text[: limit + 1]
    if not any(ch.isspace() for ch in head):
        return text
    return head.rsplit(None, 1)[0].rstrip(" ,;:") or text
