"""The shared context in Redis (against the real one at 127.0.0.1:6379), and the coordination
stage opening it through the runner."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from redis.asyncio import Redis

from automatos import Engine, SubtaskSpec, WorkflowRequest, WorkflowStatus
from automatos.domain.collaboration import Finding
from automatos.field import redis_context
from automatos.field.base import SharedContext
from automatos.field.redis_context import (
    CorruptFindingError,
    RedisSharedContext,
    SharedContextError,
)
from automatos.llm.base import Message
from automatos.runners.keys import QueueKeys
from automatos.runners.local import LocalTaskRunner
from automatos.settings import StoreSettings
from automatos.store.sql import SqlStore
from automatos.testing import Rule, ScriptedLLM
from tests.conftest import fast_settings, plan_json, step_of
from tests.phases.crashing_run import one_agent, settings_for

HOST, PORT = "127.0.0.1", 6379


async def reply(command: Any) -> Any:
    """A command's reply (redis-py types the asyncio client's commands as sync or async)."""
    return await command


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    client = Redis(host=HOST, port=PORT)
    yield client
    await client.aclose()


@pytest.fixture
async def prefix(redis: Redis) -> AsyncIterator[str]:
    """A prefix no other test uses; every key under it is deleted after the test."""
    prefix = f"automatos-test-{uuid4().hex}"
    yield prefix
    keys = [key async for key in redis.scan_iter(match=f"{prefix}:*")]
    if keys:
        await reply(redis.delete(*keys))


def context(
    client: Redis, prefix: str, workflow_id: str = "wf", **options: float
) -> RedisSharedContext:
    settings: dict[str, float] = {"ttl_s": 60.0, "io_timeout_s": 5.0, **options}
    return RedisSharedContext(client, workflow_id, prefix=prefix, **settings)


async def test_findings_are_numbered_from_one_and_read_from_an_id_on(
    redis: Redis, prefix: str
) -> None:
    shared = context(redis, prefix)
    assert isinstance(shared, SharedContext)
    assert shared.key == QueueKeys(prefix).shared("wf") == f"{prefix}:shared:wf"
    assert await shared.findings() == []  # nothing yet, and nothing written by reading
    assert await reply(redis.exists(shared.key)) == 0

    first = await shared.add("fact", "the launch date moved", "research", "analyst")
    second = await shared.add("decision", "launch on 14 March", "plan", "planner", (1,))
    third = await shared.add("question", "who caters? «ünïcode»", "plan", "planner")
    assert (first.id, second.id, third.id) == (1, 2, 3)
    assert second == Finding(
        id=2,
        kind="decision",
        text="launch on 14 March",
        subtask_id="plan",
        agent="planner",
        contradicts=(1,),
    )
    assert await shared.findings() == [first, second, third]
    assert await shared.findings(after=-1) == [first, second, third]
    assert await shared.findings(after=1) == [second, third]
    assert await shared.findings(after=3) == []
    assert await shared.findings(after=10) == []
    # stored as the Finding's JSON, one field per id, next to the count
    stored = await reply(redis.hgetall(shared.key))
    assert stored[b"count"] == b"3"
    assert Finding.model_validate_json(stored[b"2"]) == second


async def test_a_long_catch_up_is_read_in_batches(
    redis: Redis, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(redis_context, "READ_BATCH", 7)
    shared = context(redis, prefix)
    for i in range(23):
        await shared.add("fact", f"fact {i}", "s", "a")
    assert [f.text for f in await shared.findings()] == [f"fact {i}" for i in range(23)]
    assert [f.id for f in await shared.findings(after=6)] == list(range(7, 24))


async def test_concurrent_adds_from_two_clients_get_every_id_once(
    redis: Redis, prefix: str
) -> None:
    one, two = Redis(host=HOST, port=PORT), Redis(host=HOST, port=PORT)
    try:
        left, right = context(one, prefix), context(two, prefix)
        added = await asyncio.gather(
            *(
                (left if i % 2 else right).add("fact", f"fact {i}", f"s{i}", "agent")
                for i in range(200)
            )
        )
    finally:
        await one.aclose()
        await two.aclose()
    assert sorted(f.id for f in added) == list(range(1, 201))
    read = await context(redis, prefix).findings()
    assert [f.id for f in read] == list(range(1, 201))
    # each id holds the finding its add was given
    assert sorted(read, key=lambda f: f.text) == sorted(added, key=lambda f: f.text)


ADDER = """
import asyncio, sys
from redis.asyncio import Redis
from automatos.field.redis_context import RedisSharedContext

async def main(prefix, name):
    client = Redis(host="127.0.0.1", port=6379)
    shared = RedisSharedContext(client, "wf", prefix=prefix, ttl_s=60, io_timeout_s=10)
    await asyncio.gather(*(shared.add("fact", f"{name} {i}", "s", name) for i in range(50)))
    await client.aclose()

asyncio.run(main(*sys.argv[1:]))
"""


async def test_concurrent_adds_from_two_processes_get_every_id_once(
    redis: Redis, prefix: str
) -> None:
    adders = [
        await asyncio.create_subprocess_exec(sys.executable, "-c", ADDER, prefix, name)
        for name in ("p1", "p2")
    ]
    try:
        async with asyncio.timeout(120):
            codes = [await adder.wait() for adder in adders]
    finally:
        for adder in adders:
            if adder.returncode is None:
                adder.kill()
                await adder.wait()
    assert codes == [0, 0]
    read = await context(redis, prefix).findings()
    assert [f.id for f in read] == list(range(1, 101))
    assert sorted(f.text for f in read) == sorted(
        f"{name} {i}" for name in ("p1", "p2") for i in range(50)
    )


async def test_every_write_renews_the_ttl_and_a_read_does_not(redis: Redis, prefix: str) -> None:
    shared = context(redis, prefix, ttl_s=90.5)
    await shared.add("fact", "one", "s", "a")
    assert 80_000 < await reply(redis.pttl(shared.key)) <= 90_500
    await reply(redis.pexpire(shared.key, 2_000))
    await shared.findings()
    assert await reply(redis.pttl(shared.key)) <= 2_000
    await shared.add("fact", "two", "s", "a")
    assert 80_000 < await reply(redis.pttl(shared.key)) <= 90_500


async def test_a_closed_context_refuses_findings_and_keeps_what_it_has(
    redis: Redis, prefix: str
) -> None:
    shared = context(redis, prefix)
    kept = await shared.add("fact", "kept", "s", "a")
    await shared.aclose()
    await shared.aclose()  # closing twice is allowed
    assert shared.closed
    with pytest.raises(RuntimeError, match=r"closed.*subtask 'late' by 'b'"):
        await shared.add("fact", "too late", "late", "b")
    assert await shared.findings() == [kept]  # still readable, nothing deleted
    assert await reply(redis.hget(shared.key, "count")) == b"1"
    assert await reply(redis.ping())  # the client is the caller's: not closed


async def test_a_second_context_on_the_workflow_sees_the_first_ones_findings(
    redis: Redis, prefix: str
) -> None:
    first = context(redis, prefix)
    shared = [
        await first.add("fact", "the venue is booked", "research", "analyst"),
        await first.add("question", "who caters?", "research", "analyst"),
    ]
    await first.aclose()
    other = Redis(host=HOST, port=PORT)
    try:
        resumed = context(other, prefix)  # e.g. the orchestrator resuming the workflow
        assert await resumed.findings() == shared
        third = await resumed.add("decision", "the caterer is Rossi", "plan", "planner")
    finally:
        await other.aclose()
    assert third.id == 3
    assert await first.findings(after=2) == [third]
    # another workflow's context is its own
    assert await context(redis, prefix, workflow_id="other").findings() == []


async def test_an_unreachable_redis_is_a_typed_error_within_the_timeout() -> None:
    client = Redis(host=HOST, port=1)  # nothing listens there: the connection is refused
    try:
        shared = context(client, "p", io_timeout_s=2.0)
        for attempt in (shared.findings(), shared.add("fact", "lost", "s", "a")):
            started = time.perf_counter()
            with pytest.raises(SharedContextError) as caught:
                async with asyncio.timeout(30):  # fails fast, should the bound not hold
                    await attempt
            assert time.perf_counter() - started < 2.0 + 5.0
            assert caught.value.retryable and caught.value.key == "p:shared:wf"
            assert "'p:shared:wf'" in str(caught.value)
    finally:
        await client.aclose()


async def test_a_redis_that_does_not_answer_is_a_typed_error_after_the_timeout() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.read(4096):  # takes every command and answers none
            pass
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(silent, HOST, 0)
    port = server.sockets[0].getsockname()[1]
    client = Redis(host=HOST, port=port)
    try:
        shared = context(client, "p", io_timeout_s=0.3)
        started = time.perf_counter()
        with pytest.raises(SharedContextError, match=r"did not answer within 0.3 s") as caught:
            async with asyncio.timeout(30):
                await shared.add("fact", "lost", "s", "a")
        elapsed = time.perf_counter() - started
        assert 0.25 <= elapsed < 0.3 + 5.0 and caught.value.retryable
    finally:
        await client.aclose()
        server.close()
        await server.wait_closed()


async def test_a_corrupt_entry_is_named_by_key_and_id(redis: Redis, prefix: str) -> None:
    shared = context(redis, prefix)
    for text in ("one", "two", "three"):
        await shared.add("fact", text, "s", "a")
    key = shared.key

    await reply(redis.hset(key, "2", "not json {"))
    with pytest.raises(CorruptFindingError) as caught:
        await shared.findings()
    error = caught.value
    assert (error.key, error.finding_id, error.retryable) == (key, 2, False)
    assert f"shared context {key!r} holds a corrupt finding 2" in str(error)
    # only the ids after the reader's are read: the corrupt entry before them is not
    assert [f.text for f in await shared.findings(after=2)] == ["three"]

    await reply(redis.hset(key, "2", '{"id": 2, "kind": "rumour"}'))  # JSON, not a finding
    with pytest.raises(CorruptFindingError, match=r"corrupt finding 2: not the JSON of a find"):
        await shared.findings(after=1)
    await reply(redis.hset(key, "2", (await shared.findings(after=2))[0].model_dump_json()))
    with pytest.raises(CorruptFindingError, match=r"corrupt finding 2: the entry is numbered 3"):
        await shared.findings(after=1)
    await reply(redis.hdel(key, "2"))
    with pytest.raises(CorruptFindingError, match=r"corrupt finding 2: its entry is missing"):
        await shared.findings(after=1)
    await reply(redis.hset(key, "count", "many"))
    with pytest.raises(SharedContextError, match=r"holds b'many' as its count") as refused:
        await shared.findings()
    assert not refused.value.retryable


async def test_a_key_that_is_not_a_hash_is_refused_with_a_typed_error(
    redis: Redis, prefix: str
) -> None:
    shared = context(redis, prefix)
    await reply(redis.set(shared.key, "a string"))
    for attempt in (shared.findings(), shared.add("fact", "x", "s", "a")):
        with pytest.raises(SharedContextError, match="Redis refused it: ResponseError") as caught:
            await attempt
        assert not caught.value.retryable


async def test_a_context_needs_a_workflow_a_prefix_and_positive_bounds(redis: Redis) -> None:
    client = redis
    for workflow_id, prefix, ttl, timeout in (
        ("", "p", 1.0, 1.0),
        ("wf", "", 1.0, 1.0),
        ("wf", "p", 0.0, 1.0),
        ("wf", "p", 1.0, -1.0),
    ):
        with pytest.raises(ValueError, match=r"workflow id and a key prefix|must be > 0"):
            RedisSharedContext(client, workflow_id, prefix=prefix, ttl_s=ttl, io_timeout_s=timeout)


# The coordination stage opens the shared context through the runner, when it offers one.


class WithSharedContext(LocalTaskRunner):
    """A local runner that keeps its workflows' shared contexts in Redis, as the queued
    runner does."""

    def __init__(self, llm: ScriptedLLM, redis: Redis, prefix: str) -> None:
        super().__init__(llm)
        self.redis, self.prefix = redis, prefix
        self.opened: list[str] = []

    def shared_context(self, workflow_id: str) -> SharedContext:
        self.opened.append(workflow_id)
        return context(self.redis, self.prefix, workflow_id)


def two_steps(workflow_id: str = "launch") -> WorkflowRequest:
    return WorkflowRequest(
        text="Plan the product launch and announce it.",
        workflow_id=workflow_id,
        subtasks=(
            SubtaskSpec(id="research", description="check the launch facts"),
            SubtaskSpec(id="announce", description="announce it", depends_on=("research",)),
        ),
    )


def launch_llm(fact: str = "the launch date moved to 14 March") -> ScriptedLLM:
    def answer(messages: Sequence[Message]) -> str:
        step = step_of(messages)
        if step == "research":
            return f"Facts checked.\n\nFindings:\n- FACT: {fact}"
        if step == "announce":
            return "Announced."
        return "{}"

    return ScriptedLLM(default=answer)


def prompt_of(llm: ScriptedLLM, step: str) -> str:
    return next(c.messages[-1].content for c in llm.calls if step_of(c.messages) == step)


async def test_the_stage_opens_the_runners_shared_context(redis: Redis, prefix: str) -> None:
    llm = launch_llm()
    runner = WithSharedContext(llm, redis, prefix)
    result = await Engine(fast_settings(), llm=llm, runner=runner).run(two_steps())
    assert result.status is WorkflowStatus.SUCCEEDED and "coordinate" in result.stages
    assert runner.opened == ["launch"]
    assert [f.text for f in result.findings] == ["the launch date moved to 14 March"]
    # the finding went through Redis, and reached the next layer's prompt
    assert await context(redis, prefix, "launch").findings() == list(result.findings)
    assert '"the launch date moved to 14 March"' in prompt_of(llm, "announce")
    assert not any("shared context" in w for w in result.warnings)


async def test_a_resumed_workflow_reads_the_findings_already_in_redis(
    redis: Redis, prefix: str
) -> None:
    earlier = await context(redis, prefix, "launch").add(
        "decision", "the venue is the old mill", "research", "analyst"
    )
    llm = launch_llm()
    runner = WithSharedContext(llm, redis, prefix)
    result = await Engine(fast_settings(), llm=llm, runner=runner).run(two_steps())
    assert result.status is WorkflowStatus.SUCCEEDED
    assert '"the venue is the old mill"' in prompt_of(llm, "announce")
    assert [f.id for f in result.findings] == [2]  # this run's finding comes after it
    assert await context(redis, prefix, "launch").findings() == [earlier, *result.findings]


class BrokenHook(LocalTaskRunner):
    def __init__(self, llm: ScriptedLLM, opens: Callable[[], Any]) -> None:
        super().__init__(llm)
        self.opens = opens

    def shared_context(self, workflow_id: str) -> Any:
        return self.opens()


async def test_a_runner_whose_shared_context_fails_costs_the_sharing_across_processes() -> None:
    def fails() -> SharedContext:
        raise ConnectionError("no route to Redis")

    async def never() -> SharedContext:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    settings = fast_settings()
    settings.coordination.io_timeout_s = 0.2
    cases: list[tuple[Callable[[], Any], str]] = [
        (fails, "ConnectionError: no route to Redis"),
        (
            lambda: {"not": "a context"},
            "it returned dict {'not': 'a context'}, not a SharedContext",
        ),
        (never, "it did not open within 0.2 s"),
    ]
    for opens, problem in cases:
        llm = launch_llm()
        result = await Engine(settings, llm=llm, runner=BrokenHook(llm, opens)).run(two_steps())
        assert result.status is WorkflowStatus.SUCCEEDED
        # shared in process all the same
        assert [f.text for f in result.findings] == ["the launch date moved to 14 March"]
        assert '"the launch date moved to 14 March"' in prompt_of(llm, "announce")
        assert [w for w in result.warnings if "shared context" in w] == [
            "the shared context of runner BrokenHook could not be opened, the findings are "
            f"shared in this process only: {problem}"
        ]


# A resumed workflow's shared context holds exactly the findings its record kept.


async def test_a_reset_replaces_what_the_hash_held(redis: Redis, prefix: str) -> None:
    shared = context(redis, prefix, ttl_s=30.0)
    for text in ("old one", "old two", "old three"):
        await shared.add("fact", text, "lost", "analyst")
    kept = [
        Finding(id=1, kind="fact", text="kept «ünïcode»", subtask_id="a", agent="analyst"),
        Finding(
            id=2, kind="decision", text="kept two", subtask_id="b", agent="x", contradicts=(1,)
        ),
    ]
    await shared.reset(kept)
    assert await shared.findings() == kept
    assert 0 < await reply(redis.pttl(shared.key)) <= 30_000
    assert (await shared.add("question", "next", "c", "y")).id == 3  # numbered on
    other = context(redis, prefix)  # as another process sees it
    assert [f.text for f in await other.findings()] == ["kept «ünïcode»", "kept two", "next"]
    await shared.reset([])
    assert await reply(redis.exists(shared.key)) == 0 and await other.findings() == []
    with pytest.raises(ValueError, match=r"numbered 1, 2, … in order, not \[2\]"):
        await shared.reset([kept[1]])
    await shared.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await shared.reset(kept)


RESUMED_PLAN: tuple[dict[str, Any], ...] = (
    {"id": "research", "description": "check the launch facts"},
    {"id": "slow", "description": "book the venue"},
    {"id": "announce", "description": "announce it", "depends_on": ["research", "slow"]},
)


def resumable_llm(*, share_research: bool, slow_s: float) -> ScriptedLLM:
    """Plans :data:`RESUMED_PLAN`; ``research`` shares a finding if told, ``slow`` takes
    ``slow_s`` and shares one."""

    def answer(messages: Sequence[Message]) -> str:
        step = step_of(messages)
        if step == "research":
            return "Checked." + ("\n\nFindings:\n- FACT: kept fact" if share_research else "")
        if step == "slow":
            return "Booked.\n\nFindings:\n- FACT: fresh fact of the venue"
        return "Announced." if step == "announce" else "{}"

    def latency(messages: Sequence[Message]) -> float:
        return slow_s if step_of(messages) == "slow" else 0.0

    def planning(prompt: str) -> bool:
        return prompt.startswith("Request:\n") and "Results:" not in prompt

    return ScriptedLLM(
        rules=[Rule(planning, plan_json(*RESUMED_PLAN))], default=answer, latency=latency
    )


@pytest.mark.parametrize("share_research", [False, True], ids=["none-stored", "one-stored"])
async def test_a_resumed_run_resets_the_runners_shared_context_to_what_its_record_kept(
    redis: Redis, prefix: str, tmp_path: Path, share_research: bool
) -> None:
    """The first process stops while ``slow`` runs; Redis holds a finding of ``slow`` that
    the record does not (its answer was lost): the resumed run neither quotes it nor keeps
    it, and every process reading the hash sees the resumed run's findings only."""
    settings = settings_for(StoreSettings(data_dir=tmp_path))
    store = await SqlStore.open(settings.store)
    try:
        await one_agent(store)
        first_llm = resumable_llm(share_research=share_research, slow_s=60.0)
        first = Engine(
            settings, llm=first_llm, runner=WithSharedContext(first_llm, redis, prefix), store=store
        )
        task = asyncio.create_task(first.run(WorkflowRequest(text="launch", workflow_id="wf")))
        async with asyncio.timeout(60):
            while True:  # until research's result is stored (slow runs for a minute)
                run = await store.get_run("wf")
                if run is not None and run.results:
                    break
                await asyncio.sleep(0.05)
        first.begin_shutdown()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await first.aclose()
        stale = await context(redis, prefix).add("fact", "stale fact", "slow", "generalist")
        assert stale.id == (2 if share_research else 1)

        llm = resumable_llm(share_research=share_research, slow_s=0.0)
        runner = WithSharedContext(llm, redis, prefix)
        async with Engine(settings, llm=llm, runner=runner, store=store) as engine:
            result = await engine.resume("wf")
        assert result.status is WorkflowStatus.SUCCEEDED
        assert "wf" in runner.opened
        texts = [f.text for f in result.findings]
        assert texts == ["kept fact", "fresh fact of the venue"][0 if share_research else 1 :]
        assert [f.id for f in result.findings] == list(range(1, len(texts) + 1))
        prompt = prompt_of(llm, "announce")
        assert "stale fact" not in prompt and "fresh fact of the venue" in prompt
        assert ("kept fact" in prompt) is share_research
        assert await context(redis, prefix).findings() == list(result.findings)
        assert not any("shared context" in w for w in result.warnings)
    finally:
        await store.aclose()
