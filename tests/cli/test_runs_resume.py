"""``automatos runs resume``: an interrupted run goes on from its store, printed as ``automatos
run`` prints; a run that cannot be resumed is one error line and exit code 1."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from typer.testing import CliRunner

from automatos import Engine, Settings, WorkflowRequest
from automatos.cli import app
from automatos.domain.agent import DEFAULT_AGENT
from automatos.llm.base import Message
from automatos.settings import PlanLimits
from automatos.store.sql import SqlStore
from automatos.testing import ScriptedLLM
from tests.conftest import planner, step_of
from tests.support.fake_servers import FakeLLMServer, Reply, openai_chat

PLAN = (
    {"id": "facts", "description": "list the facts"},
    {"id": "slow", "description": "a long look"},
    {"id": "summary", "description": "summarise", "depends_on": ["facts", "slow"]},
)

runner = CliRunner()


def respond(path: str, body: dict[str, Any]) -> Reply:
    """The model the command uses: answers each step (it never plans: the plan is stored)."""
    prompt = body["messages"][-1]["content"]
    if "Your step (" not in prompt:
        return openai_chat("not a step")
    step = prompt.split("Your step (")[1].split(")")[0]
    return openai_chat(f"answer of {step}")


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLLMServer]:
    monkeypatch.setenv("AUTOMATOS_CONTEXT__ENABLED", "false")
    monkeypatch.setenv("AUTOMATOS_MEMORY__ENABLED", "false")
    with FakeLLMServer(respond) as s:
        monkeypatch.setenv("AUTOMATOS_LLM__PROVIDER", "openai")
        monkeypatch.setenv("AUTOMATOS_LLM__BASE_URL", s.base_url)
        monkeypatch.setenv("AUTOMATOS_LLM__MODEL", "fake-model")
        yield s


def _interrupted_run() -> str:
    """A run of :data:`PLAN` in the command's store, stopped with its server while ``slow``
    runs (``facts`` done); its id."""

    def latency(messages: Sequence[Message]) -> float:
        return 60.0 if step_of(messages) == "slow" else 0.0

    async def run() -> str:
        settings = Settings(plan=PlanLimits(level="organ"))
        store = await SqlStore.open(settings.store)
        try:
            await store.save_agents([DEFAULT_AGENT])
            llm = ScriptedLLM(
                rules=[planner(*PLAN)],
                default=lambda m: f"first answer of {step_of(m)}",
                latency=latency,
            )
            engine = Engine(settings, llm=llm, store=store)
            request = WorkflowRequest(text="tell me about graphs")
            task = asyncio.create_task(engine.run(request))
            async with asyncio.timeout(30):
                while True:  # until facts' result is stored
                    run = await store.get_run(request.workflow_id)
                    if run is not None and run.results:
                        break
                    await asyncio.sleep(0.02)
            engine.begin_shutdown()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await engine.aclose()
            run = await store.get_run(request.workflow_id)
            assert run is not None and run.status == "interrupted"
            return request.workflow_id
        finally:
            await store.aclose()

    return asyncio.run(run())


def _steps(server: FakeLLMServer) -> list[str]:
    prompts = [body["messages"][-1]["content"] for _, body in server.requests]
    return sorted(p.split("Your step (")[1].split(")")[0] for p in prompts if "Your step (" in p)


def test_an_interrupted_run_is_resumed_and_its_answer_printed(server: FakeLLMServer) -> None:
    workflow_id = _interrupted_run()
    result = runner.invoke(app, ["runs", "resume", workflow_id[:10]])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().endswith("answer of summary")
    assert "succeeded: 3 succeeded" in result.output
    assert _steps(server) == ["slow", "summary"]  # facts was done: not asked again

    shown = runner.invoke(app, ["runs", "show", workflow_id, "--json"])
    assert shown.exit_code == 0, shown.output
    run = json.loads(shown.stdout)
    assert run["status"] == "succeeded" and run["final_answer"] == "answer of summary"
    outputs = {r["subtask_id"]: r["output"] for r in run["results"]}
    assert outputs == {
        "facts": "first answer of facts",  # from the first process, quoted by summary
        "slow": "answer of slow",
        "summary": "answer of summary",
    }
    summary_prompt = next(
        body["messages"][-1]["content"]
        for _, body in server.requests
        if "Your step (summary)" in body["messages"][-1]["content"]
    )
    assert "first answer of facts" in summary_prompt

    again = runner.invoke(app, ["runs", "resume", workflow_id])
    assert again.exit_code == 1
    assert "cannot be resumed: it succeeded; only an interrupted run can be resumed" in (
        again.output
    )


def test_resume_prints_json(server: FakeLLMServer) -> None:
    workflow_id = _interrupted_run()
    result = runner.invoke(app, ["runs", "resume", workflow_id, "--json", "--quiet"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["workflow_id"] == workflow_id and data["status"] == "succeeded"
    assert data["results"]["facts"]["output"] == "first answer of facts"
    assert data["totals"]["llm_calls"] == 4  # the plan, facts (before); slow, summary (now)


def test_an_unknown_run_is_one_line_and_exit_code_1(server: FakeLLMServer) -> None:
    result = runner.invoke(app, ["runs", "resume", "nope"])
    assert result.exit_code == 1
    assert "no stored run has an id starting with 'nope'" in result.output
    assert server.requests == []


def test_a_disabled_store_has_nothing_to_resume(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOMATOS_STORE__ENABLED", "false")
    result = runner.invoke(app, ["runs", "resume", "abc"])
    assert result.exit_code == 1
    assert "the store is disabled" in result.output
