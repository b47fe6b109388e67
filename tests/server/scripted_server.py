"""A real server process for the shutdown test: ``python -m tests.server.scripted_server
DATA PORT GRACE``. Its scripted model answers in 50 ms, or in 5 s for a request that says
"dawdle", so that one workflow ends within the grace and another cannot."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from automatos.cli.serve import run_server
from automatos.llm.base import Message
from automatos.server.app import create_app
from automatos.settings import ServerSettings
from automatos.testing import ScriptedLLM
from tests.conftest import planner
from tests.server.conftest import settings_in


def _latency(messages: Sequence[Message]) -> float:
    return 5.0 if any("dawdle" in m.content.lower() for m in messages) else 0.05


def main(data: str, port: str, grace: str) -> None:
    llm = ScriptedLLM(
        rules=[planner({"id": "one", "description": "Say one thing"})],
        default="A fair and specific answer about databases, with facts and a conclusion.",
        latency=_latency,
    )
    server = ServerSettings(shutdown_grace_s=float(grace))
    app = create_app(settings_in(Path(data), server), llm=llm, anonymous=True)
    run_server(app, "127.0.0.1", int(port), log_level="warning")


if __name__ == "__main__":
    main(*sys.argv[1:4])
