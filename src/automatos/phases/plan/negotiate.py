"""Stage 2b, negotiation: the agents of a multi-agent plan review it before it runs.

The stage runs when ``negotiation.enabled``, the plan has two or more subtasks, its
assignments name at least ``negotiation.min_agents`` distinct agents, the model's profile
plans freely (a model that cannot write a plan cannot judge changes to one either) and the
workflow has time left. Otherwise it records nothing.

In each round every agent of the plan reviews it at once: it sees the request, the plan
(each subtask's id, description, dependencies and agent), which subtasks are its own and the
other agents it could hand one to, and answers with proposals
(:mod:`automatos.phases.plan.proposals`), through the workflow's budget and deadline.

The rule that decides a proposal:

1. A change that two or more agents propose is applied by consensus, in the words of the
   first of them. They must propose the same change in full (its kind and every field that
   decides what it does, descriptions compared without regard to case or spacing:
   :func:`~automatos.phases.plan.proposals.consensus_key`): two splits of one subtask into
   different parts are two lone proposals, not a consensus.
2. A change that one agent alone proposes goes to the planner (the ``arbiter`` prompt), one
   call a round for all of them: applied if it accepts it, rejected with its reason if not.
   If the planner cannot be asked (its call fails, the budget or the deadline refuses it),
   the lone proposals are rejected, saying so.
3. The consensus changes are applied first, in the order they were first proposed (agents
   in plan order), then the accepted lone ones in their numbered order, each to the plan as
   the ones before left it. Each is rebuilt and checked by :func:`automatos.graph.build_plan`
   under ``settings.plan``: one that would make a cycle, a dangling or duplicate id, exceed
   a limit, or that names an unknown subtask or agent, is rejected with the reason and the
   plan stays as it was. The plan therefore passes the graph checks after every change.
4. Only the first ``negotiation.max_proposals`` proposals of an agent's answer are
   considered; the rest are one ``over_limit`` rejection that counts them. Each considered
   proposal is validated on its own: one that does not validate is a ``malformed``
   rejection naming the error, and the agent's other proposals go on. The same change twice
   from one agent is rejected as a duplicate of the first. An answer that is not
   ``{"proposals": [...]}`` JSON (or longer than the stage reads) after one repair is one
   ``malformed`` rejection, and a review call that fails or is refused one ``failed``
   rejection.

A round that applies nothing ends the negotiation; there are at most
``negotiation.max_rounds``. Every proposal an agent made ends with exactly one fate (an
outcome whose ``agents`` include it; the change as recorded has its strings and lists cut,
:func:`~automatos.phases.plan.proposals.as_change`). Every fate is a
:class:`~automatos.domain.event.ProposalDecided` event and a line of
``state.planning.negotiation``; one :class:`~automatos.domain.event.PlanNegotiated` ends the
stage. The plan, the assignments and the report are written together after each round, so a
deadline that cuts a round short leaves the last round's plan whole.
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from automatos.domain.agent import AgentSpec, Assignment
from automatos.domain.collaboration import NegotiationReport, ProposalOutcome
from automatos.domain.event import PlanNegotiated, ProposalDecided
from automatos.domain.level import Phase
from automatos.domain.plan import Plan
from automatos.errors import (
    BudgetExceededError,
    LLMError,
    StructuredOutputError,
    WorkflowTimeoutError,
)
from automatos.llm.base import Message
from automatos.llm.structured import (
    complete_structured,
    describe_fields,
    extract_json,
    load_json,
    pydantic_parser,
    schema_of,
)
from automatos.phases.contracts import ASSIGNMENTS, PLAN
from automatos.phases.evaluate.guard import GatedLLM
from automatos.phases.plan.proposals import (
    MAX_REASON_CHARS,
    Draft,
    Proposal,
    Rejection,
    Review,
    apply,
    as_change,
    consensus_key,
    read_proposal,
    spec_of,
)
from automatos.phases.quotes import CUT_MARK
from automatos.phases.state import WorkflowState

__all__ = ["NegotiateStage", "arbiter_messages", "review_messages"]

_RESERVE_S = 0.05
"""Seconds before the workflow's deadline at which the stage's model calls are cut off, so
that it still writes the round's plan before the pipeline cancels it."""

_REQUEST_CHARS = 8_000
"""The request as a reviewer sees it: its gist is enough to judge the plan."""
_DESCRIPTION_CHARS = 1_000
"""A subtask's description as a reviewer sees it."""

_ANSWER_CHARS = 200_000
"""Longest review answer the stage reads: far more than ``negotiation.max_proposals``
proposals take, so that a runaway answer is refused before it is parsed."""

_CALL_FAILURES = (LLMError, BudgetExceededError, WorkflowTimeoutError)
"""What a review or the planner's call may end in, besides an answer."""


def _cut(text: str, most: int) -> str:
    return text if len(text) <= most else text[:most] + CUT_MARK


def _about(agent: AgentSpec) -> str:
    skills = ", ".join(agent.capabilities) or "none"
    return f"{agent.description or 'no description'} [capabilities: {skills}]"


def _plan_lines(draft: Draft) -> list[str]:
    lines = []
    for s in draft.plan.subtasks:
        owner = draft.agents[s.id] + (", fixed by the recipe" if s.agent else "")
        deps = ", ".join(s.depends_on) or "nothing"
        lines.append(
            f"- {s.id}: {_cut(s.description, _DESCRIPTION_CHARS)} "
            f"(agent: {owner}; depends on: {deps})"
        )
    return lines


def review_messages(
    system: str,
    request: str,
    draft: Draft,
    agent: AgentSpec,
    others: Sequence[AgentSpec],
    round_: int,
) -> list[Message]:
    """One agent's review prompt: ``system`` is the workflow's ``negotiator`` template for
    it; the user message starts ``Review by <agent>, round <n>.``."""
    mine = [s.id for s in draft.plan.subtasks if draft.agents[s.id] == agent.name]
    lines = [
        f"Review by {agent.name}, round {round_}.",
        "",
        "Request:",
        _cut(request, _REQUEST_CHARS),
        "",
        "Plan:",
        *_plan_lines(draft),
        "",
        f"Your subtasks: {', '.join(mine) or 'none'}",
        "",
        "The other agents:",
        *(f"- {a.name}: {_about(a)}" for a in others),
    ]
    return [
        Message("system", f"{system}\n\nAbout you: {_about(agent)}"),
        Message("user", "\n".join(lines)),
    ]


def arbiter_messages(
    system: str, request: str, draft: Draft, lone: Sequence[tuple[str, Proposal]]
) -> list[Message]:
    """The planner's prompt: the plan, and each lone proposal numbered from 1 with the agent
    that made it; the user message starts ``Proposals to decide``."""
    lines = [
        "Proposals to decide, each made by one agent only.",
        "",
        "Request:",
        _cut(request, _REQUEST_CHARS),
        "",
        "Plan:",
        *_plan_lines(draft),
        "",
        "Proposals:",
    ]
    lines += [
        f"{n}. from {agent}: {json.dumps(as_change(proposal))}"
        for n, (agent, proposal) in enumerate(lone, 1)
    ]
    return [Message("system", system), Message("user", "\n".join(lines))]


def _review_schema(max_proposals: int) -> dict[str, Any]:
    schema = copy.deepcopy(dict(schema_of(Review)))
    schema["properties"]["proposals"]["maxItems"] = max_proposals
    return schema


class _Envelope(BaseModel):
    """A review answer as a whole: a list of proposals, each validated later on its own."""

    model_config = ConfigDict(extra="ignore")

    proposals: list[Any]


def _read_answer(text: str) -> list[Any]:
    """The proposals of a review answer, unvalidated; raises ``ValueError`` when the answer
    is not ``{"proposals": [...]}`` JSON or is too long to read."""
    if len(text) > _ANSWER_CHARS:
        raise ValueError(
            f"the answer is {len(text)} characters long; at most {_ANSWER_CHARS} are read"
        )
    return _Envelope.model_validate(load_json(extract_json(text))).proposals


class _Decision(BaseModel):
    """The planner's decision on one lone proposal."""

    model_config = ConfigDict(extra="ignore")

    proposal: int
    accept: bool
    reason: str = ""

    @field_validator("reason")
    @classmethod
    def _short(cls, reason: str) -> str:
        return reason.strip()[:MAX_REASON_CHARS]


class _Verdicts(BaseModel):
    """The planner's answer."""

    model_config = ConfigDict(extra="ignore")

    decisions: list[_Decision]


def _arbiter_schema(count: int) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "decisions": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "proposal": {"type": "integer", "minimum": 1, "maximum": count},
                        "accept": {"type": "boolean"},
                        "reason": {"type": "string", "maxLength": 200},
                    },
                    "required": ["proposal", "accept", "reason"],
                },
                "maxItems": count,
            }
        },
        "required": ["decisions"],
    }


@dataclass(frozen=True, slots=True)
class _Failure:
    """A review that gave no proposals: ``malformed`` or ``failed``, and why."""

    kind: str
    reason: str


@dataclass
class _Group:
    """One change and the agents that proposed it."""

    proposal: Proposal
    agents: list[str]


def _names(agents: Sequence[str]) -> str:
    return agents[0] if len(agents) == 1 else f"{', '.join(agents[:-1])} and {agents[-1]}"


@dataclass
class _Session:
    """One negotiation: the workflow, its gated model and what was decided so far."""

    state: WorkflowState
    stage: str
    draft: Draft
    llm: GatedLLM
    outcomes: list[ProposalOutcome] = field(default_factory=list)
    notes: dict[str, str] = field(default_factory=dict)
    """Why a subtask's assignment changed, by subtask id."""
    failed_calls: list[str] = field(default_factory=list)

    async def run_round(self, number: int) -> int:
        """Review, decide and apply one round; how many changes it applied."""
        settings = self.state.runtime.settings.negotiation
        names = dict.fromkeys(self.draft.agents[s.id] for s in self.draft.plan.subtasks)
        reviewers = [self.state.agents[n] for n in names if n in self.state.agents]
        answers = await asyncio.gather(*(self.review(number, agent) for agent in reviewers))
        by_change: dict[tuple[object, ...], _Group] = {}  # in the order first proposed
        for agent, answer in zip(reviewers, answers, strict=True):
            if isinstance(answer, _Failure):
                change = {"error": answer.reason}
                self.decide(number, [agent.name], answer.kind, change, False, answer.reason)
                continue
            self.take(number, agent.name, answer, settings.max_proposals, by_change)
        groups = list(by_change.values())
        lone = [g for g in groups if len(g.agents) == 1]
        verdicts = await self.arbitrate(lone) if lone else []
        applied = 0
        for group in groups:
            if len(group.agents) > 1:
                applied += self.apply(number, group, f"proposed by {_names(group.agents)}")
        for group, (accepted, reason) in zip(lone, verdicts, strict=True):
            if accepted:
                applied += self.apply(number, group, f"accepted by the planner: {reason}")
            else:
                dump = as_change(group.proposal)
                self.decide(number, group.agents, group.proposal.kind, dump, False, reason)
        return applied

    def take(
        self,
        number: int,
        agent: str,
        items: Sequence[Any],
        most: int,
        by_change: dict[tuple[object, ...], _Group],
    ) -> None:
        """Count the first ``most`` of ``agent``'s proposals with the same change of the
        others, and reject the rest, the malformed ones and the duplicates."""
        mine: dict[tuple[object, ...], int] = {}
        for n, item in enumerate(items[:most], 1):
            try:
                proposal = read_proposal(item)
            except ValidationError as exc:
                reason = f"proposal #{n} did not validate: {describe_fields(exc)}"
                self.decide(number, [agent], "malformed", {"error": reason}, False, reason)
                continue
            key = consensus_key(proposal)
            if key in mine:
                self.decide(
                    number,
                    [agent],
                    proposal.kind,
                    as_change(proposal),
                    False,
                    f"a duplicate of this agent's proposal #{mine[key]} in this round",
                )
                continue
            mine[key] = n
            group = by_change.get(key)
            if group is None:
                by_change[key] = _Group(proposal, [agent])
            else:
                group.agents.append(agent)
        over = len(items) - most
        if over > 0:
            reason = (
                f"{over} more proposals over the limit of {most} were not considered "
                "(setting negotiation.max_proposals)"
            )
            change = {"count": over, "limit": most}
            self.decide(number, [agent], "over_limit", change, False, reason)

    async def review(self, number: int, agent: AgentSpec) -> list[Any] | _Failure:
        """One agent's proposals, unvalidated, or why it has none."""
        state = self.state
        others = [a for a in state.agents.values() if a.name != agent.name]
        messages = review_messages(
            state.prompt("negotiator", agent=agent.name),
            state.request.text,
            self.draft,
            agent,
            others,
            number,
        )
        try:
            answer = await complete_structured(
                self.llm,
                messages,
                _read_answer,
                json_schema=_review_schema(state.runtime.settings.negotiation.max_proposals),
                model=agent.model,
                temperature=0.0,
                max_tokens=state.runtime.settings.llm.max_tokens,
                on_call=lambda done: state.record_call(self.stage, done),
            )
        except StructuredOutputError as exc:
            return _Failure("malformed", str(exc))
        except _CALL_FAILURES as exc:
            reason = f"the review call failed ({type(exc).__name__}): {exc}"
            self.failed_calls.append(reason)
            return _Failure("failed", reason)
        return answer.value

    async def arbitrate(self, lone: Sequence[_Group]) -> list[tuple[bool, str]]:
        """The planner's decision on each lone proposal: accepted, and why."""
        state = self.state
        messages = arbiter_messages(
            state.prompt("arbiter"),
            state.request.text,
            self.draft,
            [(g.agents[0], g.proposal) for g in lone],
        )
        try:
            answer = await complete_structured(
                self.llm,
                messages,
                pydantic_parser(_Verdicts),
                json_schema=_arbiter_schema(len(lone)),
                temperature=0.0,
                max_tokens=state.runtime.settings.llm.max_tokens,
                on_call=lambda done: state.record_call(self.stage, done),
            )
        except _CALL_FAILURES as exc:
            reason = f"the planner could not be asked ({type(exc).__name__}): {exc}"
            self.failed_calls.append(reason)
            return [(False, reason)] * len(lone)
        decisions: dict[int, _Decision] = {}
        for d in answer.value.decisions:
            decisions.setdefault(d.proposal, d)  # the first word on a proposal counts
        verdicts = []
        for n in range(1, len(lone) + 1):
            decision = decisions.get(n)
            if decision is None:
                verdicts.append((False, "the planner gave no decision on it"))
            elif decision.accept:
                verdicts.append((True, decision.reason or "no reason given"))
            else:
                why = decision.reason or "no reason given"
                verdicts.append((False, f"the planner rejected it: {why}"))
        return verdicts

    def apply(self, number: int, group: _Group, why: str) -> int:
        """Apply one accepted change if the plan allows it; 1 if it was applied."""
        proposal = group.proposal
        before = self.draft
        after = apply(
            proposal,
            before,
            proposer=group.agents[0],
            agents=self.state.agents.keys(),
            limits=self.state.runtime.settings.plan,
        )
        dump = as_change(proposal)
        if isinstance(after, Rejection):
            self.decide(number, group.agents, proposal.kind, dump, False, after.reason)
            return 0
        note = f"{proposal.kind} proposed by {_names(group.agents)}"
        for s in after.plan.subtasks:
            old = before.plan.by_id.get(s.id)
            if (
                old is None
                or old.description != s.description
                or before.agents.get(s.id) != after.agents[s.id]
            ):
                self.notes[s.id] = note
        self.draft = after
        self.decide(number, group.agents, proposal.kind, dump, True, why)
        return 1

    def decide(
        self,
        number: int,
        agents: Sequence[str],
        kind: str,
        change: dict[str, Any],
        applied: bool,
        reason: str,
    ) -> None:
        """Record one proposal's fate and emit it."""
        status = "applied" if applied else "rejected"
        self.outcomes.append(
            ProposalOutcome(
                round=number,
                agents=tuple(agents),
                kind=kind,
                change=change,
                status=status,
                reason=reason,
            )
        )
        self.state.bus.emit(
            ProposalDecided,
            round=number,
            agents=list(agents),
            proposal=kind,
            change=change,
            status=status,
            reason=reason,
        )

    def commit(self, report: NegotiationReport) -> None:
        """Write the plan, its assignments and the report, all at once."""
        planning = self.state.planning
        old = planning.plan
        plan = self.draft.plan
        for sid in list(planning.task_types):  # recomputed on first use
            now = plan.by_id.get(sid)
            was = old.by_id.get(sid) if old is not None else None
            if now is None or was is None or now.description != was.description:
                del planning.task_types[sid]
        previous = planning.assignments
        planning.assignments = {
            s.id: Assignment(s.id, self.draft.agents[s.id], f"negotiated: {self.notes[s.id]}")
            if s.id in self.notes
            else previous[s.id]
            for s in plan.subtasks
        }
        planning.plan = plan
        planning.negotiation = report


class NegotiateStage:
    """Stage 2b: the agents review the plan and their assignments, and change them by the
    rule of the module's docstring."""

    name = "negotiate"
    phase = Phase.PLAN
    reads = frozenset({PLAN, ASSIGNMENTS})
    writes = frozenset({PLAN, ASSIGNMENTS})
    after_deadline = False

    async def run(self, state: WorkflowState) -> None:
        """Negotiate the plan, if it is one to negotiate."""
        settings = state.runtime.settings.negotiation
        plan = state.require_plan()
        owners = {s.id: state.planning.assignments[s.id].agent for s in plan.subtasks}
        if (
            not settings.enabled
            or not state.runtime.profile.plans_freely
            or state.time_left() <= _RESERVE_S
        ):
            return
        agents = len(set(owners.values()))
        if len(plan.subtasks) < 2 or agents < settings.min_agents:
            # Said in the result, so that a user sees why the stage changed nothing.
            state.planning.negotiation = NegotiationReport(
                rounds=0,
                plan_before=_specs(plan, owners),
                skipped=f"{len(plan.subtasks)} subtask(s) for {agents} agent(s): a plan is "
                f"negotiated by {settings.min_agents} agents or more (setting "
                "negotiation.min_agents), over two subtasks or more",
            )
            return
        llm = GatedLLM(
            state.runtime.llm,
            refusal=state.call_refusal,
            time_left=lambda: state.time_left() - _RESERVE_S,
            purpose="the negotiation",
            count_tokens=state.runtime.profile.count_tokens,
        )
        session = _Session(state, self.name, Draft(plan, owners), llm)
        before = _specs(plan, owners)
        rounds = 0
        for number in range(1, settings.max_rounds + 1):
            if number > 1 and state.time_left() <= _RESERVE_S:
                break
            rounds = number
            applied = await session.run_round(number)
            session.commit(
                NegotiationReport(
                    rounds=rounds, plan_before=before, proposals=tuple(session.outcomes)
                )
            )
            if not applied:
                break
        if session.failed_calls:
            state.warnings.append(
                f"stage 2b: {len(session.failed_calls)} model call(s) failed or were not "
                f"allowed; the plan went on without them (last: {session.failed_calls[-1]})"
            )
        applied_total = sum(o.status == "applied" for o in session.outcomes)
        state.bus.emit(
            PlanNegotiated,
            rounds=rounds,
            applied=applied_total,
            rejected=len(session.outcomes) - applied_total,
            subtasks_before=len(plan.subtasks),
            subtasks_after=len(session.draft.plan.subtasks),
        )


def _specs(plan: Plan, owners: Mapping[str, str]) -> list[dict[str, Any]]:
    """The plan's subtasks as JSON specs, each with its agent."""
    return [{**spec_of(s).model_dump(mode="json"), "agent": owners[s.id]} for s in plan.subtasks]
