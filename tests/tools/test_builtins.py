"""The built-in tools for real: the calculator's arithmetic and refusals, the time in real
zones, files read under a temporary directory (with links, FIFOs and binary files), and a
knowledge base built with the project's ingest into SQLite and searched with all-MiniLM-L6-v2.
"""

from __future__ import annotations

import asyncio
import math
import os
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from automatos.errors import ConfigurationError, ToolArgumentsError, ToolError, ToolFailedError
from automatos.llm.base import ToolCall, estimate_tokens
from automatos.retrieval.embedder import LocalEmbedder
from automatos.retrieval.ingest import ingest
from automatos.retrieval.pool import ContextSource
from automatos.settings import ContextSettings, StoreSettings
from automatos.store.sql import SqlStore
from automatos.tools import (
    BUILTIN_NAMES,
    FunctionTool,
    KnowledgeBase,
    builtin_tools,
    calculator,
    current_time,
    default_registry,
    read_file_tool,
    search_knowledge_base_tool,
)
from automatos.tools.builtins import MAX_EXPRESSION_CHARS

CALCULATOR = FunctionTool.from_function(calculator)


async def calc(expression: str) -> str:
    return await CALCULATOR.call({"expression": expression})


# --- calculator ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("1 + 2 * 3", "7"),
        ("(1 + 2) * 3", "9"),
        ("7 / 2", "3.5"),
        ("7 // 2", "3"),
        ("-7 // 2", "-4"),
        ("7 % 3", "1"),
        ("2 ** 10", "1024"),
        ("2 ** -1", "0.5"),
        ("-3 ** 2", "-9"),
        ("+4 - -4", "8"),
        ("0.1 + 0.2", "0.3"),
        ("1e3 / 8", "125"),
        ("sqrt(16)", "4"),
        ("sqrt(2)", "1.4142135623731"),
        ("log(e)", "1"),
        ("log(8, 2)", "3"),
        ("log10(1000)", "3"),
        ("exp(0)", "1"),
        ("sin(pi / 2)", "1"),
        ("cos(0)", "1"),
        ("tan(0)", "0"),
        ("abs(-2.5)", "2.5"),
        ("round(2.675, 2)", "2.67"),
        ("round(1234, -2)", "1200"),
        ("round(2.5)", "2"),
        ("min(3, 1, 2)", "1"),
        ("max(3, 1, 2)", "3"),
        ("min(5)", "5"),
        ("floor(-1.5)", "-2"),
        ("ceil(1.2)", "2"),
        ("2 * pi", "6.28318530717959"),
        ("10 ** 300", "1" + "0" * 300),
        ("(-1) ** 100001", "-1"),
        ("  12  \n", "12"),
    ],
)
async def test_the_calculator_computes(expression: str, value: str) -> None:
    assert await calc(expression) == value


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("__import__('os')", "unknown function '__import__'"),
        ("__import__('os').system('true')", "attribute access (a.b) is not allowed"),
        ("(1).real", "attribute access (a.b) is not allowed"),
        ("().__class__", "attribute access"),
        ("[1, 2][0]", "indexing (a[b]) is not allowed"),
        ("open", "unknown name 'open'"),
        ("x + 1", "unknown name 'x'"),
        ("sqrt", "sqrt is a function: call it"),
        ("'a' * 3", "a str is not a number"),
        ("True + 1", "a bool is not a number"),
        ("'card 4111 1111 1111 1111' + 1", "a str is not a number"),  # not the value itself
        ("1 < 2", "comparisons is not allowed"),
        ("lambda: 1", "lambda is not allowed"),
        ("(lambda: 1)()", "lambda is not allowed"),
        ("(1)(2)", "calling what is not a function name is not allowed"),
        ("2 ^ 3", "the operator ^ is not supported: for a power write **"),
        ("1 << 10000", "the operator << is not supported"),
        ("sqrt(1, 2)", "sqrt takes 1 argument, not 2"),
        ("round()", "round takes 1 to 2 arguments, not 0"),
        ("max(x=1)", "max takes plain arguments"),
        ("9 ** 9 ** 9", "exponents larger than 1000 are not computed"),
        ("2 ** 5000", "exponents larger than 1000"),
        ("999 ** 999", "the result would have more than 1200 digits"),
        ("(10 ** 300) ** 20", "the result would have more than 1200 digits"),
        ("10 ** 999 * 10 ** 999", "a number has more than 1200 digits"),
        ("round(1, -1000000)", "round's second argument must be a whole number"),
        ("-" * 200 + "1", "nested more than 60 levels deep"),
        ("1 +", "not a valid expression"),
        ("", "the expression is empty"),
        ("1+" * MAX_EXPRESSION_CHARS + "1", "the limit is 1000"),
        ("import os", "not a valid expression"),
    ],
)
async def test_the_calculator_refuses_what_is_not_bounded_arithmetic(
    expression: str, problem: str
) -> None:
    with pytest.raises(ToolArgumentsError) as caught:
        await calc(expression)
    assert problem in caught.value.detail
    assert caught.value.tool == "calculator"
    assert "4111" not in caught.value.detail


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("1 / 0", "division by zero"),
        ("5 % 0", "division by zero"),
        ("0 ** -1", "division by zero"),
        ("log(2, 1)", "division by zero"),
        ("sqrt(-1)", "sqrt: math domain error"),
        ("log(0)", "log: math domain error"),
        ("exp(1000)", "too large"),
        ("1e308 * 10", "too large to compute (it overflows)"),
        ("(-8) ** (1 / 3)", "not a real number"),
        ("sqrt(10 ** 400)", "too large"),
    ],
)
async def test_the_calculator_reports_what_cannot_be_computed(
    expression: str, problem: str
) -> None:
    with pytest.raises(ToolFailedError) as caught:
        await calc(expression)
    assert problem in caught.value.detail


def test_the_calculator_is_a_plain_function_too() -> None:
    assert calculator("6 * 7") == "42"
    assert math.isclose(float(calculator("pi")), math.pi, rel_tol=1e-14)


# --- current time -------------------------------------------------------------------------


async def test_the_current_time_in_utc_and_in_a_zone() -> None:
    made = FunctionTool.from_function(current_time)
    assert made.spec.parameters["properties"]["timezone"]["default"] == "UTC"
    before = datetime.now(UTC)
    text = await made.call({})
    stamp, _, rest = text.partition(" ")
    parsed = datetime.fromisoformat(stamp)
    assert parsed.utcoffset() == timedelta(0)
    assert before - timedelta(seconds=1) <= parsed <= datetime.now(UTC)
    assert rest == f"({parsed:%A}, UTC)"

    tokyo = await made.call({"timezone": "Asia/Tokyo"})
    assert datetime.fromisoformat(tokyo.split(" ")[0]).utcoffset() == timedelta(hours=9)
    assert tokyo.endswith(", Asia/Tokyo)")


@pytest.mark.parametrize("zone", ["Mars/Olympus", "America", "../../etc/passwd", "", "UTC\0"])
async def test_an_unknown_zone_is_an_argument_error(zone: str) -> None:
    with pytest.raises(ToolArgumentsError, match="unknown time zone"):
        await FunctionTool.from_function(current_time).call({"timezone": zone})


async def test_a_zone_name_is_bounded_in_length() -> None:
    with pytest.raises(ToolArgumentsError, match="timezone: String should have at most 64"):
        await FunctionTool.from_function(current_time).call({"timezone": "A" * 65})


# --- read_file ----------------------------------------------------------------------------


@pytest.fixture
def root(tmp_path: Path) -> Path:
    base = tmp_path / "root"
    (base / "notes").mkdir(parents=True)
    (base / "notes" / "todo.md").write_text("# Todo\n\n- write tests\n", encoding="utf-8")
    (base / "top.txt").write_text("top level\n", encoding="utf-8")
    (tmp_path / "secret.txt").write_text("outside the root\n", encoding="utf-8")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "inner.txt").write_text("also outside\n", encoding="utf-8")
    return base


async def read(root: Path, path: str, max_bytes: int = 100_000) -> str:
    return await read_file_tool(root, max_bytes=max_bytes).call({"path": path})


async def test_read_file_reads_text_under_its_root(root: Path) -> None:
    assert await read(root, "notes/todo.md") == "# Todo\n\n- write tests\n"
    assert await read(root, "./top.txt") == "top level\n"
    (root / "link.txt").symlink_to(root / "top.txt")  # a link that stays inside is fine
    assert await read(root, "link.txt") == "top level\n"


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("../secret.txt", "goes up with '..'"),
        ("notes/../../secret.txt", "goes up with '..'"),
        ("/etc/passwd", "is not a relative path"),
        ("~/secret.txt", "is not a relative path"),
        ("notes", "is a directory"),
        ("", "the path is empty"),
        ("top.txt\0.md", "NUL character"),
    ],
)
async def test_read_file_refuses_paths_that_leave_the_root(
    root: Path, path: str, problem: str
) -> None:
    with pytest.raises(ToolArgumentsError) as caught:
        await read(root, path)
    assert problem in caught.value.detail


async def test_read_file_refuses_links_that_lead_out_of_the_root(
    root: Path, tmp_path: Path
) -> None:
    (root / "escape.txt").symlink_to(tmp_path / "secret.txt")
    (root / "away").symlink_to(tmp_path / "outside", target_is_directory=True)
    (root / "absolute").symlink_to("/etc")
    # a file that is not there is refused the same: existence outside the root is not told
    for path in ("escape.txt", "away/inner.txt", "absolute/passwd", "absolute/no-such-file"):
        with pytest.raises(ToolArgumentsError, match="leads outside the directory"):
            await read(root, path)


async def test_read_file_reports_missing_binary_and_non_utf8_files(root: Path) -> None:
    (root / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR")
    (root / "latin1.txt").write_bytes("café".encode("latin-1"))
    (root / "loop").symlink_to(root / "loop")
    with pytest.raises(ToolFailedError, match=r"there is no file 'missing\.txt'"):
        await read(root, "missing.txt")
    with pytest.raises(ToolFailedError, match="is a binary file"):
        await read(root, "image.png")
    with pytest.raises(ToolFailedError, match="is not UTF-8 text"):
        await read(root, "latin1.txt")
    with pytest.raises(ToolFailedError, match="cannot read 'loop'"):
        await read(root, "loop")


async def test_read_file_refuses_a_fifo_without_waiting_for_a_writer(root: Path) -> None:
    os.mkfifo(root / "pipe")
    with pytest.raises(ToolArgumentsError, match="is not a regular file"):
        await asyncio.wait_for(read(root, "pipe"), timeout=5)


async def test_read_file_cuts_a_long_file_at_a_character(root: Path) -> None:
    (root / "long.txt").write_text("ab" + "é" * 20, encoding="utf-8")  # é is 2 bytes
    text = await read(root, "long.txt", max_bytes=5)
    # 5 bytes are "ab", one "é" and half of the next: the half is left out
    assert text == "abé\n[truncated: the file is 42 bytes; the first 5 are shown]"
    assert await read(root, "long.txt", max_bytes=42) == "ab" + "é" * 20


def test_read_file_needs_a_directory(root: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot be used"):
        read_file_tool(root / "nowhere")
    with pytest.raises(ConfigurationError, match="is not a directory"):
        read_file_tool(root / "top.txt")
    with pytest.raises(ConfigurationError, match="max_bytes must be at least 1"):
        read_file_tool(root, max_bytes=0)


def test_read_file_tells_the_model_what_path_to_give(root: Path) -> None:
    spec = read_file_tool(root).spec
    assert spec.name == "read_file"
    assert spec.parameters["required"] == ["path"]
    assert "relative to that directory" in spec.parameters["properties"]["path"]["description"]
    assert str(root) not in spec.description  # the machine's paths stay out of the prompt


# --- knowledge base -----------------------------------------------------------------------

LLAMAS = """Llamas
======

Llamas are domesticated South American camelids, long used as pack animals by Andean
cultures. They are social animals and live in herds.
"""
TEA = "Green tea is made from leaves that are not oxidised; black tea from leaves that are.\n"
GUIDE = """# Install

Run pip install automatos to install the engine and its command line.

# Configure

Settings are read from AUTOMATOS_ variables, nested with two underscores.
"""


@pytest.fixture(scope="module")
def minilm() -> Iterator[LocalEmbedder]:
    embedder = LocalEmbedder()
    yield embedder
    embedder.close()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlStore]:
    s = await SqlStore.open(StoreSettings(data_dir=tmp_path / "db"))
    yield s
    await s.aclose()


@pytest.fixture
async def filled(tmp_path: Path, store: SqlStore, minilm: LocalEmbedder) -> SqlStore:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "llamas.rst").write_text(LLAMAS, encoding="utf-8")
    (docs / "tea.txt").write_text(TEA, encoding="utf-8")
    (docs / "guide.md").write_text(GUIDE, encoding="utf-8")
    report = await ingest(
        [docs],
        store,
        minilm,
        tokenizer="estimate",
        count_tokens=estimate_tokens,
        settings=ContextSettings(chunk_tokens=60, chunk_overlap_tokens=10),
    )
    assert report.totals["added"] == 3 and not report.failed
    return store


async def test_the_knowledge_base_is_searched_by_meaning(
    filled: SqlStore, minilm: LocalEmbedder
) -> None:
    kb = KnowledgeBase(filled, minilm)
    passages = await kb.search("which animals carry loads in the Andes?", k=2)
    assert len(passages) == 2
    assert passages[0].source.endswith("/llamas.rst")
    assert "pack animals" in passages[0].text
    assert passages[0].score > passages[1].score

    searcher = search_knowledge_base_tool(kb)
    text = await searcher.call({"query": "how do I install it", "k": 1})
    first, _, body = text.partition("\n")
    assert first.startswith("[1] ") and "/guide.md (relevance 0." in first
    assert "pip install automatos" in body
    assert "[2]" not in text


async def test_a_search_shares_the_pool_of_the_context_stage(
    filled: SqlStore, minilm: LocalEmbedder
) -> None:
    source = ContextSource(minilm)
    kb = KnowledgeBase(filled, source)
    assert kb.source is source
    await kb.search("tea", k=1)
    pool = await source.pool(filled, memories=False)
    assert pool is await source.pool(filled, memories=False)  # loaded once, kept
    assert pool.chunks >= 3


async def test_an_empty_knowledge_base_says_so(store: SqlStore, minilm: LocalEmbedder) -> None:
    searcher = search_knowledge_base_tool(KnowledgeBase(store, minilm))
    assert await searcher.call({"query": "llamas"}) == (
        "The knowledge base has no documents to search."
    )


async def test_search_arguments_are_bounded(store: SqlStore, minilm: LocalEmbedder) -> None:
    searcher = search_knowledge_base_tool(KnowledgeBase(store, minilm))
    assert searcher.spec.parameters["properties"]["k"]["maximum"] == 20
    with pytest.raises(ToolArgumentsError, match="k: Input should be less than or equal to 20"):
        await searcher.call({"query": "x", "k": 500})
    with pytest.raises(ToolArgumentsError, match="query: String should have at least 1"):
        await searcher.call({"query": ""})
    with pytest.raises(ToolArgumentsError, match="the query is blank"):
        await searcher.call({"query": "   "})


# --- all of them --------------------------------------------------------------------------


async def test_the_default_registry_has_what_it_is_given(
    root: Path, filled: SqlStore, minilm: LocalEmbedder
) -> None:
    assert default_registry().names() == ["calculator", "current_time"]
    everything = default_registry(root, KnowledgeBase(filled, minilm))
    assert everything.names() == sorted(BUILTIN_NAMES)
    assert await everything.call(ToolCall("1", "calculator", '{"expression": "2+2"}')) == "4"
    assert await everything.call(ToolCall("2", "read_file", '{"path": "top.txt"}')) == (
        "top level\n"
    )
    found = await everything.call(ToolCall("3", "search_knowledge_base", '{"query": "tea"}'))
    assert "tea.txt" in found
    assert [t.name for t in builtin_tools(read_root=root)] == [
        "calculator",
        "current_time",
        "read_file",
    ]
    assert "shell" not in everything


async def test_every_builtin_error_is_a_tool_error(root: Path) -> None:
    tools = default_registry(root)
    for call in (
        ToolCall("1", "calculator", '{"expression": "1/0"}'),
        ToolCall("2", "current_time", '{"timezone": "Nowhere/Else"}'),
        ToolCall("3", "read_file", '{"path": "../x"}'),
    ):
        with pytest.raises(ToolError) as caught:
            await tools.call(call)
        assert caught.value.tool == call.name


def test_a_long_sum_is_not_refused_as_deep() -> None:
    assert calculator("+".join(["1"] * 62)) == "62"
    assert calculator("+".join(["2"] * 499)) == "998"
    assert calculator("10-2-3") == "5" and calculator("2**3**2") == "512"
