"""Stage 3: each subtask's context from the knowledge base and memory, within a token budget.

A subtask whose plan says ``requires_context: false`` gets no retrieval (the PRD's Fix 4): the
outputs of its dependencies still reach it, in the execute stage. The others are embedded in
one call, and each gets what :func:`~automatos.retrieval.choose.choose` selects from the pool
(the workspace's chunks, and its memories when ``memory.recall`` is on) within the level's
budget: Atom 200 tokens, Molecule 2,000, Cell 4,000, Organ 8,000, Organism 16,000 (the upper
ends of the PRD's ranges), or ``context.budget_tokens``; never more than
``context.max_window_share`` of the model's window, which the subtask's step, the outputs it
quotes and its answer need as well.

What was chosen reaches the subtask's prompt; what was not, with the step that dropped it and
why, is in the ``context_selected`` event and stored with the run. Retrieval that fails (the
embedder, the store) costs the subtasks their context, with a warning, not the workflow.
"""

from __future__ import annotations

import asyncio
from types import MappingProxyType

from automatos.domain.context import SubtaskContext
from automatos.domain.event import ContextSelected
from automatos.domain.level import Level, Phase
from automatos.domain.plan import Subtask
from automatos.errors import AutomatosError, describe_exception
from automatos.phases.contracts import ASSIGNMENTS, CONTEXT, PLAN
from automatos.phases.execute.prompt import CONTEXT_HEADING, MEMORY_HEADING, is_whole_request
from automatos.phases.state import WorkflowState
from automatos.retrieval.base import Vectors
from automatos.retrieval.choose import choose
from automatos.retrieval.pool import Pool

__all__ = ["LEVEL_BUDGETS", "ContextStage", "context_budget"]

LEVEL_BUDGETS = MappingProxyType(
    {
        Level.ATOM: 200,
        Level.MOLECULE: 2_000,
        Level.CELL: 4_000,
        Level.ORGAN: 8_000,
        Level.ORGANISM: 16_000,
    }
)
"""Tokens of context per subtask at each level: the upper end of the PRD's range."""

_MAX_QUERY_CHARS = 2_000
"""The part of a long step embedded as its query (the embedders read a few hundred tokens)."""


def context_budget(state: WorkflowState) -> int:
    """Tokens of context one subtask of this workflow may get."""
    settings = state.runtime.settings.context
    level = state.level.level if state.level is not None else Level.MOLECULE
    wanted = settings.budget_tokens if settings.budget_tokens is not None else LEVEL_BUDGETS[level]
    profile = state.runtime.profile
    window = int(profile.context_window * settings.max_window_share)
    headings = profile.count_tokens(f"{CONTEXT_HEADING}\n\n{MEMORY_HEADING}\n\n")
    return max(0, min(wanted, window) - headings)


class ContextStage:
    """Stage 3."""

    name = "context"
    phase = Phase.PREPARE
    reads = frozenset({PLAN, ASSIGNMENTS})
    writes = frozenset({CONTEXT})
    after_deadline = False

    async def run(self, state: WorkflowState) -> None:
        """Choose each subtask's context."""
        plan = state.require_plan()
        records: dict[str, SubtaskContext] = {}
        wanting: list[Subtask] = []
        for subtask in plan.subtasks:
            if subtask.requires_context:
                wanting.append(subtask)
            else:
                records[subtask.id] = SubtaskContext(
                    subtask_id=subtask.id,
                    retrieved=False,
                    reason="its plan says requires_context: false"
                    + (" (its dependencies' outputs still reach it)" if subtask.depends_on else ""),
                )
        if wanting:
            records.update(await self._retrieve(state, wanting))
        state.preparation.context = {s.id: records[s.id] for s in plan.subtasks}
        for record in state.preparation.context.values():
            state.bus.emit(
                ContextSelected,
                subtask_id=record.subtask_id,
                retrieved=record.retrieved,
                reason=record.reason,
                budget=record.budget,
                tokens=record.tokens,
                candidates=record.candidates,
                items=[
                    {"id": i.id, "title": i.title, "tokens": i.tokens, "relevance": i.relevance}
                    for i in record.items
                ],
                dropped_by=dict(record.dropped_by),
            )

    async def _retrieve(
        self, state: WorkflowState, wanting: list[Subtask]
    ) -> dict[str, SubtaskContext]:
        runtime = state.runtime
        source = runtime.context
        budget = context_budget(state)

        def without(reason: str) -> dict[str, SubtaskContext]:
            return {
                s.id: SubtaskContext(subtask_id=s.id, retrieved=False, reason=reason, budget=budget)
                for s in wanting
            }

        if source is None:
            return without("no embedder: retrieval is not set up for this engine")
        if runtime.store is None:
            return without("no store: there is no knowledge base or memory to draw from")
        try:
            memory = runtime.settings.memory
            pool = await source.pool(
                runtime.store, memories=memory.recall, duplicate_cosine=memory.duplicate_cosine
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the store, or the embedder on pending memories
            why = str(exc) if isinstance(exc, AutomatosError) else describe_exception(exc)
            state.warnings.append(f"stage 3 could not load the knowledge base and memories: {why}")
            return without(f"the knowledge base and memories could not be read: {why}")
        if not len(pool):
            return without(
                "the knowledge base and memory are empty for this embedder "
                f"({source.embedder.name}): add documents with `automatos kb add PATH`"
            )
        if budget <= 0:
            return without("the context budget is 0 tokens (setting context.budget_tokens)")
        queries = [_query(state, s) for s in wanting]
        try:
            vectors = await source.embedder.embed(queries)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # an embedder is a plugin: its failure costs the context only
            why = describe_exception(exc)
            state.warnings.append(f"stage 3 could not embed the subtasks: {why}")
            return without(f"the embedder {source.embedder.name} failed: {why}")
        return await asyncio.to_thread(self._choose_all, state, pool, wanting, vectors, budget)

    @staticmethod
    def _choose_all(
        state: WorkflowState,
        pool: Pool,
        wanting: list[Subtask],
        vectors: Vectors,
        budget: int,
    ) -> dict[str, SubtaskContext]:
        runtime = state.runtime
        profile = runtime.profile
        assignments = state.planning.assignments
        return {
            s.id: choose(
                pool,
                vectors[index],
                subtask_id=s.id,
                agent=assignments[s.id].agent,
                budget=budget,
                settings=runtime.settings.context,
                tokenizer=profile.tokenizer,
                count_tokens=profile.count_tokens,
                min_memory_quality=runtime.settings.memory.recall_min_quality,
            )
            for index, s in enumerate(wanting)
        }


def _query(state: WorkflowState, subtask: Subtask) -> str:
    """What a subtask's context should be near: its step (the request, for the one step)."""
    if is_whole_request(state.request.text, subtask):
        return state.request.text[:_MAX_QUERY_CHARS]
    return subtask.description[:_MAX_QUERY_CHARS]
