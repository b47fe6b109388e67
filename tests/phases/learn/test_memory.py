"""Stage 8 in whole workflows on SQLite and PostgreSQL: memories written after a run, merged
across runs, and recalled through stage 3 by later runs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Sequence

import pytest

from automatos import Engine, MemoriesStored, Settings, WorkflowRequest
from automatos.domain.event import Event
from automatos.domain.level import Level
from automatos.domain.plan import Subtask, SubtaskSpec
from automatos.retrieval.embedder import LocalEmbedder, Vectors
from automatos.settings import ExecutionSettings, LLMSettings, PlanLimits
from automatos.store.sql import SqlStore
from automatos.testing import ScriptedLLM
from tests.store.conftest import StoreTarget, store_target  # noqa: F401

ANSWER = (
    "The lighthouse keeper logs the tide tables every morning at six, checks the lamp's "
    "clockwork, trims the wick and records passing ships in the harbour ledger."
)


@pytest.fixture(scope="module")
def minilm() -> Iterator[LocalEmbedder]:
    """The embedder, loaded: runs embed their memories at once (see ``NotLoaded`` for the
    other case)."""
    embedder = LocalEmbedder()
    asyncio.run(embedder.embed(["load the model"]))
    yield embedder
    embedder.close()


@pytest.fixture
async def store(store_target: StoreTarget) -> AsyncIterator[SqlStore]:  # noqa: F811
    s = await store_target.open()
    yield s
    await s.aclose()


class Fixed:
    """A scorer that gives every output the same score."""

    def __init__(self, score: float) -> None:
        self.value = score

    async def score(self, request: str, subtask: Subtask, output: str) -> float:
        return self.value


def settings(level: Level) -> Settings:
    return Settings(
        llm=LLMSettings(timeout_s=5, max_retries=0),
        execution=ExecutionSettings(retry_backoff_s=0.001, max_retries=0),
        plan=PlanLimits(level=level),
    )


async def test_a_run_leaves_an_episode_and_what_its_agent_did(
    store: SqlStore, minilm: LocalEmbedder
) -> None:
    events: list[Event] = []
    async with Engine(
        settings(Level.MOLECULE), llm=ScriptedLLM(default=ANSWER), store=store, embedder=minilm
    ) as engine:
        result = await engine.run("What does a lighthouse keeper do?", on_event=events.append)
    assert "memory" in result.stages
    [stored] = [e for e in events if isinstance(e, MemoriesStored)]
    assert stored.stored == {"episodic": 1, "agent": 1}  # no scores at Molecule: no lesson
    episode = await store.memories("episodic")
    assert len(episode) == 1 and episode[0].workflow_id == result.workflow_id
    assert "What does a lighthouse keeper do?" in episode[0].text
    assert "tide tables" in episode[0].text
    [agent] = await store.memories("agent")
    assert agent.agent == result.assignments[0].agent and agent.succeeded is True
    assert agent.tokens > 0 and agent.entropy > 4.0 and agent.embedder == minilm.name


async def test_a_failure_is_remembered_under_its_agent(
    store: SqlStore, minilm: LocalEmbedder
) -> None:
    llm = ScriptedLLM(default=lambda messages: "")  # an empty answer fails the subtask
    async with Engine(settings(Level.MOLECULE), llm=llm, store=store, embedder=minilm) as engine:
        result = await engine.run("What does a lighthouse keeper do?")
    assert result.status.value == "failed"
    [agent] = await store.memories("agent")
    assert agent.succeeded is False and "failed" in agent.text


async def test_well_scored_outputs_become_one_lesson_merged_across_runs(
    store: SqlStore, minilm: LocalEmbedder
) -> None:
    request = WorkflowRequest(
        text="Describe the lighthouse keeper's morning",
        subtasks=(SubtaskSpec(id="morning", description="Describe a lighthouse keeper's morning"),),
    )
    for score in (0.9, 0.95):
        async with Engine(
            settings(Level.CELL),
            llm=ScriptedLLM(default=ANSWER),
            store=store,
            embedder=minilm,
            scorer=Fixed(score),
        ) as engine:
            await engine.run(request.model_copy(update={"workflow_id": f"wf-{score}"}))
    [lesson] = await store.memories("collective")
    assert lesson.count == 2 and lesson.quality == pytest.approx(0.95)
    assert lesson.workflow_id == "wf-0.95"
    assert len(await store.memories("episodic")) == 2


async def test_a_poorly_scored_output_teaches_no_lesson(
    store: SqlStore, minilm: LocalEmbedder
) -> None:
    async with Engine(
        settings(Level.CELL),
        llm=ScriptedLLM(default=ANSWER),
        store=store,
        embedder=minilm,
        scorer=Fixed(0.3),
    ) as engine:
        await engine.run("Describe a lighthouse keeper's morning")
    assert await store.memories("collective") == []


async def test_a_later_run_recalls_the_earlier_one_through_stage_3(
    store: SqlStore, minilm: LocalEmbedder
) -> None:
    async with Engine(
        settings(Level.MOLECULE), llm=ScriptedLLM(default=ANSWER), store=store, embedder=minilm
    ) as engine:
        first = await engine.run("What does a lighthouse keeper do every morning?")
    second_llm = ScriptedLLM(default="He logs the tides.")
    async with Engine(
        settings(Level.MOLECULE), llm=second_llm, store=store, embedder=minilm
    ) as engine:
        second = await engine.run("What does a lighthouse keeper do in the morning?")
    record = second.context["task"]
    recalled = [i for i in record.items if i.kind in ("episodic", "agent")]
    assert recalled, record
    assert any(first.workflow_id[:12] in i.title for i in recalled)
    prompt = second_llm.calls[0].messages[-1].content
    assert "tide tables" in prompt and "Earlier runs' notes (unverified" in prompt


async def test_memory_off_writes_nothing_and_recall_off_reads_nothing(
    store: SqlStore, minilm: LocalEmbedder
) -> None:
    s = settings(Level.MOLECULE)
    s.memory.enabled = False
    async with Engine(s, llm=ScriptedLLM(default=ANSWER), store=store, embedder=minilm) as engine:
        result = await engine.run("What does a lighthouse keeper do?")
    assert "memory" not in result.stages and result.level is not None
    assert result.level.skipped["memory"] == "memory.enabled is off"
    assert await store.memories() == []
    s = settings(Level.MOLECULE)
    async with Engine(s, llm=ScriptedLLM(default=ANSWER), store=store, embedder=minilm) as engine:
        await engine.run("What does a lighthouse keeper do?")
    s.memory.recall = False
    async with Engine(s, llm=ScriptedLLM(default=ANSWER), store=store, embedder=minilm) as engine:
        result = await engine.run("What does a lighthouse keeper do?")
    assert not result.context["task"].retrieved  # memories exist, but are not recalled


class NotLoaded:
    """The real embedder, as one not loaded yet: ``ready`` is false until it is used."""

    def __init__(self, inner: LocalEmbedder) -> None:
        self.inner, self.name, self.dimension = inner, inner.name, inner.dimension
        self.ready = False
        self.calls = 0

    async def embed(self, texts: Sequence[str]) -> Vectors:
        self.calls += 1
        self.ready = True
        return await self.inner.embed(texts)


async def test_without_a_loaded_embedder_memories_wait_for_the_next_recall(
    store: SqlStore, minilm: LocalEmbedder
) -> None:
    embedder = NotLoaded(minilm)
    events: list[Event] = []
    async with Engine(
        settings(Level.ATOM), llm=ScriptedLLM(default="168"), store=store, embedder=embedder
    ) as engine:
        await engine.run("What is 12 * 14?", on_event=events.append)  # nothing to retrieve
    assert embedder.calls == 0  # no model loaded for an Atom's memories
    [stored] = [e for e in events if isinstance(e, MemoriesStored)]
    assert stored.pending and stored.stored == {"episodic": 1, "agent": 1}
    assert len(await store.pending_memories(minilm.name)) == 2
    assert (await store.memory_matrix(minilm.name))[0] == []

    async with Engine(
        settings(Level.ATOM), llm=ScriptedLLM(default=ANSWER), store=store, embedder=embedder
    ) as engine:
        result = await engine.run("What did the earlier run compute for 12 times 14?")
    assert await store.pending_memories(minilm.name) == []  # embedded by the recall
    recalled = [i for i in result.context["task"].items if i.kind == "episodic"]
    assert recalled and "not scored" in recalled[0].title
    assert len((await store.memory_matrix(minilm.name))[0]) == 4  # both runs', embedded


async def test_a_poorly_scored_run_is_not_recalled(store: SqlStore, minilm: LocalEmbedder) -> None:
    for score, request in ((0.2, "Describe a lighthouse keeper's morning"), (0.9, "unrelated")):
        async with Engine(
            settings(Level.CELL),
            llm=ScriptedLLM(default=ANSWER),
            store=store,
            embedder=minilm,
            scorer=Fixed(score),
        ) as engine:
            await engine.run(request)
    [low] = [m for m in await store.memories("episodic") if m.quality == pytest.approx(0.2)]
    async with Engine(
        settings(Level.MOLECULE), llm=ScriptedLLM(default="?!"), store=store, embedder=minilm
    ) as engine:
        result = await engine.run("What does a lighthouse keeper do in the morning?")
    ids = {i.id for i in result.context["task"].items}
    assert f"memory:{low.id}" not in ids
    assert all("quality 0.2" not in i.title for i in result.context["task"].items)
