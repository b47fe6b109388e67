"""Stage 9, response: the final answer and the structured workflow result.

The final answer comes from the frontier of the run: the subtasks that succeeded and whose
successors did not (the sinks, when everything succeeded). One frontier output is the answer
as it is; several are combined by one synthesis call, or joined under headings if that call
fails.
"""

from __future__ import annotations

import time

from automatos.domain.level import Phase
from automatos.domain.result import (
    QualityReport,
    SubtaskStatus,
    Totals,
    WorkflowResult,
    WorkflowStatus,
)
from automatos.errors import AutomatosError
from automatos.llm.base import Message
from automatos.phases.contracts import ANSWER, PLAN, RESULTS
from automatos.phases.evaluate.assess import quality_report
from automatos.phases.execute.answer import answer_problem
from automatos.phases.quotes import fit_quotes
from automatos.phases.state import WorkflowState

__all__ = ["RespondStage", "build_result", "frontier", "quality_of"]

_SUCCEEDED = SubtaskStatus.SUCCEEDED

_ANSWER_TOKENS = 1000
"""What the synthesis is expected to write, for the budget's estimate."""


def quality_of(state: WorkflowState) -> QualityReport | None:
    """Stage 7's report; where only stage 5 ran (a Molecule), its dimension scores."""
    evaluation = state.evaluation
    if evaluation.quality_report is None and evaluation.dimensions:
        plan = state.planning.plan
        if plan is not None and all(s.id in evaluation.dimensions for s in plan.subtasks):
            evaluation.quality_report = quality_report(state, "aggregate")
    return evaluation.quality_report


def frontier(state: WorkflowState) -> list[str]:
    """Succeeded subtasks none of whose successors succeeded, in plan order."""
    plan = state.require_plan()
    ok = {sid for sid, r in state.execution.results.items() if r.status is _SUCCEEDED}
    return [
        s.id
        for s in plan.subtasks
        if s.id in ok and (not s.graph.successors or ok.isdisjoint(s.graph.successors))
    ]


class RespondStage:
    """Stage 9."""

    name = "respond"
    phase = Phase.LEARN
    reads = frozenset({PLAN, RESULTS})
    writes = frozenset({ANSWER})

    async def run(self, state: WorkflowState) -> None:
        """Set the final answer."""
        ends = frontier(state)
        outputs = [(sid, state.execution.results[sid].output or "") for sid in ends]
        if not outputs:
            state.learning.final_answer = None
        elif len(outputs) == 1:
            state.learning.final_answer = outputs[0][1]
        else:
            state.learning.final_answer = await self._synthesise(state, outputs)

    async def _synthesise(self, state: WorkflowState, outputs: list[tuple[str, str]]) -> str:
        ids = [sid for sid, _ in outputs]
        texts = [text for _, text in outputs]
        joined = _sections(ids, texts)
        # The joined outputs stand if the synthesis is cut short (the workflow's deadline).
        state.learning.final_answer = joined
        if not state.time_left():
            state.warnings.append("no time left for the synthesis; final answer joins the results")
            return joined
        budget = state.runtime.settings.execution.max_quoted_chars
        prompt = _sections(ids, fit_quotes(texts, budget, budget))
        user = f"Request:\n{state.request.text}\n\nResults:\n\n{prompt}"
        count = state.runtime.profile.count_tokens  # the model's own tokenizer, where it has one
        refusal = state.call_refusal(count(user) + _ANSWER_TOKENS)
        if refusal is not None:
            state.warnings.append(
                f"the budget leaves no room for the synthesis ({refusal}); final answer joins "
                "the results"
            )
            return joined
        try:
            done = await state.runtime.llm.complete(
                [Message("system", state.prompt("synthesiser")), Message("user", user)]
            )
        except AutomatosError as exc:
            state.warnings.append(f"synthesis failed ({exc}); final answer joins the results")
            return joined
        state.record_call(self.name, done)
        problem = answer_problem(done.text)
        if problem is not None:
            state.warnings.append(f"synthesis failed ({problem}); final answer joins the results")
            return joined
        return done.text


def _sections(ids: list[str], texts: list[str]) -> str:
    return "\n\n".join(f"## {sid}\n{text}" for sid, text in zip(ids, texts, strict=True))


def build_result(state: WorkflowState) -> WorkflowResult:
    """The workflow result from the state after the last stage."""
    plan = state.require_plan()
    by_status = dict.fromkeys(SubtaskStatus, 0)
    for r in state.execution.results.values():
        by_status[r.status] += 1
    succeeded = by_status[SubtaskStatus.SUCCEEDED]
    if succeeded == len(plan.subtasks):
        status = WorkflowStatus.SUCCEEDED
    elif succeeded:
        status = WorkflowStatus.PARTIAL
    else:
        status = WorkflowStatus.FAILED
    calls = state.llm_calls
    tokens_in = tokens_out = 0
    cost = 0.0
    for c in calls:
        tokens_in += c.tokens_in
        tokens_out += c.tokens_out
        cost += c.cost_usd
    totals = Totals(
        tokens_in=tokens_in,
        tokens_out=tokens_out,
        cost_usd=cost,
        wall_time_s=time.perf_counter() - state.started,
        llm_calls=len(calls),
        by_status=by_status,
        unpriced_models=tuple(sorted(state.unpriced)),
    )
    # Built from the engine's own typed records: validating thousands of them again would
    # only cost time at the end of every run.
    return WorkflowResult.model_construct(
        workflow_id=state.workflow_id,
        request=state.request.text,
        status=status,
        plan=plan,
        assignments=tuple(
            state.planning.assignments[s.id]
            for s in plan.subtasks
            if s.id in state.planning.assignments
        ),
        results={s.id: state.execution.results[s.id] for s in plan.subtasks},
        final_answer=state.learning.final_answer,
        totals=totals,
        llm_calls=tuple(calls),
        stages=tuple(state.stages),
        warnings=tuple(state.warnings),
        quality=quality_of(state),
        level=state.level,
        negotiation=state.planning.negotiation,
        prompts=state.preparation.prompts.uses(),
        findings=tuple(state.execution.findings),
        context=dict(state.preparation.context),
    )
