"""``automatos run`` stopped by a signal: Ctrl-C (SIGINT) or SIGTERM (what ``timeout``, a CI's
cancel and process managers send) records the run interrupted and says how to resume it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.fake_servers import FakeLLMServer, Reply, openai_chat

RECIPE = """\
request: Look at this slowly.
subtasks:
  - id: slow
    description: a long look
"""


def respond(path: str, body: dict[str, Any]) -> Reply:
    reply = openai_chat("a look")
    reply.delay_s = 30.0  # the step is still running when the signal comes
    return reply


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_records_the_run_interrupted_and_says_how_to_resume(
    tmp_path: Path, stop: signal.Signals
) -> None:
    (tmp_path / "slow.yaml").write_text(RECIPE)
    with FakeLLMServer(respond) as server:
        env = {
            **os.environ,
            "HOME": str(tmp_path),
            "AUTOMATOS_STORE__DATA_DIR": str(tmp_path / "data"),
            "AUTOMATOS_LLM__PROVIDER": "openai",
            "AUTOMATOS_LLM__BASE_URL": server.base_url,
            "AUTOMATOS_LLM__MODEL": "fake-model",
            "AUTOMATOS_CONTEXT__ENABLED": "false",
            "AUTOMATOS_MEMORY__ENABLED": "false",
        }
        command = [sys.executable, "-m", "automatos.cli", "run", "--recipe", "slow.yaml"]
        process = subprocess.Popen(
            command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        try:
            deadline = time.monotonic() + 60
            while not server.requests:  # the step's model call is on its way
                assert process.poll() is None, process.communicate()
                assert time.monotonic() < deadline
                time.sleep(0.05)
            process.send_signal(stop)
            _, err = process.communicate(timeout=30)
        finally:
            process.kill()
    said = err.decode()
    assert process.returncode == 130, said
    assert "interrupted; go on with it: automatos runs resume" in said
    listed = subprocess.run(
        [sys.executable, "-m", "automatos.cli", "runs", "list"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "interrupted" in listed.stdout, listed.stdout + listed.stderr
