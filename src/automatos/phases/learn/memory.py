"""Stage 8: what this run leaves for later ones (see :mod:`automatos.memory.base`).

- **episodic**: the request, its plan, what it answered and how it scored;
- **agent**: per subtask, what its agent did with the task type and how it went (quality,
  or the error it failed with);
- **collective**: the outputs a judge or a custom scorer (stage 7, so from Cell up; not the
  heuristics) scored at least ``memory.min_quality``, merged into a stored lesson that says
  the same.

Memories are embedded by stage 3's embedder and come back through the same optimiser as the
knowledge base's chunks. Writing them is the run's last act before its answer: it makes no
model call, and a failure (the embedder, the store) is a warning, not a failed workflow.
"""

from __future__ import annotations

import asyncio

from automatos.domain.event import MemoriesStored
from automatos.domain.level import Phase
from automatos.domain.result import SubtaskResult, SubtaskStatus
from automatos.errors import describe_exception
from automatos.memory.base import Memory, MemoryKind, MemoryStore
from automatos.phases.contracts import ASSIGNMENTS, PLAN, RESULTS
from automatos.phases.learn.respond import quality_of
from automatos.phases.state import WorkflowState
from automatos.retrieval.optimizer import word_entropy

__all__ = ["MemoryStage", "memories_of"]

_OUTPUT_CHARS = 600
"""How much of one output an agent memory or an episode quotes."""


class MemoryStage:
    """Stage 8."""

    name = "memory"
    phase = Phase.LEARN
    reads = frozenset({PLAN, ASSIGNMENTS, RESULTS})  # and the scores, where there are some
    writes = frozenset[str]()
    after_deadline = False

    async def run(self, state: WorkflowState) -> None:
        """Write the run's memories."""
        runtime = state.runtime
        store, source = runtime.store, runtime.context
        if not isinstance(store, MemoryStore) or source is None:
            return  # the selector lists this stage only with both
        drafts = memories_of(state)
        if not drafts:
            return
        settings = runtime.settings
        try:
            # An embedder not loaded yet (an Atom with nothing to retrieve) would cost the run
            # seconds: the memories wait, without vectors, for the next recall to embed them.
            vectors = (
                await source.embedder.embed([m.text for m in drafts]) if source.ready else None
            )
            drafts = [
                _with(m, source.embedder.name, runtime.profile.count_tokens(m.text)) for m in drafts
            ]
            async with asyncio.timeout(settings.store.timeout_s):
                kept = await store.add_memories(
                    drafts,
                    vectors,
                    settings.memory.duplicate_cosine,
                    keep=settings.memory.max_memories,
                )
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # losing the memories must not lose the run
            state.warnings.append(
                f"stage 8 could not store the run's memories: {describe_exception(exc)}"
            )
            return
        counts: dict[str, int] = {}
        merged = 0
        for memory in kept:
            counts[memory.kind] = counts.get(memory.kind, 0) + 1
            merged += memory.count > 1 and memory.kind == "collective"
        state.bus.emit(MemoriesStored, stored=counts, merged=merged, pending=vectors is None)


def memories_of(state: WorkflowState) -> list[Memory]:
    """The memories this run leaves (not yet embedded or counted)."""
    plan = state.planning.plan
    results = state.execution.results
    if plan is None or not results:
        return []
    limit = state.runtime.settings.memory.max_chars
    report = quality_of(state)  # stage 7's, or stage 5's alone at a Molecule
    # A lesson needs a score that read the output against its task (a judge's, a custom
    # scorer's): the heuristics score fluent filler well, and a lesson is recalled as fact.
    scored = report is not None and report.method in ("judge", "custom") and not report.fallbacks
    drafts: list[Memory] = []
    answered = [
        f"{sid}: {_cut(results[sid].output or '', _OUTPUT_CHARS)}"
        for sid in plan.sinks
        if sid in results and results[sid].status is SubtaskStatus.SUCCEEDED
    ]
    steps = "; ".join(s.description for s in plan.subtasks)
    episode = f"Earlier request: {state.request.text}\nPlan ({len(plan.subtasks)} steps): {steps}"
    if answered:
        episode += "\nAnswered: " + "\n".join(answered)
    failed = [sid for sid, r in results.items() if r.status is not SubtaskStatus.SUCCEEDED]
    if failed:
        episode += f"\nSteps that did not succeed: {', '.join(failed)}"
    if report is not None:
        review = " (needs review)" if report.needs_review else ""
        episode += f"\nQuality: {report.q:.2f}{review}"
    drafts.append(
        _draft("episodic", _cut(episode, limit), state, quality=report.q if report else None)
    )
    for subtask in plan.subtasks:
        result = results.get(subtask.id)
        assignment = state.planning.assignments.get(subtask.id)
        if result is None or assignment is None or result.status is SubtaskStatus.SKIPPED:
            continue
        kind = state.task_type(subtask.id)
        quality = report.subtasks.get(subtask.id, {}).get("q") if report is not None else None
        drafts.append(
            _draft(
                "agent",
                _cut(
                    _agent_text(assignment.agent, kind, subtask.description, result, quality), limit
                ),
                state,
                agent=assignment.agent,
                task_type=kind,
                quality=quality,
                succeeded=result.status is SubtaskStatus.SUCCEEDED,
            )
        )
        floor = state.runtime.settings.memory.min_quality
        good = quality is not None and quality >= floor
        if scored and result.status is SubtaskStatus.SUCCEEDED and good:
            lesson = f"{subtask.description}\n{result.output or ''}"
            drafts.append(
                _draft("collective", _cut(lesson, limit), state, task_type=kind, quality=quality)
            )
    return drafts


def _agent_text(
    agent: str, kind: str, description: str, result: SubtaskResult, quality: float | None
) -> str:
    if result.status is SubtaskStatus.SUCCEEDED:
        how = f"succeeded (quality {quality:.2f})" if quality is not None else "succeeded"
        output = _cut(result.output or "", _OUTPUT_CHARS)
        return f'{agent} did a {kind} step, "{description}", and {how}. It wrote: {output}'
    error = result.error.message if result.error is not None else result.status.value
    return f'{agent} did a {kind} step, "{description}", and it failed: {error}'


def _draft(
    kind: MemoryKind,
    text: str,
    state: WorkflowState,
    *,
    agent: str | None = None,
    task_type: str | None = None,
    quality: float | None = None,
    succeeded: bool | None = None,
) -> Memory:
    return Memory(
        id=0,
        kind=kind,
        text=text,
        workflow_id=state.workflow_id,
        agent=agent,
        task_type=task_type,
        quality=quality,
        succeeded=succeeded,
        count=1,
        tokens=0,
        entropy=word_entropy(text),
        embedder="",
    )


def _with(memory: Memory, embedder: str, tokens: int) -> Memory:
    from dataclasses import replace

    return replace(memory, embedder=embedder, tokens=tokens)


def _cut(text: str, limit: int) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
