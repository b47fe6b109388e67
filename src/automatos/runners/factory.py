"""The runner a setting chooses (``runner.kind``): the orchestrator does not change with it."""

from __future__ import annotations

from automatos.llm.base import LLMProvider
from automatos.runners.base import TaskRunner
from automatos.runners.local import LocalTaskRunner
from automatos.settings import RunnerSettings

__all__ = ["build_runner"]


def build_runner(settings: RunnerSettings, llm: LLMProvider) -> TaskRunner:
    """``local``: tasks run in this process with ``llm``; ``queued``: they go through Redis
    to ``automatos worker`` processes, which call their own model (``llm`` is not used).

    Nothing connects here: the queued runner connects on its first task.
    """
    if settings.kind == "queued":
        from automatos.runners.queued import QueuedTaskRunner  # redis is imported only then

        return QueuedTaskRunner(settings)
    return LocalTaskRunner(llm)
