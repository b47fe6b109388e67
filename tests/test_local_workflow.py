"""A whole workflow on the embedded model: no key, no network, no configuration."""

import os
import subprocess
import sys
from pathlib import Path

from automatos import Engine, Settings, SubtaskStatus, WorkflowStatus


async def test_the_default_engine_runs_a_real_multi_subtask_workflow() -> None:
    settings = Settings()
    settings.llm.local_max_tokens = 64
    async with Engine(settings) as engine:
        result = await engine.run("List two uses of a hash map, then summarise them.")
    assert result.status in (WorkflowStatus.SUCCEEDED, WorkflowStatus.PARTIAL)
    executed = [r for r in result.results.values() if r.status is SubtaskStatus.SUCCEEDED]
    assert len(result.plan.subtasks) >= 2
    assert len(executed) >= 2
    assert all(r.tokens_out > 0 for r in executed)
    assert result.llm_calls[0].model == "gemma-3-270m-q4_k_m"


def test_what_the_program_prints_while_the_model_loads_reaches_the_terminal(
    tmp_path: Path,
) -> None:
    # Loading used to point file descriptors 1 and 2 at /dev/null for a second or two: an
    # error raised meanwhile (here the deadline's, during the first model call) was lost.
    env = {**os.environ, "HOME": str(tmp_path), "AUTOMATOS_EXECUTION__WORKFLOW_TIMEOUT_S": "0.3"}
    env = {k: v for k, v in env.items() if not k.startswith("AUTOMATOS_") or "TIMEOUT" in k}
    done = subprocess.run(
        [sys.executable, "-m", "automatos.cli", "run", "Write a short poem", "--quiet"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert "task cancelled: WorkflowTimeoutError" in done.stderr  # the one step, cut short
    assert "llama" not in done.stderr.lower()  # and what llama.cpp says while loading does not
