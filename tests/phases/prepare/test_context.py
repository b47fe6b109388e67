"""Stage 3 in whole workflows: the real embedder, a real store (SQLite and PostgreSQL), the
knowledge base's chunks reaching the prompt of the subtasks that require context only."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from automatos import ContextSelected, Engine, Settings, WorkflowRequest
from automatos.domain.event import Event
from automatos.domain.level import Level
from automatos.domain.plan import SubtaskSpec
from automatos.llm.base import Message, estimate_tokens
from automatos.phases.execute.prompt import CONTEXT_HEADING, MEMORY_HEADING
from automatos.phases.prepare.context import LEVEL_BUDGETS
from automatos.retrieval.embedder import LocalEmbedder, Vectors
from automatos.retrieval.factory import tokenizer_of
from automatos.retrieval.ingest import ingest
from automatos.settings import ExecutionSettings, LLMSettings, MemorySettings, PlanLimits
from automatos.store.sql import SqlStore
from automatos.testing import ScriptedLLM
from tests.store.conftest import StoreTarget, store_target  # noqa: F401

GUIDE = """# Frobnicator guide

## Installing

Run the installer with the --prefix option to choose where the frobnicator lives. The
installer checks the compiler, the linker and the free disk space before copying any file,
and refuses to continue when less than two gigabytes are free.

## The retry setting

The frobnicator retries a failed upload seven times, waiting twice as long after each
attempt, starting from half a second. Set FROB_RETRIES to change how many attempts are made;
zero turns retrying off entirely and makes the first failure final.

## Colours

The dashboard paints healthy nodes green, degraded nodes amber and failed nodes crimson, and
it refreshes every fifteen seconds unless the operator pauses it from the toolbar.
"""

QUESTION = "How many times does the frobnicator retry a failed upload?"
HEADINGS = estimate_tokens(f"{CONTEXT_HEADING}\n\n{MEMORY_HEADING}\n\n")
"""What the context's headings take of its budget (the scripted model counts by estimate)."""


@pytest.fixture(scope="module")
def minilm() -> Iterator[LocalEmbedder]:
    embedder = LocalEmbedder()
    yield embedder
    embedder.close()


class Counting:
    """An embedder that counts what it is asked, or fails when told to."""

    def __init__(self, inner: LocalEmbedder, fail: bool = False) -> None:
        self.inner, self.fail = inner, fail
        self.name, self.dimension = inner.name, inner.dimension
        self.texts: list[str] = []

    async def embed(self, texts: Sequence[str]) -> Vectors:
        self.texts += texts
        if self.fail:
            raise RuntimeError("the embedding service is down")
        return await self.inner.embed(texts)


def settings(level: Level = Level.MOLECULE, **memory: bool) -> Settings:
    return Settings(
        llm=LLMSettings(timeout_s=5, max_retries=0),
        execution=ExecutionSettings(retry_backoff_s=0.001),
        plan=PlanLimits(level=level),
        memory=MemorySettings(**memory),
    )


@pytest.fixture
async def store(store_target: StoreTarget, tmp_path: Path) -> AsyncIterator[SqlStore]:  # noqa: F811
    s = await store_target.open()
    yield s
    await s.aclose()


async def _add_guide(store: SqlStore, embedder: LocalEmbedder, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "guide.md").write_text(GUIDE)
    name, count = tokenizer_of(settings())
    report = await ingest(
        [docs],
        store,
        embedder,
        tokenizer=name,
        count_tokens=count,
        settings=settings().context,
    )
    assert [f.outcome for f in report.files] == ["added"]


def _user(messages: Sequence[Message]) -> str:
    return messages[-1].content


async def test_the_relevant_chunk_reaches_the_prompt_and_the_run_says_why(
    store: SqlStore, minilm: LocalEmbedder, tmp_path: Path
) -> None:
    await _add_guide(store, minilm, tmp_path)
    llm = ScriptedLLM(default="Seven times.")
    events: list[Event] = []
    async with Engine(settings(), llm=llm, store=store, embedder=minilm) as engine:
        result = await engine.run(QUESTION, on_event=events.append)
    prompt = _user(llm.calls[0].messages)
    assert "retries a failed upload seven times" in prompt
    assert "dashboard paints" not in prompt  # the other sections are not relevant enough
    record = result.context["task"]
    assert record.retrieved and len(record.items) == 1
    item = record.items[0]
    assert item.title.endswith("guide.md > Frobnicator guide > The retry setting")
    assert 0.7 < item.relevance <= 1.0 and item.tokens <= record.tokens <= record.budget
    assert record.budget == LEVEL_BUDGETS[Level.MOLECULE] - HEADINGS
    assert record.candidates == 3 and record.dropped_by == {"relevance": 2}
    selected = [e for e in events if isinstance(e, ContextSelected)]
    assert [e.subtask_id for e in selected] == ["task"]
    assert selected[0].items[0]["id"] == item.id and selected[0].dropped_by == {"relevance": 2}
    stored = await store.get_run(result.workflow_id)
    assert stored is not None
    kept = stored.extra["context"]["task"]
    assert kept["items"][0]["id"] == item.id and "text" not in kept["items"][0]
    assert kept["dropped_by"] == {"relevance": 2}


async def test_only_subtasks_that_require_context_retrieve(
    store: SqlStore, minilm: LocalEmbedder, tmp_path: Path
) -> None:
    await _add_guide(store, minilm, tmp_path)
    embedder = Counting(minilm)
    request = WorkflowRequest(
        text="Find the retry setting, then write it up",
        subtasks=(
            SubtaskSpec(id="facts", description=QUESTION, requires_context=True),
            SubtaskSpec(id="write", description="Write it up in one line", depends_on=("facts",)),
        ),
    )
    llm = ScriptedLLM(default=lambda m: "out:" + ("facts" if "facts)" in _user(m) else "write"))
    async with Engine(settings(), llm=llm, store=store, embedder=embedder) as engine:
        result = await engine.run(request)
    assert result.status.value == "succeeded"
    assert embedder.texts[0] == QUESTION  # the one query embedded; then stage 8's memories
    assert result.context["facts"].items and not result.context["write"].retrieved
    assert "requires_context: false" in result.context["write"].reason
    prompts = {
        step: _user(c.messages)
        for c in llm.calls
        for step in ("facts", "write")
        if f"({step})" in _user(c.messages)
    }
    assert "seven times" in prompts["facts"]
    assert "Context (" not in prompts["write"] and "out:facts" in prompts["write"]


async def test_an_empty_knowledge_base_embeds_nothing_and_says_how_to_fill_it(
    store: SqlStore, minilm: LocalEmbedder
) -> None:
    embedder = Counting(minilm)
    async with Engine(
        settings(enabled=False),
        llm=ScriptedLLM(default="Seven times."),
        store=store,
        embedder=embedder,
    ) as engine:
        result = await engine.run(QUESTION)
    assert embedder.texts == []
    assert not result.context["task"].retrieved
    assert "automatos kb add" in result.context["task"].reason


async def test_a_failing_embedder_costs_the_context_not_the_workflow(
    store: SqlStore, minilm: LocalEmbedder, tmp_path: Path
) -> None:
    await _add_guide(store, minilm, tmp_path)
    embedder = Counting(minilm, fail=True)
    async with Engine(
        settings(), llm=ScriptedLLM(default="Seven times."), store=store, embedder=embedder
    ) as engine:
        result = await engine.run(QUESTION)
    assert result.status.value == "succeeded"
    assert "the embedding service is down" in result.context["task"].reason
    assert any("could not embed" in w for w in result.warnings)
    assert any("memories" in w for w in result.warnings)  # stage 8 could not embed either


@pytest.mark.parametrize(("window", "budget"), [(100_000, 200), (600, 150)])
async def test_an_atoms_budget_is_200_tokens_within_a_share_of_the_window(
    store: SqlStore, minilm: LocalEmbedder, tmp_path: Path, window: int, budget: int
) -> None:
    await _add_guide(store, minilm, tmp_path)
    s = settings(Level.ATOM)
    s.llm.profile.context_window = window
    async with Engine(s, llm=ScriptedLLM(default="7"), store=store, embedder=minilm) as engine:
        result = await engine.run(QUESTION)
    record = result.context["task"]
    assert record.budget == budget - HEADINGS and 0 < record.tokens <= record.budget


async def test_the_optimiser_off_takes_the_nearest_items_that_fit(
    store: SqlStore, minilm: LocalEmbedder, tmp_path: Path
) -> None:
    await _add_guide(store, minilm, tmp_path)
    s = settings()
    s.context.optimize = False
    s.context.naive_k = 2
    async with Engine(s, llm=ScriptedLLM(default="7"), store=store, embedder=minilm) as engine:
        result = await engine.run(QUESTION)
    record = result.context["task"]
    assert len(record.items) == 2 and record.items[0].title.endswith("The retry setting")
    assert record.items[0].relevance >= record.items[1].relevance
    assert np.isclose(sum(i.tokens for i in record.items), record.tokens)


async def test_context_never_pushes_the_prompt_past_the_window(
    store: SqlStore, minilm: LocalEmbedder, tmp_path: Path
) -> None:
    await _add_guide(store, minilm, tmp_path)
    s = settings()
    s.llm.profile.context_window = 1_000  # 250 tokens of context, 125 kept for the answer
    s.llm.max_tokens = 200
    long_question = QUESTION + " " + "Please answer with care. " * 118  # ~780 tokens in all
    llm = ScriptedLLM(default="Seven times.")
    async with Engine(s, llm=llm, store=store, embedder=minilm) as engine:
        result = await engine.run(long_question)
    assert result.status.value == "succeeded"
    assert result.context["task"].items  # chosen within its budget by stage 3 ...
    prompt = "\n\n".join(m.content for m in llm.calls[0].messages)
    assert estimate_tokens(prompt) <= 1_000 - 125  # ... and left out to fit the window
    assert "Context (" not in prompt
    assert any("left out to fit the model's window" in w for w in result.warnings)
