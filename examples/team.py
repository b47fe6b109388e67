"""A team of three agents on a scripted model: what negotiation, coordination and prompt A/B
tests do, on the real engine and your store, with no model to set up.

The model is :class:`automatos.testing.ScriptedLLM` playing a capable hosted model: it
answers the planner, the agents' reviews, the steps and the judge by rule. Everything else
is the engine as it runs with a real model: the stages, the graph checks, the rule that
applies or rejects each proposal, the shared findings, the store, the A/B statistics.

    .venv/bin/python examples/team.py negotiate     # a plan the agents change before it runs
    .venv/bin/python examples/team.py coordinate    # a finding of step 1 changes step 3
    .venv/bin/python examples/team.py ab --runs 400 # workflows for a running A/B test

Runs are stored where ``automatos`` keeps them (``AUTOMATOS_STORE__*``), so ``automatos runs
show ID`` and ``automatos prompts ab status`` show them afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from automatos import (
    AgentSpec,
    Engine,
    Level,
    Settings,
    SubtaskSpec,
    WorkflowRequest,
    WorkflowResult,
)
from automatos.llm.base import Message
from automatos.settings import describe_settings_error
from automatos.testing import Rule, ScriptedLLM

TEAM = (
    AgentSpec(
        name="researcher",
        description="Finds and checks facts about software systems.",
        capabilities=("research",),
    ),
    AgentSpec(
        name="analyst",
        description="Compares options against criteria and draws conclusions.",
        capabilities=("analysis",),
    ),
    AgentSpec(
        name="writer",
        description="Writes clear documents for engineers.",
        capabilities=("writing",),
    ),
)


def _json(value: object) -> str:
    return json.dumps(value)


def _step_answer(messages: Sequence[Message]) -> str:
    """A step's answer: a short paragraph about the step it was given."""
    prompt = messages[-1].content
    step = prompt.split("Your step (", 1)[-1].split("\n", 1)[-1].split("\n", 1)[0]
    return (
        f"{step.rstrip('.')}: done in full. PostgreSQL is a relational server with "
        "transactions and replication; Redis keeps data in memory with optional persistence; "
        "SQLite is an embedded file database with no server to run."
    )


# ---------------------------------------------------------------- negotiate

NEGOTIATE_REQUEST = (
    "Write a migration guide for moving our app's sessions from Redis to PostgreSQL."
)

FIRST_PLAN = {
    "subtasks": [
        {
            "id": "inventory",
            "description": "List how the app uses Redis sessions and design the PostgreSQL "
            "table that replaces them",
            "depends_on": [],
        },
        {
            "id": "cutover",
            "description": "Plan the cutover: dual writes, backfill, switch, rollback",
            "depends_on": ["inventory"],
        },
        {
            "id": "guide",
            "description": "Write the migration guide from the inventory and the cutover plan",
            "depends_on": ["cutover"],
        },
    ]
}

SPLIT = {
    "kind": "split",
    "subtask": "inventory",
    "into": [
        {"id": "usage", "description": "List how the app uses Redis sessions"},
        {"id": "schema", "description": "Design the PostgreSQL sessions table"},
    ],
    "reason": "finding the usage and designing the table are two jobs that can run at once",
}


def negotiation_llm() -> ScriptedLLM:
    """The planner, the selector, three reviewers and the arbiter, by rule."""
    assignments = {"inventory": "researcher", "cutover": "analyst", "guide": "writer"}
    return ScriptedLLM(
        rules=[
            Rule(r"^Request:\n(?s:.*)\Z", _json(FIRST_PLAN), times=1),  # the planner
            Rule(
                r"^Subtasks:",
                _json(
                    {
                        "assignments": [
                            {"subtask_id": s, "agent": a, "confidence": 0.9, "reason": "fits"}
                            for s, a in assignments.items()
                        ]
                    }
                ),
            ),
            # Round 1: the researcher and the analyst both want the inventory split (a
            # consensus); the writer alone wants the cutover plan, and the analyst alone a
            # dependency that would make a cycle.
            Rule(r"^Review by researcher, round 1\.", _json({"proposals": [SPLIT]})),
            Rule(
                r"^Review by analyst, round 1\.",
                _json(
                    {
                        "proposals": [
                            SPLIT,
                            {
                                "kind": "add_dependency",
                                "subtask": "cutover",
                                "depends_on": "guide",
                                "reason": "the cutover should follow the guide's outline",
                            },
                        ]
                    }
                ),
            ),
            Rule(
                r"^Review by writer, round 1\.",
                _json(
                    {
                        "proposals": [
                            {
                                "kind": "reassign",
                                "subtask": "cutover",
                                "agent": "writer",
                                "reason": "the guide's author should own the cutover plan",
                            }
                        ]
                    }
                ),
            ),
            Rule(r"^Review by \w+, round \d+\.", _json({"proposals": []})),
            Rule(
                r"^Proposals to decide",
                lambda messages: _json(
                    {
                        "decisions": [
                            {
                                "proposal": n,
                                "accept": "add_dependency" in line,
                                "reason": "planning a cutover is analysis, the analyst's job"
                                if "reassign" in line
                                else "an outline first may help",
                            }
                            for n, line in _numbered(messages[-1].content)
                        ]
                    }
                ),
            ),
            Rule(r"^Request:\n(?s:.*)\n\nStep:\n", _json(_verdict(0.9))),  # the judge
        ],
        default=_step_answer,
    )


def _numbered(prompt: str) -> list[tuple[int, str]]:
    out = []
    for line in prompt.split("Proposals:\n", 1)[-1].splitlines():
        head, _, _ = line.partition(".")
        if head.isdigit():
            out.append((int(head), line))
    return out


def _verdict(score: float) -> dict[str, object]:
    return {
        d: {"score": score, "reason": "scripted judge"}
        for d in ("completeness", "accuracy", "coherence")
    }


async def negotiate(settings: Settings) -> WorkflowResult:
    """One workflow whose plan the agents negotiate."""
    request = WorkflowRequest(text=NEGOTIATE_REQUEST, agents=TEAM, level=Level.ORGAN)
    async with Engine(settings, llm=negotiation_llm()) as engine:
        return await engine.run(request)


def show_negotiation(result: WorkflowResult) -> None:
    report = result.negotiation
    if report is None:
        print("no negotiation ran (see the level's skipped stages)")
        return
    print("plan before:")
    for s in report.plan_before:
        deps = ", ".join(s.get("depends_on") or ()) or "-"
        print(f"  {s['id']} ({s.get('agent')}) after: {deps}")
    for p in report.proposals:
        print(f"round {p.round}: {p.kind} by {', '.join(p.agents)}: {p.status}: {p.reason}")
    print("plan after:")
    agents = {a.subtask_id: a.agent for a in result.assignments}
    for s in result.plan.subtasks:
        print(f"  {s.id} ({agents[s.id]}) after: {', '.join(s.depends_on) or '-'}")


# ---------------------------------------------------------------- coordinate

LAUNCH_AGENTS = (
    AgentSpec(name="analyst", description="Finds the facts.", capabilities=("research",)),
    AgentSpec(name="planner", description="Plans the event.", capabilities=("planning",)),
    AgentSpec(name="announcer", description="Writes announcements.", capabilities=("writing",)),
)


Step = tuple[str, str, tuple[str, ...], str]
"""A recipe's step: id, description, dependencies, agent."""


def chain(text: str, steps: Sequence[Step], agents: tuple[AgentSpec, ...]) -> WorkflowRequest:
    """A recipe of ``steps`` run by ``agents`` at the Organ level."""
    return WorkflowRequest(
        text=text,
        subtasks=tuple(
            SubtaskSpec(id=i, description=d, depends_on=deps, agent=a) for i, d, deps, a in steps
        ),
        agents=agents,
        level=Level.ORGAN,
    )


def launch_request() -> WorkflowRequest:
    """Three groups in a chain; the announcement depends on the plan only."""
    steps: tuple[Step, ...] = (
        ("research", "Find out where the launch stands", (), "analyst"),
        ("plan", "Plan the launch event", ("research",), "planner"),
        ("announce", "Write the launch announcement, with its date", ("plan",), "announcer"),
    )
    text = "Prepare the launch of our product: research, plan the event, announce it."
    return chain(text, steps, LAUNCH_AGENTS)


def launch_llm() -> ScriptedLLM:
    def reply(messages: Sequence[Message]) -> str:
        prompt = messages[-1].content
        if prompt.startswith("Request:") and "\n\nStep:\n" in prompt:
            return _json(_verdict(0.85))  # the judge
        if "Your step (research)" in prompt:
            return (
                "The venue is booked and the press list is ready.\n\nFindings:\n"
                "- FACT: the launch date moved to 14 March\n"
                "- DECISION: the keynote is in Hall B"
            )
        if "Your step (plan)" in prompt:
            return (
                "Event plan: doors at 9, keynote at 10, demos until noon.\n\nFindings:\n"
                "- FACT: the keynote is not in Hall B, which is closed for repairs\n"
                "- QUESTION: who introduces the keynote?"
            )
        if "Your step (announce)" in prompt:
            # What the announcer knows decides what it writes: the date came from the
            # research step, two steps back, through the shared context.
            date = "14 March" if "the launch date moved to 14 March" in prompt else "1 March"
            return f"Join us on {date} for the launch of our product."
        return "done"

    return ScriptedLLM(default=reply)


async def coordinate(settings: Settings) -> tuple[WorkflowResult, str]:
    """The three-group workflow, and the prompt the third group got."""
    llm = launch_llm()
    async with Engine(settings, llm=llm) as engine:
        result = await engine.run(launch_request())
    prompt = next(
        c.messages[-1].content
        for c in llm.calls
        if "Your step (announce)" in c.messages[-1].content
    )
    return result, prompt


# ---------------------------------------------------------------- ab

CANDIDATE_CUE = "Start with the answer itself"
"""What the candidate executor prompt (examples/executor-v2.txt) asks of every step."""


def ab_llm(seed: int) -> ScriptedLLM:
    """Agents whose answers the judge scores higher, by 0.1 on average, when their prompt
    asks for the answer first: the effect the A/B test is to find."""
    rng = random.Random(seed)

    def reply(messages: Sequence[Message]) -> str:
        prompt = messages[-1].content
        if prompt.startswith("Request:") and "\n\nStep:\n" in prompt:
            better = "In short:" in prompt
            score = min(1.0, max(0.0, rng.gauss(0.8 if better else 0.7, 0.1)))
            return _json(_verdict(round(score, 3)))
        if CANDIDATE_CUE in prompt:
            return "In short: use PostgreSQL. It has transactions, replication and backups."
        return "PostgreSQL has transactions, replication and backups, so it is the choice."

    return ScriptedLLM(default=reply)


def ab_request() -> WorkflowRequest:
    steps: tuple[Step, ...] = (
        ("facts", "List what matters for storing sessions", (), "researcher"),
        ("weigh", "Weigh PostgreSQL against Redis for sessions", ("facts",), "analyst"),
        ("advise", "Advise which to use", ("weigh",), "writer"),
    )
    return chain("Should we keep sessions in PostgreSQL or Redis?", steps, TEAM)


async def ab(settings: Settings, runs: int) -> None:
    """Run workflows until the executor prompt's A/B test decides (or ``runs`` are done)."""
    from automatos.prompts.base import PromptStore

    async with Engine(settings, llm=ab_llm(seed=7)) as engine:
        store = await engine.open_store()
        if not isinstance(store, PromptStore):
            raise SystemExit("error: the store is disabled (AUTOMATOS_STORE__ENABLED): no tests")
        if not [t for t in await store.ab_tests("executor") if t.status == "running"]:
            print(
                "no A/B test of the executor prompt is running; start one first:\n"
                "  automatos prompts add executor examples/executor-v2.txt\n"
                "  automatos prompts ab start executor --candidate 2"
            )
            return
        arms: dict[str, int] = {}
        for _ in range(runs):
            result = await engine.run(ab_request())
            use = result.prompts.get("executor")
            arm = use.arm if use is not None and use.arm is not None else "none"
            arms[arm] = arms.get(arm, 0) + 1
            test = (await store.ab_tests("executor"))[0]
            if test.status != "running":  # the rule decided on this workflow's outcome
                break
    done = sum(arms.values())
    print(f"{done} workflows run ({', '.join(f'{k} {v}' for k, v in sorted(arms.items()))})")
    print(f"test {test.id}: {test.status}" + (f": {test.decision}" if test.decision else ""))


async def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("negotiate", help="a plan the agents change before it runs")
    sub.add_parser("coordinate", help="a finding of step 1 changes step 3")
    ab_parser = sub.add_parser("ab", help="workflows for a running A/B test of the executor")
    ab_parser.add_argument("--runs", type=_positive, default=400, help="at most this many")
    args = parser.parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as exc:
        raise SystemExit(f"error: {describe_settings_error(exc)}") from None
    if args.command == "ab":
        await ab(settings, args.runs)
        return
    if args.command == "negotiate":
        result = await negotiate(settings)
        show_negotiation(result)
    else:
        result, prompt = await coordinate(settings)
        at = prompt.find("Findings shared")
        if at < 0:
            print("no findings reached the announcer (coordination is off, or did not run)")
        else:
            print("the announcer's prompt ends:")
            print("  " + prompt[at:].replace("\n", "\n  "))
        print(f"its answer: {result.final_answer}")
    print(f"workflow {result.workflow_id}: {result.status.value}")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        raise SystemExit(130) from None
