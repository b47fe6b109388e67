"""Chaos: seeded workflows whose runner, provider, scorer or event subscriber misbehaves.

Each workflow must return a result (every subtask with exactly one result) or raise a typed
error, within its deadline; no task of it is left pending and nothing is logged as an
exception that was never retrieved. The misbehaviours are those a third-party plugin shows:
``None`` or a wrong type returned, any exception raised (``CancelledError`` nobody asked for,
``GeneratorExit``, ``KeyboardInterrupt`` included), a hang, a hang that ignores its first
cancellation, an empty or garbage answer, a method that is not even a coroutine.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from automatos import (
    AutomatosError,
    Engine,
    Event,
    Settings,
    SubtaskFinished,
    SubtaskSkipped,
    SubtaskSpec,
    WorkflowRequest,
    WorkflowResult,
)
from automatos.abandoned import ABANDONED
from automatos.domain.plan import Subtask
from automatos.llm.base import Completion, Message
from automatos.runners.base import AgentTask
from automatos.runners.local import LocalTaskRunner
from automatos.settings import (
    ExecutionSettings,
    LLMSettings,
    QualitySettings,
    StoreSettings,
)
from automatos.testing import ScriptedLLM
from tests.conftest import plan_json, step_of

SEEDS = range(200)

MODES = (
    "none",
    "wrong_type",
    "text_none",
    "value_error",
    "cancelled",
    "generator_exit",
    "keyboard_interrupt",
    "hang",
    "stubborn",
    "empty",
    "garbage",
    "not_awaitable",
    "bad_fields",
    "unprintable",
    "deaf",
)
"""What a misbehaving plugin does on the calls where it misbehaves."""


class Unprintable(Exception):
    """An exception whose message cannot be made."""

    def __str__(self) -> str:
        raise RuntimeError("no message for you")


async def misbehave(mode: str, rng: random.Random) -> Any:
    """Act out ``mode``: return what it returns, raise what it raises."""
    if mode == "none":
        return None
    if mode == "wrong_type":
        return rng.choice(["just text", {"text": "a dict"}, 42, b"bytes"])
    if mode == "text_none":
        return Completion(None, "chaos", 1, 1, 0.0)  # type: ignore[arg-type]
    if mode == "value_error":
        raise ValueError("chaos: a bug in the plugin")
    if mode == "cancelled":
        raise asyncio.CancelledError
    if mode == "generator_exit":
        raise GeneratorExit
    if mode == "keyboard_interrupt":
        raise KeyboardInterrupt
    if mode == "hang":
        await asyncio.Event().wait()
    if mode == "stubborn":  # swallows its first cancellation, then answers a little later
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            await asyncio.sleep(rng.choice([0.01, 0.05, 0.4]))
        return Completion("late answer", "chaos", 1, 1, 0.0)
    if mode == "empty":
        return Completion(rng.choice(["", "   \n", "\u200b"]), "chaos", 1, 0, 0.0)
    if mode == "bad_fields":
        return rng.choice(
            [
                Completion("fine", "chaos", None, 1, 0.0),  # type: ignore[arg-type]
                Completion("fine", "chaos", 1, 1, 0.0, cost_usd=float("nan")),
                Completion("fine", None, 1, 1, 0.0),  # type: ignore[arg-type]
                Completion("fine", "chaos", -5, 1, 0.0),
            ]
        )
    if mode == "unprintable":
        raise Unprintable
    if mode == "deaf":  # ignores every cancellation for a while, then answers
        loop = asyncio.get_running_loop()
        until = loop.time() + rng.choice([0.3, 0.8])
        while loop.time() < until:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(until - loop.time())
        return Completion("very late answer", "chaos", 1, 1, 0.0)
    if mode == "garbage":
        return Completion(
            rng.choice(["<eos>", "<|im_end|>", " [PAD] </s> ", "\ufffd…"]), "c", 1, 1, 0
        )
    raise AssertionError(mode)


@dataclass
class Chaos:
    """Decides, call by call, whether a plugin misbehaves and how."""

    rng: random.Random
    modes: Sequence[str]
    rate: float
    log: Counter[str] = field(default_factory=Counter)

    def pick(self) -> str | None:
        if self.rng.random() >= self.rate:
            return None
        mode = self.rng.choice(self.modes)
        self.log[mode] += 1
        return mode


class ChaosLLM:
    """A provider that misbehaves at random; otherwise the scripted model answers."""

    def __init__(self, inner: ScriptedLLM, chaos: Chaos | None) -> None:
        self.inner = inner
        self.chaos = chaos

    def complete(self, messages: Sequence[Message], **options: Any) -> Any:
        mode = self.chaos.pick() if self.chaos else None
        if mode == "not_awaitable":
            return "a plain value where a coroutine belongs"
        if mode is None:
            return self.inner.complete(messages, **options)
        assert self.chaos is not None
        return misbehave(mode, self.chaos.rng)


class ChaosRunner:
    """A task runner that misbehaves at random; otherwise it runs the task locally."""

    def __init__(self, inner: LocalTaskRunner, chaos: Chaos | None) -> None:
        self.inner = inner
        self.chaos = chaos

    def run(self, task: AgentTask) -> Any:
        mode = self.chaos.pick() if self.chaos else None
        if mode == "not_awaitable":
            return None
        if mode is None:
            return self.inner.run(task)
        assert self.chaos is not None
        return misbehave(mode, self.chaos.rng)

    async def aclose(self) -> None:
        await self.inner.aclose()


class ChaosScorer:
    """A custom scorer that misbehaves at random; otherwise it scores 0.8."""

    def __init__(self, chaos: Chaos) -> None:
        self.chaos = chaos

    def score(self, request: str, subtask: Subtask, output: str) -> Any:
        mode = self.chaos.pick()
        if mode == "not_awaitable":
            return 0.5
        if mode is None:
            return _constant(0.8)
        wrong = {"text_none": float("nan"), "empty": "0.9", "garbage": 7.0, "bad_fields": None}
        if mode in wrong:
            return _constant(wrong[mode])
        return misbehave(mode, self.chaos.rng)


async def _constant(value: object) -> object:
    return value


def chaos_subscriber(chaos: Chaos, seen: list[Event]) -> Any:
    """An event callback that raises, at a random event, something of any type."""
    fail_at = chaos.rng.randint(1, 12)
    kind = chaos.rng.choice(["value", "base", "keyboard", "cancelled", "async"])
    chaos.log[f"subscriber:{kind}"] += 1

    if kind == "async":

        async def on_event_async(event: Event) -> None:
            seen.append(event)

        return on_event_async

    def on_event(event: Event) -> None:
        seen.append(event)
        if event.seq == fail_at:
            if kind == "value":
                raise ValueError("the display broke")
            if kind == "base":
                raise GeneratorExit
            if kind == "keyboard":
                raise KeyboardInterrupt
            raise asyncio.CancelledError

    return on_event


def random_recipe(rng: random.Random) -> tuple[SubtaskSpec, ...]:
    n = rng.randint(1, 6)
    specs = []
    for i in range(n):
        deps = tuple(f"s{j}" for j in range(i) if rng.random() < 0.35)
        specs.append(SubtaskSpec(id=f"s{i}", description=f"part {i} of the job", depends_on=deps))
    return tuple(specs)


@dataclass
class Case:
    """One seeded workflow: its settings, its plugins, and what misbehaves."""

    seed: int
    settings: Settings
    request: WorkflowRequest
    llm: Any
    runner: Any
    scorer: Any
    on_event: Any
    target: str
    seen: list[Event]
    chaos: Chaos
    via_stream: bool

    def engine(self) -> Engine:
        return Engine(self.settings, llm=self.llm, runner=self.runner, scorer=self.scorer)

    @property
    def bound_s(self) -> float:
        """Longest the workflow may take before the test calls it a hang."""
        timeout = self.settings.execution.workflow_timeout_s
        grace = self.settings.execution.cancel_grace_s
        if timeout is not None:
            return timeout + 2 * grace + 1.5
        return 20.0


def make_case(seed: int, tmp_path: Path) -> Case:
    rng = random.Random(seed)
    target = rng.choice(["runner", "provider", "scorer", "subscriber"])
    chaos = Chaos(rng, MODES, rate=rng.choice([0.2, 0.4, 0.7]))
    recipe = random_recipe(rng)
    use_recipe = rng.random() < 0.7
    scripted = ScriptedLLM(
        default=lambda messages: (
            plan_json(*[s.model_dump() for s in recipe])
            if messages[-1].content.startswith("Request:")
            else f"an answer for {step_of(messages) or 'the request'}"
        ),
        latency=lambda _: rng.choice([0.0, 0.0, 0.005, 0.02]),
    )
    store = rng.random() < 0.15
    settings = Settings(
        llm=LLMSettings(timeout_s=5, max_retries=1, backoff_base_s=0.001, backoff_max_s=0.005),
        execution=ExecutionSettings(
            max_concurrency=rng.choice([1, 2, 8]),
            subtask_timeout_s=0.15,
            max_attempts=rng.choice([1, 2, 3]),
            retry_backoff_s=0.002,
            cancel_grace_s=0.1,
            workflow_timeout_s=rng.choice([None, None, 0.05, 0.3, 1.0]),
        ),
        store=StoreSettings(enabled=store, data_dir=tmp_path / "store"),
        quality=QualitySettings(judge=rng.choice(["never", "always"]), scorer_timeout_s=0.2),
    )
    seen: list[Event] = []
    llm: Any = ChaosLLM(scripted, chaos if target == "provider" else None)
    return Case(
        seed=seed,
        settings=settings,
        request=WorkflowRequest(
            text=f"chaos workflow {seed}", subtasks=recipe if use_recipe else None
        ),
        llm=llm,
        runner=None if target != "runner" else "chaos",
        scorer=ChaosScorer(chaos) if target == "scorer" else None,
        on_event=chaos_subscriber(chaos, seen) if target == "subscriber" else seen.append,
        target=target,
        seen=seen,
        chaos=chaos,
        via_stream=target != "subscriber" and rng.random() < 0.3,
    )


def engine_of(case: Case) -> Engine:
    engine = case.engine()
    if case.runner == "chaos":
        engine.runner = ChaosRunner(LocalTaskRunner(engine.llm), case.chaos)
    return engine


async def run_case(case: Case, engine: Engine) -> WorkflowResult | AutomatosError:
    try:
        async with engine:
            if case.via_stream:
                async with engine.stream(case.request, max_buffered=4) as stream:
                    async for event in stream:
                        case.seen.append(event)
                        await asyncio.sleep(0)  # a reader slower than the workflow
                return stream.result
            return await engine.run(case.request, on_event=case.on_event)
    except AutomatosError as exc:
        return exc


def check_accounting(case: Case, result: WorkflowResult) -> None:
    """Every subtask has exactly one result, announced exactly once."""
    plan_ids = [s.id for s in result.plan.subtasks]
    assert sorted(result.results) == sorted(plan_ids)
    for sid, r in result.results.items():
        assert r.subtask_id == sid
        if r.status.value != "succeeded":
            assert r.error is not None or r.status.value == "skipped"
        else:
            assert r.output and r.output.strip()
    if case.target == "subscriber":
        return  # the subscriber is dropped part-way: its view is partial by design
    ends = Counter(
        e.subtask_id for e in case.seen if isinstance(e, SubtaskFinished | SubtaskSkipped)
    )
    assert ends == Counter(plan_ids), ends


@pytest.mark.parametrize("seed", SEEDS)
async def test_every_workflow_ends(seed: int, tmp_path: Path) -> None:
    case = make_case(seed, tmp_path)
    loop = asyncio.get_running_loop()
    unhandled: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: unhandled.append(context))
    before = asyncio.all_tasks()
    engine = engine_of(case)
    # Creating and migrating a new store is the engine's start, not the workflow's: untimed
    # (it took 0.3 s of a 2 s bound here, and all of it on a busy CI machine).
    await engine.open_store()
    started = loop.time()
    try:
        outcome = await asyncio.wait_for(run_case(case, engine), case.bound_s)
    finally:
        await engine.aclose()  # closed already unless the bound was hit
    took = loop.time() - started
    note = f"seed {seed}: {case.target} {dict(case.chaos.log)}"
    if isinstance(outcome, AutomatosError):
        assert str(outcome), note
    else:
        check_accounting(case, outcome)
    assert took < case.bound_s, note
    # Plugins that ignored their cancellation were abandoned; they end on their own (the
    # stubborn ones here within 0.4 s), and nothing else of the workflow may be left.
    await asyncio.sleep(0.01)
    left = [t for t in asyncio.all_tasks() - before if t is not asyncio.current_task()]
    if left:
        await asyncio.wait(left, timeout=2)
    assert not [t for t in left if not t.done()], f"{note}: pending {left}"
    assert not ABANDONED.intersection(left)
    assert not unhandled, f"{note}: {unhandled}"
