"""Models for worker processes started by the tests (``automatos worker --provider
tests.runners.worker_models:scripted``), configured by ``WORKER_TEST_*`` variables:

- ``WORKER_TEST_LATENCY``: seconds a step call takes (0 by default);
- ``WORKER_TEST_CALLS``: a file each step call appends its subtask id to (one line a call);
- ``WORKER_TEST_FAIL``: ``sid:n,...``: the first n calls of subtask sid fail (a provider
  error, retryable), counted per process;
- ``WORKER_TEST_SPANS``: a file each step call appends ``sid start end`` to when it ends
  (``time.time()``), to count the calls that ran at once.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

from automatos.errors import ProviderUnavailableError
from automatos.llm.base import Message
from automatos.settings import Settings
from automatos.testing import ScriptedLLM

MARK = "Your step ("


def step_of(messages: Sequence[Message]) -> str | None:
    """The id of the subtask a step prompt is for, if it is one."""
    text = messages[-1].content
    start = text.find(MARK)
    if start < 0:
        return None
    start += len(MARK)
    return text[start : text.index(")", start)]


def answer(messages: Sequence[Message]) -> str:
    """A step's answer names its subtask and its dependencies' answers' lengths (so that a
    dependent's answer changes if a dependency's output does)."""
    sid = step_of(messages)
    if sid is None:
        return "Final answer: every step is done."
    return f"Result of {sid} after reading {len(messages[-1].content)} characters."


class _Scripted(ScriptedLLM):
    """A scripted model that logs and fails step calls as the variables say."""

    async def complete(self, messages: Sequence[Message], **kwargs: object):  # type: ignore[no-untyped-def]
        sid = step_of(messages)
        log = os.environ.get("WORKER_TEST_CALLS")
        if log and sid is not None:
            _append(log, f"{sid}\n")
        if sid is not None and _failures.get(sid, 0) > 0:
            _failures[sid] -= 1
            raise ProviderUnavailableError(f"scripted failure of {sid}")
        started = time.time()
        done = await super().complete(messages, **kwargs)  # type: ignore[arg-type]
        spans = os.environ.get("WORKER_TEST_SPANS")
        if spans and sid is not None:
            _append(spans, f"{sid} {started} {time.time()}\n")
        return done


def _append(path: str, line: str) -> None:
    with open(path, "a", encoding="utf-8") as out:
        out.write(line)


def _parse_failures(text: str) -> dict[str, int]:
    failures: dict[str, int] = {}
    for item in filter(None, text.split(",")):
        sid, _, times = item.partition(":")
        failures[sid] = int(times or 1)
    return failures


_failures = _parse_failures(os.environ.get("WORKER_TEST_FAIL", ""))


def scripted(settings: Settings) -> ScriptedLLM:
    """The worker's model."""
    latency = float(os.environ.get("WORKER_TEST_LATENCY", "0"))
    return _Scripted(
        default=answer,
        latency=lambda m: latency if step_of(m) is not None else 0.0,
        record=False,
    )


class EchoProvider:
    """A provider class a plugin author would write: made from the settings."""

    def __init__(self, settings: Settings) -> None:
        self.model = settings.llm.model

    async def complete(self, messages: Sequence[Message], **kwargs: object) -> object:
        from automatos.llm.base import Completion

        return Completion(messages[-1].content[:50], self.model, 1, 1, 0.0)
