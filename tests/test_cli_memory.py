"""``automatos memory``: listing, searching and forgetting memories from the command line, over
memories kept through the store's own ``add_memories`` with vectors of the real embedder."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator, Sequence

import numpy as np
import pytest
from typer.testing import CliRunner, Result

from automatos.cli import app
from automatos.cli.memory import EMPTY_MEMORY
from automatos.cli.store import STORE_DISABLED
from automatos.llm.base import estimate_tokens
from automatos.memory.base import Memory, MemoryKind
from automatos.retrieval.embedder import LocalEmbedder
from automatos.retrieval.optimizer import word_entropy
from automatos.settings import Settings
from automatos.store.sql import SqlStore

runner = CliRunner()


@pytest.fixture(scope="module")
def minilm() -> Iterator[LocalEmbedder]:
    embedder = LocalEmbedder()
    yield embedder
    embedder.close()


def memory(
    kind: MemoryKind,
    text: str,
    run: str,
    *,
    agent: str | None = None,
    quality: float | None = None,
    succeeded: bool | None = None,
    embedder: str = "all-MiniLM-L6-v2",
) -> Memory:
    return Memory(
        id=0,
        kind=kind,
        text=text,
        workflow_id=run,
        agent=agent,
        task_type="research" if agent else None,
        quality=quality,
        succeeded=succeeded,
        count=1,
        tokens=estimate_tokens(text),
        entropy=word_entropy(text),
        embedder=embedder,
    )


SEEDS = [
    memory("episodic", "Request: summarise the quarterly sales report. Three steps ran.", "wf-1"),
    memory(
        "agent",
        "researcher looked up where llamas live: the Andes.",
        "wf-1",
        agent="researcher",
        quality=0.9,
        succeeded=True,
    ),
    memory(
        "collective",
        "Cite the source of every figure in a financial summary.",
        "wf-2",
        quality=0.85,
    ),
    memory(
        "agent",
        "writer timed out drafting the press release.",
        "wf-2",
        agent="writer",
        succeeded=False,
    ),
]


def keep(memories: Sequence[Memory], vectors: np.ndarray) -> list[Memory]:
    """Add memories through the store the commands use (the test's data directory)."""

    async def run() -> list[Memory]:
        store = await SqlStore.open(Settings().store)
        try:
            return await store.add_memories(memories, vectors, duplicate_cosine=0.95)
        finally:
            await store.aclose()

    return asyncio.run(run())


@pytest.fixture
def seeded(minilm: LocalEmbedder) -> list[Memory]:
    vectors = asyncio.run(minilm.embed([m.text for m in SEEDS]))
    return keep(SEEDS, vectors)


def memory_cli(*args: str) -> Result:
    return runner.invoke(app, ["memory", *args])


def ok(*args: str) -> str:
    result = memory_cli(*args)
    assert result.exit_code == 0, result.output
    return result.stdout


def refused(*args: str, code: int = 1) -> str:
    result = memory_cli(*args)
    assert result.exit_code == code, result.output
    assert result.stdout == ""
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    return line.removeprefix("error: ")


def ids(output: str) -> list[int]:
    return [int(line.split()[0]) for line in output.splitlines()]


def test_list_filters_newest_first(seeded: list[Memory]) -> None:
    every = [m.id for m in seeded]
    assert ids(ok("list")) == sorted(every, reverse=True)
    lines = ok("list").splitlines()
    researcher = next(line for line in lines if "llamas" in line)
    assert "agent" in researcher and "wf-1" in researcher
    assert "[researcher, research, Q 0.90, succeeded]" in researcher
    assert ids(ok("list", "--kind", "agent")) == [seeded[3].id, seeded[1].id]
    assert ids(ok("list", "--agent", "writer")) == [seeded[3].id]
    assert ids(ok("list", "--run", "wf-1")) == [seeded[1].id, seeded[0].id]
    assert ids(ok("list", "--limit", "1")) == [seeded[3].id]
    assert ok("list", "--agent", "nobody") == "no memories match\n"
    rows = [json.loads(line) for line in ok("list", "--json", "--kind", "collective").splitlines()]
    assert len(rows) == 1
    assert rows[0]["text"] == SEEDS[2].text and rows[0]["quality"] == 0.85
    assert rows[0]["id"] == seeded[2].id and rows[0]["created_at"]
    assert memory_cli("list", "--kind", "semantic").exit_code == 2


def test_search_finds_the_nearest_memory_first(seeded: list[Memory]) -> None:
    lines = ok("search", "how should figures in a finance report be sourced?").splitlines()
    assert lines[0].startswith("1. ") and lines[0].split()[2] == str(seeded[2].id)
    assert "Cite the source" in lines[0]
    assert all(float(line.split()[1]) >= 0.2 for line in lines)  # the floor
    every = ok("search", "how should figures in a finance report be sourced?", "--min-score", "-1")
    assert len(every.splitlines()) == 4 > len(lines)
    hits = [
        json.loads(line) for line in ok("search", "llama habitat", "-k", "1", "--json").splitlines()
    ]
    assert [(h["rank"], h["id"], h["agent"]) for h in hits] == [(1, seeded[1].id, "researcher")]
    assert 0 < hits[0]["score"] <= 1


def test_forget_by_id_by_run_and_all(seeded: list[Memory]) -> None:
    first, second, *_ = (m.id for m in seeded)
    assert ok("forget", str(first)) == "forgot 1 memory\n"
    assert refused("forget", str(first), "999") == (
        f"no memory has the ids {first}, 999 (automatos memory list)"
    )
    assert ok("forget", "--run", "wf-2") == "forgot 2 memories\n"
    assert ids(ok("list")) == [second]
    assert refused("forget", "--run", "wf-9") == (
        "no run or memory has a workflow id starting with 'wf-9' "
        "(automatos runs list, automatos memory list)"
    )
    assert ok("forget", "--all", "--yes") == "forgot 1 memory\n"
    assert ok("list") == EMPTY_MEMORY + "\n"
    assert ok("search", "anything") == EMPTY_MEMORY + "\n"
    assert ok("forget", "--all", "--yes") == "forgot 0 memories\n"


def test_forget_names_the_ids_that_matched_nothing(seeded: list[Memory]) -> None:
    result = memory_cli("forget", str(seeded[0].id), "999", str(seeded[0].id))
    assert result.exit_code == 0, result.output
    assert result.stdout == "forgot 1 memory\n"
    assert result.stderr == "warning: no memory has the id 999: nothing was forgotten for it\n"
    assert seeded[0].id not in ids(ok("list"))


RUN_A = "3f2a9c1d7e4b4a0f8c2d6e1b5a7c9d0e"
RUN_B = "3f2a9c1d7e4b4a0f8c2d6e1b5a7c9d11"
STORED = "8b1e4d2c6a9f4e3b9d7c1a5e2f8b6c4d"


def stored_run(run_id: str) -> None:
    """A run kept in the store the commands use, as ``automatos run`` keeps one."""

    async def run() -> None:
        store = await SqlStore.open(Settings().store)
        try:
            await store.start_execution(run_id, "a request", {})
        finally:
            await store.aclose()

    asyncio.run(run())


def test_a_run_is_named_by_a_unique_prefix_as_runs_list_shows_it(minilm: LocalEmbedder) -> None:
    texts = [SEEDS[0].text, SEEDS[2].text]
    vectors = asyncio.run(minilm.embed(texts))
    kept = keep(
        [
            memory("episodic", texts[0], RUN_A),
            memory("collective", texts[1], RUN_B, quality=0.9),
        ],
        vectors,
    )
    stored_run(STORED)
    shown = ok("list").splitlines()
    assert {line.split()[4] for line in shown} == {RUN_A[:12]}  # what a user copies
    assert ids(ok("list", "--run", RUN_A[:31])) == [kept[0].id]
    assert ids(ok("list", "--run", RUN_B)) == [kept[1].id]
    assert refused("list", "--run", RUN_A[:12]) == (
        f"'{RUN_A[:12]}' is the start of 2 workflow ids: {RUN_A}, {RUN_B}; give more of the id"
    )
    assert refused("list", "--run", "ffff", "--json") == (
        "no run or memory has a workflow id starting with 'ffff' "
        "(automatos runs list, automatos memory list)"
    )
    # a stored run without memories is found too, and said to have none
    assert ok("list", "--run", STORED[:8]) == "no memories match\n"
    assert refused("forget", "--run", STORED[:8]) == (
        f"there are no memories of run {STORED} (automatos memory list)"
    )
    assert refused("list", "--run", "") == "the run id is empty (automatos runs list shows them)"
    assert ok("forget", "--run", RUN_A[:31]) == "forgot 1 memory\n"
    assert ok("forget", "--run", RUN_A[:12]) == "forgot 1 memory\n"  # unique now
    assert ok("list") == EMPTY_MEMORY + "\n"


def test_json_stays_json_when_there_is_nothing_to_show() -> None:
    for args in (("list", "--json"), ("search", "anything", "--json")):
        result = memory_cli(*args)
        assert result.exit_code == 0, result.output
        assert result.stdout == ""  # no records, no line; the reason is for the reader
        assert result.stderr == EMPTY_MEMORY + "\n"
    result = memory_cli("list", "--agent", "nobody", "--json")
    assert (result.stdout, result.stderr) == ("", "no memories match\n")


def test_a_search_that_nothing_passes_says_so(seeded: list[Memory]) -> None:
    query = "zebra quantum saxophone"
    result = memory_cli("search", query, "--min-score", "0.9")
    assert result.exit_code == 0, result.output
    assert re.fullmatch(
        r"no memory has a cosine of 0\.9 or more with the query \(the nearest: -?0\.\d{3}\); "
        r"--min-score sets the floor\n",
        result.stdout,
    )
    result = memory_cli("search", query, "--min-score", "0.9", "--json")
    assert result.stdout == "" and result.stderr.startswith("no memory has a cosine of 0.9")
    assert len(ok("search", query, "--min-score", "-1", "--json").splitlines()) == 4


def test_forget_takes_exactly_one_selector() -> None:
    for args in ((), ("1", "--run", "wf-1"), ("--run", "wf-1", "--all", "--yes")):
        assert "one way" in refused("forget", *args, code=2)
    assert "--yes" in refused("forget", "--all", code=2)


def test_search_names_memories_of_another_embedder(minilm: LocalEmbedder) -> None:
    other = memory(
        "collective", "Lessons of a model no longer configured.", "wf-0", embedder="old-one"
    )
    keep([other], np.asarray([[0.6, 0.8, 0.0]], dtype=np.float32))
    line = refused("search", "lessons")
    assert line.startswith("1 memory embedded by old-one, not by the configured embedder")
    vectors = asyncio.run(minilm.embed([SEEDS[2].text]))
    keep([SEEDS[2]], vectors)
    result = memory_cli("search", "cite sources")
    assert result.exit_code == 0, result.output
    assert "1 memory embedded by old-one" in result.stderr
    assert "Cite the source" in result.stdout.splitlines()[0]


def test_a_disabled_store_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOMATOS_STORE__ENABLED", "false")
    for args in (("list",), ("search", "x"), ("forget", "--all", "--yes")):
        assert refused(*args) == STORE_DISABLED
    assert "memories are kept" in STORE_DISABLED
