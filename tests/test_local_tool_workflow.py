"""A tool loop on the embedded model, end to end: no key, no network, no configuration.

The 270M model writes its tool calls through the JSON-constrained fallback (a grammar that
allows a call of an offered tool or a final answer): a calculator question answered through
the calculator, every model call of the loop accounted, within its bounds. (The model is too
small for most such questions: this one it gets right.)"""

from automatos import (
    AgentSpec,
    Engine,
    Settings,
    SubtaskSpec,
    SubtaskStatus,
    WorkflowRequest,
)
from automatos.settings import ToolSettings


async def test_the_embedded_model_calls_the_calculator_through_the_tool_loop() -> None:
    settings = Settings()
    settings.store.enabled = False
    settings.llm.local_max_tokens = 64
    settings.tools = ToolSettings(max_calls=2)
    calc = AgentSpec(
        name="calc", description="Does arithmetic with the calculator", tools=("calculator",)
    )
    request = WorkflowRequest(
        text="What is 1234 * 5678? Use the calculator.",
        subtasks=(SubtaskSpec(id="multiply", description="Multiply 1234 by 5678", agent="calc"),),
        agents=(calc,),
    )
    async with Engine(settings) as engine:
        result = await engine.run(request)
    step = result.results["multiply"]
    assert step.tool_calls, "the model made no tool call"
    assert all(use.tool == "calculator" for use in step.tool_calls)
    assert len(step.tool_calls) <= 2  # tools.max_calls
    calls = [c for c in result.llm_calls if c.subtask_id == "multiply"]
    assert len(calls) >= 2  # a call, then an answer (or the forced final one)
    assert all(c.model == "gemma-3-270m-q4_k_m" for c in calls)
    assert step.tokens_in == sum(c.tokens_in for c in calls) > 0
    assert step.tokens_out == sum(c.tokens_out for c in calls) > 0
    # The answer is the calculator's: the prompt shows an answer taken from a tool's result,
    # and the repeat penalty (which dropped its repeated digits: "70,652") is off. Sampling is
    # seeded, so the same model on the same prompt answers the same.
    assert step.status is SubtaskStatus.SUCCEEDED, step.error
    assert any(use.outcome == "ok" for use in step.tool_calls)
    assert "7006652" in (step.output or "").replace(",", ""), step.output
