"""A whole workflow on the embedded model: no key, no network, no configuration."""

from automatos import Engine, Settings, SubtaskStatus, WorkflowStatus


async def test_the_default_engine_runs_a_real_multi_subtask_workflow() -> None:
    settings = Settings()
    settings.plan.numbered_max_steps = 3
    settings.llm.local_max_tokens = 64
    async with Engine(settings) as engine:
        result = await engine.run("List two uses of a hash map, then summarise them.")
    assert result.status in (WorkflowStatus.SUCCEEDED, WorkflowStatus.PARTIAL)
    executed = [r for r in result.results.values() if r.status is SubtaskStatus.SUCCEEDED]
    assert len(result.plan.subtasks) >= 2
    assert len(executed) >= 2
    assert all(r.tokens_out > 0 for r in executed)
    assert result.llm_calls[0].model == "gemma-3-270m-q4_k_m"
