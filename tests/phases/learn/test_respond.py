from collections.abc import Sequence

from automatos import Engine, SubtaskSpec, WorkflowRequest, WorkflowStatus
from automatos.llm.base import Message
from automatos.testing import Fault, Rule, ScriptedLLM
from tests.conftest import fast_settings, step_of


def request(*specs: tuple[str, tuple[str, ...]]) -> WorkflowRequest:
    return WorkflowRequest(
        text="compare things",
        subtasks=tuple(SubtaskSpec(id=s, description=f"step {s}", depends_on=d) for s, d in specs),
    )


def answer(messages: Sequence[Message]) -> str:
    return f"out:{step_of(messages)}"


async def test_one_sink_is_the_answer() -> None:
    result = await Engine(fast_settings(), llm=ScriptedLLM(default=answer)).run(
        request(("a", ()), ("b", ("a",)))
    )
    assert result.final_answer == "out:b"
    assert [c.stage for c in result.llm_calls] == ["execute", "execute"]


async def test_several_sinks_are_synthesised_in_one_call() -> None:
    llm = ScriptedLLM(rules=[Rule("^Request:", "the combined answer")], default=answer)
    result = await Engine(fast_settings(), llm=llm).run(request(("a", ()), ("b", ())))
    assert result.final_answer == "the combined answer"
    synthesis = llm.calls[-1].messages[-1].content
    assert "## a\nout:a" in synthesis
    assert "## b\nout:b" in synthesis
    assert "compare things" in synthesis
    assert [c.stage for c in result.llm_calls][-1] == "respond"
    assert result.totals.llm_calls == 3


async def test_a_failed_synthesis_falls_back_to_the_sections() -> None:
    settings = fast_settings()
    settings.llm.max_retries = 0
    llm = ScriptedLLM(rules=[Rule("^Request:", Fault.server_error())], default=answer)
    result = await Engine(settings, llm=llm).run(request(("a", ()), ("b", ())))
    assert result.final_answer == "## a\nout:a\n\n## b\nout:b"
    assert result.warnings
    assert "synthesis failed" in result.warnings[0]


async def test_the_frontier_answers_when_a_sink_is_skipped() -> None:
    settings = fast_settings(max_attempts=1)
    settings.llm.max_retries = 0

    def reply(messages: Sequence[Message]) -> str | Fault:
        return Fault.server_error() if step_of(messages) == "c" else answer(messages)

    result = await Engine(settings, llm=ScriptedLLM(default=reply)).run(
        request(("a", ()), ("b", ("a",)), ("c", ("a",)), ("d", ("b", "c")))
    )
    assert result.status is WorkflowStatus.PARTIAL
    assert result.final_answer == "out:b"


async def test_totals_add_up() -> None:
    result = await Engine(fast_settings(), llm=ScriptedLLM(default="abcd" * 5)).run(
        request(("a", ()), ("b", ("a",)))
    )
    t = result.totals
    assert t.tokens_out == 10
    assert t.llm_calls == 2
    assert t.tokens_in == sum(r.tokens_in for r in result.results.values())
    assert t.wall_time_s > 0
    assert t.by_status == {"succeeded": 2, "failed": 0, "skipped": 0, "cancelled": 0}


async def test_a_synthesis_of_many_long_results_fits_the_budget() -> None:
    settings = fast_settings(max_quoted_chars=2000)
    llm = ScriptedLLM(rules=[Rule("^Request:", "combined")], default=lambda m: "w" * 3000)
    specs = [(f"s{i}", ()) for i in range(8)]
    result = await Engine(settings, llm=llm).run(request(*specs))
    assert result.final_answer == "combined"
    synthesis = llm.calls[-1].messages[-1].content
    assert all(f"## s{i}\n" + "w" * 250 + "\n[… truncated]" in synthesis for i in range(8))
    assert synthesis.count("w") == 8 * 250


async def test_a_failed_synthesis_keeps_the_whole_results() -> None:
    settings = fast_settings(max_quoted_chars=100)
    settings.llm.max_retries = 0
    llm = ScriptedLLM(rules=[Rule("^Request:", Fault.server_error())], default=lambda m: "w" * 300)
    result = await Engine(settings, llm=llm).run(request(("a", ()), ("b", ())))
    assert result.final_answer == "## a\n" + "w" * 300 + "\n\n## b\n" + "w" * 300
