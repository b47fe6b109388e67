"""``automatos worker``: run queued agent tasks (:class:`~automatos.runners.worker.Worker`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from automatos.cli.output import EXIT_NO_MODEL, EXIT_USAGE, fail, load_settings
from automatos.cli.plugins import attribute, python_tools

if TYPE_CHECKING:
    from automatos.llm.base import LLMProvider
    from automatos.settings import Settings

__all__ = ["worker"]


def worker(
    concurrency: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Jobs run at once (default: runner.worker_concurrency, "
            "AUTOMATOS_RUNNER__WORKER_CONCURRENCY, 200).",
        ),
    ] = None,
    redis_url: Annotated[
        str | None,
        typer.Option(
            help="The queue's Redis (default: runner.redis_url, "
            "AUTOMATOS_RUNNER__REDIS_URL, redis://127.0.0.1:6379/0)."
        ),
    ] = None,
    queue: Annotated[
        str | None,
        typer.Option(
            help="The queue's name (default: runner.queue, AUTOMATOS_RUNNER__QUEUE, automatos)."
        ),
    ] = None,
    grace: Annotated[
        float,
        typer.Option(
            min=0,
            help="On SIGTERM or Ctrl-C, seconds running jobs may take before they are "
            "handed back to the queue (a second Ctrl-C or SIGTERM hands them back at once).",
        ),
    ] = 30.0,
    provider: Annotated[
        str | None,
        typer.Option(
            help="A model provider of your own, as module:name: an LLMProvider, or a "
            "class or function of the settings that returns one (default: the model the "
            "llm.* settings configure)."
        ),
    ] = None,
    tool: Annotated[
        list[str] | None,
        typer.Option(
            help="A Python tool the agents may call, as module:name: a function with type "
            "hints and a docstring, or a Tool object. Repeat for more. Give the workers the "
            "tools the orchestrator's Engine(tools=...) has.",
        ),
    ] = None,
) -> None:
    """Run agent tasks from the queue until SIGTERM or Ctrl-C.

    Orchestrators (automatos run, serve, the library) send their tasks here when runner.kind
    is queued (AUTOMATOS_RUNNER__KIND=queued).

    Start as many workers as you like, on any machine that reaches the queue's Redis; each
    needs the model settings, not the database."""
    from pydantic import ValidationError

    from automatos import aio
    from automatos.errors import AutomatosError, ConfigurationError
    from automatos.llm.factory import build_provider, wrap_provider
    from automatos.llm.structured import describe_fields
    from automatos.runners.worker import Worker

    settings = load_settings()
    update = {k: v for k, v in {"redis_url": redis_url, "queue": queue}.items() if v is not None}
    try:
        runner = settings.runner.model_validate({**settings.runner.model_dump(), **update})
    except ValidationError as exc:
        raise fail(f"--queue or --redis-url: {describe_fields(exc)}", EXIT_USAGE) from None
    try:
        model = _plugin(provider, settings) if provider else build_provider(settings.llm)
    except ConfigurationError as exc:
        raise fail(exc, EXIT_NO_MODEL) from None
    llm = wrap_provider(model, settings.llm, cancel_grace_s=settings.execution.cancel_grace_s)
    extra = python_tools(tool)
    job_runner = Worker(
        runner, llm, concurrency=concurrency, grace_s=grace, tools=settings.tools, extra_tools=extra
    )
    try:
        aio.run(_serve(job_runner, model))
    except AutomatosError as exc:
        raise fail(exc) from None


async def _serve(job_runner: object, model: LLMProvider) -> None:
    import asyncio
    import logging
    import signal
    import time

    from automatos.runners.keys import safe_url
    from automatos.runners.worker import Worker

    assert isinstance(job_runner, Worker)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if stop.is_set():  # the second: no more waiting for running jobs
            job_runner.hand_back_now()
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    settings = job_runner.settings
    started = time.monotonic()

    async def report() -> None:
        await job_runner.ready.wait()
        typer.echo(
            f"worker {job_runner.name}: queue {settings.queue!r} on "
            f"{safe_url(settings.redis_url)}, {job_runner.concurrency} job(s) at once; "
            "Ctrl-C or SIGTERM stops it",
            err=True,
        )
        shown = -1
        while True:
            await asyncio.sleep(10)
            stats = job_runner.stats
            if stats.answered != shown:
                shown = stats.answered
                typer.echo(
                    f"{stats.answered} job(s) answered ({stats.failed} with an error), "
                    f"{stats.reclaimed} taken over, in {time.monotonic() - started:.0f} s",
                    err=True,
                )

    reporting = asyncio.create_task(report())
    try:
        stats = await job_runner.run(stop)
    finally:
        reporting.cancel()
        close = getattr(model, "aclose", None)
        if close is not None:
            await close()
    typer.echo(
        f"worker stopped: {stats.answered} answered, {stats.failed} with an error, "
        f"{stats.withdrawn} withdrawn, {stats.handed_back} handed back",
        err=True,
    )


def _plugin(path: str, settings: Settings) -> LLMProvider:
    """The provider ``module:name`` names (an object, or a factory of the settings)."""
    from automatos.errors import describe_exception, describe_kind
    from automatos.llm.base import LLMProvider

    found = attribute(path, "--provider")
    # A class is a factory too (a class has a ``complete`` attribute: it would pass for a
    # provider, and fail at every job).
    if isinstance(found, type) or (callable(found) and not isinstance(found, LLMProvider)):
        try:
            found = found(settings)
        except Exception as exc:
            raise fail(f"--provider {path!r} failed: {describe_exception(exc)}") from None
    if isinstance(found, type) or not isinstance(found, LLMProvider):
        raise fail(
            f"--provider {path!r} gave {describe_kind(found)}, not an LLMProvider (an object "
            "with async complete(messages, ...) returning a Completion)",
            EXIT_USAGE,
        )
    return found
