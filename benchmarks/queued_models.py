"""The model and the ARQ job of the worker processes ``benchmarks/queued.py`` starts.

``automatos worker --provider queued_models:scripted`` (with ``benchmarks/`` on
``PYTHONPATH``) and ``python -m arq queued_models.ArqWorker`` (ARQ's worker settings, tuned:
the queue polled every ``BENCH_ARQ_POLL_S`` instead of 0.5 s, ``BENCH_ARQ_MAX_JOBS`` jobs at
once, per-job logs off) both call :func:`scripted`: a scripted model that records nothing
and sleeps ``BENCH_QUEUED_LATENCY_S`` seconds on a step call (none on any other call), as
``benchmarks/scheduling.py``'s model does in-process. The variables are not ``AUTOMATOS_*``
ones: the settings would warn about names they do not know.

The ARQ job runs what a queued worker runs for one job: the job's wire JSON decoded
(:func:`~automatos.runners.wire.decode_job`), the task given to
:func:`~automatos.runners.executor.execute` with the model wrapped as the worker wraps it,
and the answer encoded (:func:`~automatos.runners.wire.encode_result`), so that the two
queues compare on the same work per job and differ only in how jobs travel.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from automatos.errors import SubtaskTimeoutError
from automatos.llm.base import LLMProvider
from automatos.llm.factory import wrap_provider
from automatos.runners.executor import execute
from automatos.runners.wire import decode_job, encode_error, encode_result
from automatos.settings import Settings
from automatos.testing import ScriptedLLM

__all__ = ["LATENCY_VARIABLE", "READY", "model", "run_task", "scripted"]

LATENCY_VARIABLE = "BENCH_QUEUED_LATENCY_S"
"""Seconds a step call sleeps in a worker process (0 by default)."""
_ARQ_QUEUE = "BENCH_ARQ_QUEUE"
_ARQ_MAX_JOBS = "BENCH_ARQ_MAX_JOBS"
_ARQ_POLL_S = "BENCH_ARQ_POLL_S"
_MARK = "Your step ("
READY = "benchmark worker ready"
"""What an ARQ worker logs once it can take jobs."""


def scripted(settings: Settings) -> ScriptedLLM:
    """The worker's model (``--provider queued_models:scripted``)."""
    return model(float(os.environ.get(LATENCY_VARIABLE, "0")))


def model(latency: float) -> ScriptedLLM:
    """A model that answers ``ok``, after ``latency`` seconds on a step call."""
    return ScriptedLLM(
        default="ok",
        latency=lambda messages: latency if _MARK in messages[-1].content else 0.0,
        record=False,
    )


async def run_task(ctx: dict[str, Any], payload: bytes) -> bytes:
    """ARQ's job: one queued job's wire JSON in, its answer's wire JSON out."""
    job = decode_job(payload)
    llm: LLMProvider = ctx["llm"]
    left = job.deadline - time.time()
    if left <= 0:
        return encode_error(job.job, SubtaskTimeoutError(f"{job.subtask.id} arrived late"))
    try:
        done = await execute(llm, job.task())
    except Exception as exc:
        return encode_error(job.job, exc)
    return encode_result(job.job, done)


async def _startup(ctx: dict[str, Any]) -> None:
    settings = Settings()
    ctx["llm"] = wrap_provider(
        scripted(settings), settings.llm, cancel_grace_s=settings.execution.cancel_grace_s
    )
    # ARQ logs two lines per job at INFO: a benchmark of its queue should not time its logs.
    logging.getLogger("arq").info("%s", READY)
    logging.getLogger("arq").setLevel(logging.WARNING)


def __getattr__(name: str) -> Any:
    """``ArqWorker``, made when ARQ's command asks for it: only ARQ's worker processes import
    ARQ (and run it on uvloop, as ``automatos worker`` runs)."""
    if name != "ArqWorker":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import asyncio

    import uvloop
    from arq.connections import RedisSettings

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return {
        "functions": (run_task,),
        "redis_settings": RedisSettings.from_dsn(
            os.environ.get("BENCH_ARQ_REDIS_URL", "redis://127.0.0.1:6379/0")
        ),
        "on_startup": _startup,
        "queue_name": os.environ.get(_ARQ_QUEUE, "arq:queue"),
        "max_jobs": int(os.environ.get(_ARQ_MAX_JOBS, "1000")),
        "poll_delay": float(os.environ.get(_ARQ_POLL_S, "0.02")),
        "keep_result": 60,  # long enough to be read
        "max_tries": 1,  # retries are the orchestrator's
        "log_results": False,
        "job_timeout": 60,
    }
