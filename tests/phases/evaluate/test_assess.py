"""Stages 5 and 7 on whole workflows: scores come from what the agents wrote."""

from __future__ import annotations

import json
from collections.abc import Sequence

from automatos import Engine, SubtaskSpec, WorkflowRequest
from automatos.llm.base import Message
from automatos.testing import Fault, Rule, ScriptedLLM
from tests.conftest import fast_settings, step_of

REQUEST = WorkflowRequest(
    text="Compare PostgreSQL and SQLite for a small web application.",
    subtasks=(
        SubtaskSpec(
            id="postgres",
            description="Summarise PostgreSQL's strengths for a small web application.",
        ),
        SubtaskSpec(
            id="sqlite", description="Summarise SQLite's strengths for a small web application."
        ),
        SubtaskSpec(
            id="verdict",
            description="Recommend PostgreSQL or SQLite for a small web application.",
            depends_on=("postgres", "sqlite"),
        ),
    ),
)
GOOD = {
    "postgres": "PostgreSQL is a client-server database with strong concurrency through MVCC, "
    "rich SQL, JSONB columns and mature tooling; for a small web application it handles many "
    "simultaneous writers, but it needs a server process, backups and some administration.",
    "sqlite": "SQLite is an embedded database stored in one file, needs no server, and is very "
    "fast for reads; for a small web application it is simple to deploy and back up, though "
    "only one writer can commit at a time, which limits write-heavy sites.",
    "verdict": "For a small web application with modest write traffic, SQLite is the simpler "
    "choice: no server, one file, fast reads. Choose PostgreSQL when many users write at once "
    "or when you expect to grow, since its concurrency and tooling scale further.",
}
BAD = {
    "postgres": "I'm sorry, but I can't help with that request.",
    "sqlite": "SQLite SQLite SQLite. SQLite SQLite SQLite. SQLite SQLite SQLite. SQLite SQLite.",
    "verdict": "The weather in Paris is mild in spring, with",
}


def by_step(outputs: dict[str, str]) -> ScriptedLLM:
    return ScriptedLLM(default=lambda m: outputs.get(step_of(m), "out"))


async def test_good_and_bad_outputs_of_the_same_workflow_score_apart() -> None:
    good = await Engine(fast_settings(), llm=by_step(GOOD)).run(REQUEST)
    bad = await Engine(fast_settings(), llm=by_step(BAD)).run(
        REQUEST.model_copy(update={"workflow_id": "b"})
    )
    assert good.quality is not None and bad.quality is not None
    assert good.quality.q >= 0.75
    assert bad.quality.q <= 0.45
    assert good.quality.q - bad.quality.q >= 0.35
    assert good.quality.method == "heuristic" and good.quality.n == 3
    assert not good.quality.needs_review and bad.quality.needs_review
    assert good.quality.low <= good.quality.q <= good.quality.high
    per = bad.quality.subtasks
    assert (per["postgres"]["q"] or 0.0) < 0.3  # the refusal
    assert set(good.quality.dimensions) == {
        "completeness",
        "accuracy",
        "efficiency",
        "reliability",
        "coherence",
    }


async def test_a_failed_subtask_scores_zero_on_content() -> None:
    settings = fast_settings(max_attempts=1)
    settings.llm.max_retries = 0
    llm = ScriptedLLM(
        default=lambda m: (
            Fault.server_error() if step_of(m) == "sqlite" else GOOD.get(step_of(m), "")
        )
    )
    result = await Engine(settings, llm=llm).run(REQUEST)
    assert result.quality is not None
    assert result.quality.subtasks["sqlite"]["reliability"] == 0.0
    assert result.quality.subtasks["sqlite"]["completeness"] == 0.0
    assert (result.quality.subtasks["postgres"]["q"] or 0.0) > 0.7  # the branch that ran


def judge_reply(score: float) -> str:
    return json.dumps(
        {
            d: {"score": score, "reason": f"{d} ok"}
            for d in ("completeness", "accuracy", "coherence")
        }
    )


def judged(reply: object) -> ScriptedLLM:
    def answer(messages: Sequence[Message]) -> str:
        return GOOD.get(step_of(messages), "out")

    return ScriptedLLM(rules=[Rule(r"^Request:\n.*\n\nStep:", reply)], default=answer)  # type: ignore[arg-type]


async def test_the_llm_judge_scores_the_content() -> None:
    settings = fast_settings()
    settings.quality.judge = "always"
    llm = judged(judge_reply(0.4))
    result = await Engine(settings, llm=llm).run(REQUEST)
    assert result.quality is not None and result.quality.method == "judge"
    assert result.quality.subtasks["postgres"]["completeness"] == 0.4
    judge_calls = [c for c in llm.calls if "You grade one answer" in c.messages[0].content]
    assert len(judge_calls) == 3
    assert "Answer:\nPostgreSQL is a client-server" in judge_calls[0].messages[-1].content
    # what judging cost is in the call log and the totals, per subtask judged
    assessed = [c for c in result.llm_calls if c.stage == "assess"]
    assert sorted(c.subtask_id or "" for c in assessed) == sorted(result.results)
    assert result.totals.llm_calls == len(llm.calls)
    assert result.totals.tokens_in == sum(c.tokens_in for c in result.llm_calls)


async def test_a_judge_with_broken_json_is_repaired_or_replaced() -> None:
    settings = fast_settings()
    settings.quality.judge = "always"
    result = await Engine(settings, llm=judged('{"completeness": {"score": 0.9, "rea')).run(REQUEST)
    assert result.quality is not None
    assert result.quality.method == "judge"
    assert any("judge failed on 3 subtask(s)" in w for w in result.warnings)
    assert result.quality.q >= 0.6  # the heuristic scores of good outputs stand in
    # an answer and its repair for each of the 3 subtasks, failed but paid for
    assert len([c for c in result.llm_calls if c.stage == "assess"]) == 6


async def test_the_judge_runs_for_multi_agent_plans_by_default() -> None:
    from automatos import AgentSpec

    agents = tuple(AgentSpec(name=n) for n in ("a1", "a2", "a3"))
    request = REQUEST.model_copy(
        update={
            "agents": agents,
            "subtasks": tuple(
                s.model_copy(update={"agent": a.name})
                for s, a in zip(REQUEST.subtasks or (), agents, strict=True)
            ),
        }
    )
    result = await Engine(fast_settings(), llm=judged(judge_reply(0.9))).run(request)
    assert result.quality is not None and result.quality.method == "judge"
