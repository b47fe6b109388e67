"""``automatos kb``: adding, listing, searching and removing files from the command line, with
the real embedder (all-MiniLM-L6-v2), the configured model's tokenizer and the SQLite store of
the test's data directory."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from automatos.cli import app
from automatos.cli import kb as kb_cli
from automatos.cli.kb import EMPTY_KB
from automatos.cli.store import STORE_DISABLED
from automatos.retrieval.base import Vectors
from automatos.retrieval.embedder import Embedder, LocalEmbedder
from tests.retrieval.test_documents import make_pdf
from tests.retrieval.test_remote_embedder import vectors as fake_vectors
from tests.support.fake_servers import FakeLLMServer, Reply, error
from tests.test_cli_imports import HEAVY, imported

runner = CliRunner()

GUIDE = """# Install

Run pip install automatos to install the engine and its command line.

## From source

Clone the repository, then run make: it builds a virtual environment with every extra.

# Configure

Settings are read from AUTOMATOS_ variables, nested with two underscores.
"""


def kb(*args: str) -> Result:
    return runner.invoke(app, ["kb", *args])


def ok(*args: str) -> str:
    result = kb(*args)
    assert result.exit_code == 0, result.output
    return result.stdout


def refused(*args: str) -> str:
    """The error line of a refused command (exit code 1), without its ``error: ``."""
    result = kb(*args)
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    return line.removeprefix("error: ")


def add_failed(*args: str) -> tuple[list[str], str]:
    """The report (standard output) and the one error line of a failed ``kb add``."""
    result = kb("add", *args)
    assert result.exit_code == 1, result.output
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: ")
    return result.stdout.splitlines(), line.removeprefix("error: ")


def write_docs(root: Path) -> Path:
    docs = root / "docs"
    (docs / "animals").mkdir(parents=True)
    (docs / "guide.md").write_text(GUIDE)
    (docs / "animals" / "llamas.rst").write_text(
        "Llamas\n======\n\nLlamas are domesticated South American camelids, used as pack "
        "animals by Andean cultures.\n"
    )
    (docs / "animals" / "tea.txt").write_text(
        "Green tea is made from leaves that are not oxidised; black tea from leaves that are.\n"
    )
    (docs / "volcanoes.html").write_text(
        "<h1>Volcanoes</h1><p>A volcano is a rupture in the crust through which lava escapes.</p>"
    )
    (docs / "scan.pdf").write_bytes(make_pdf([["Penguins live in the southern hemisphere."]]))
    (docs / ".hidden.md").write_text("# Hidden\n\nNot read.\n")
    return docs


def test_add_list_search_change_and_remove(tmp_path: Path) -> None:
    docs = write_docs(tmp_path)
    result = kb("add", str(docs))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    added = sorted(Path(line.split()[1]).name for line in lines[:-1])
    assert added == ["guide.md", "llamas.rst", "scan.pdf", "tea.txt", "volcanoes.html"]
    assert all(re.search(r"^added .*\(\d+ chunks?, \d+ tokens?\)$", line) for line in lines[:-1])
    assert "(1 chunk, " in next(line for line in lines if "tea.txt" in line)
    assert lines[-1].startswith("5 added, 0 replaced, 0 unchanged, 0 skipped, 0 failed; ")
    assert "files," not in result.stderr  # no progress bar: standard error is not a terminal

    listed = ok("list").splitlines()
    assert len(listed) == 6 and listed[-1].startswith("5 documents, ")
    guide = next(line for line in listed if "guide.md" in line)
    assert guide.split()[1:4] == ["md", "3", "chunks"]
    assert next(line for line in listed if "tea.txt" in line).split()[1:4] == ["txt", "1", "chunk"]
    assert "all-MiniLM-L6-v2" in guide
    rows = [json.loads(line) for line in ok("list", "--json").splitlines()]
    assert {row["kind"] for row in rows} == {"md", "rst", "txt", "html", "pdf"}
    assert {row["tokenizer"] for row in rows} == {"llama.cpp:gemma-3-270m-q4_k_m"}
    assert all(row["added_at"] and row["embedder"] == "all-MiniLM-L6-v2" for row in rows)

    found = ok("search", "how do I build it from a git checkout?").splitlines()
    assert found[0].startswith("1. ")
    assert found[0].endswith("docs/guide.md > Install > From source")
    assert found[1].strip().startswith("Clone the repository, then run make")
    assert len(found) == 10  # five hits of two lines
    hits = [
        json.loads(line) for line in ok("search", "pack animals", "-k", "2", "--json").splitlines()
    ]
    assert [hit["rank"] for hit in hits] == [1, 2]
    assert hits[0]["path"].endswith("animals/llamas.rst") and hits[0]["heading"] == "Llamas"
    assert hits[0]["score"] > hits[1]["score"]
    page = ok("search", "penguins", "--top", "1").splitlines()
    assert page[0].endswith("docs/scan.pdf (page 1)")

    again = ok("add", str(docs)).splitlines()
    assert len(again) == 1
    assert again[0].startswith("0 added, 0 replaced, 5 unchanged, 0 skipped, 0 failed; 0 chunks")

    (docs / "guide.md").write_text("# Uninstall\n\nRemove the package with pip uninstall.\n")
    changed = ok("add", str(docs), str(docs / "guide.md")).splitlines()
    assert changed[0].startswith("replaced ") and changed[0].split()[1].endswith("guide.md")
    assert changed[-1].startswith("0 added, 1 replaced, 4 unchanged")
    assert "Clone the repository" not in ok("search", "build from source", "-k", "10")

    removed = ok("remove", str(docs / "animals")).splitlines()
    assert [Path(line.split()[1]).name for line in removed[:-1]] == ["llamas.rst", "tea.txt"]
    assert removed[-1] == "removed 2 documents"
    assert ok("list").splitlines()[-1].startswith("3 documents, ")
    result = kb("remove", str(docs / "guide.md"), str(tmp_path / "elsewhere"))
    assert result.exit_code == 0 and "removed 1 document\n" in result.stdout
    assert f"nothing at or under {(tmp_path / 'elsewhere').as_posix()}" in result.stderr
    removed_json = json.loads(ok("remove", str(docs / "scan.pdf"), "--json"))
    assert removed_json == {"removed": [(docs / "scan.pdf").as_posix()], "not_found": []}
    assert re.fullmatch(r"1 document, 1 chunk, \d+ tokens", ok("list").splitlines()[-1])


def test_bad_inputs_fail_alone_and_the_command_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTOMATOS_CONTEXT__MAX_FILE_BYTES", "2000")
    good = tmp_path / "good.md"
    good.write_text(GUIDE)
    latin = tmp_path / "latin.txt"
    latin.write_bytes("café crème".encode("latin-1"))
    large = tmp_path / "large.txt"
    large.write_text("word " * 1000)
    csv = tmp_path / "table.csv"
    csv.write_text("a,b\n")
    missing = tmp_path / "missing.md"
    result = kb("add", str(missing), str(csv), str(latin), str(good), str(large))
    assert result.exit_code == 1, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 4
    for name, why in (
        ("missing.md", "No such file"),
        ("table.csv", "cannot read .csv files"),
        ("latin.txt", "not UTF-8"),
        ("large.txt", "context.max_file_bytes"),
    ):
        (line,) = [line for line in errors if name in line]
        assert why in line
    lines = result.stdout.splitlines()
    assert lines[0].startswith("added ") and lines[0].split()[1].endswith("good.md")
    assert lines[-1].startswith("1 added, 0 replaced, 0 unchanged, 0 skipped, 4 failed; ")

    report = json.loads(kb("add", str(good), str(missing), "--json").stdout)
    assert [f["outcome"] for f in report["files"]] == ["unchanged", "failed"]
    assert report["totals"]["failed"] == 1 and report["totals"]["unchanged"] == 1
    assert report["seconds"] >= 0


def test_an_empty_file_is_skipped(tmp_path: Path) -> None:
    (tmp_path / "blank.txt").write_text("\n\n")
    lines = ok("add", str(tmp_path)).splitlines()
    assert lines[0].startswith("skipped ") and lines[0].endswith("blank.txt: no text")
    assert lines[-1].startswith("0 added, 0 replaced, 0 unchanged, 1 skipped, 0 failed")


def test_an_empty_knowledge_base_says_how_to_fill_it(tmp_path: Path) -> None:
    assert ok("list") == EMPTY_KB + "\n"
    assert ok("search", "anything") == EMPTY_KB + "\n"
    assert "holds nothing at or under" in refused("remove", str(tmp_path / "docs"))
    assert refused("search", "   ") == "the query is empty"


def json_lines(result: Result) -> list[Any]:
    """Standard output of a --json command, every line of which must be JSON."""
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_json_stays_json_when_there_is_nothing_to_show(tmp_path: Path) -> None:
    for args in (("list", "--json"), ("search", "anything", "--json")):
        result = kb(*args)
        assert result.exit_code == 0, result.output
        assert json_lines(result) == []  # no records; the reason is for the reader
        assert result.stderr == EMPTY_KB + "\n"
    result = kb("remove", str(tmp_path / "docs"), "--json")
    assert result.exit_code == 1
    assert json_lines(result) == [{"removed": [], "not_found": [(tmp_path / "docs").as_posix()]}]
    assert "holds nothing at or under" in result.stderr
    (tmp_path / "empty").mkdir()
    result = kb("add", str(tmp_path / "empty"), "--json")
    assert result.exit_code == 1
    (report,) = json_lines(result)
    assert report["totals"]["failed"] == 1 and report["stopped"] is None


def test_a_missing_path_is_said_to_be_missing(tmp_path: Path) -> None:
    result = kb("add", str(tmp_path / "nonexistent"), f"{tmp_path / 'no-dir'}/")
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [
        f"error: cannot read {tmp_path / name}: No such file or directory"
        for name in ("nonexistent", "no-dir")
    ]


def test_a_directory_without_readable_files_fails_and_left_out_files_are_counted(
    tmp_path: Path,
) -> None:
    code = tmp_path / "code"
    code.mkdir()
    for name in ("a.py", "b.py", "notes.docx", "data.json"):
        (code / name).write_text("x\n")
    report, line = add_failed(str(code))
    assert report[-1].startswith("0 added, 0 replaced, 0 unchanged, 0 skipped, 1 failed; ")
    assert line == (
        f"{code}: nothing readable found: 4 files left out: .py (2), .docx, .json; "
        "the kinds read are .htm, .html, .markdown, .md, .pdf, .rst, .txt"
    )
    (code / "README.md").write_text(GUIDE)
    lines = ok("add", str(code)).splitlines()
    assert lines[-2] == (
        "4 files left out: .py (2), .docx, .json; "
        "the kinds read are .htm, .html, .markdown, .md, .pdf, .rst, .txt"
    )
    report = json.loads(ok("add", str(code), "--json"))
    assert report["left_out"] == {".py": 2, ".docx": 1, ".json": 1}
    assert report["totals"]["left_out"] == 4 and report["totals"]["unchanged"] == 1


def test_binary_content_named_as_text_is_refused(tmp_path: Path) -> None:
    (tmp_path / "zeros.md").write_bytes(b"\0" * 20_000)
    _, line = add_failed(str(tmp_path / "zeros.md"))
    assert line == f"{tmp_path / 'zeros.md'} looks like a binary file, not Markdown text " + (
        "(it holds NUL bytes)"
    )


def test_deleted_files_are_named_and_pruned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    docs = write_docs(tmp_path)
    ok("add", "docs")
    (docs / "guide.md").unlink()
    (docs / "animals" / "tea.txt").unlink()
    result = kb("add", "docs/")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1].startswith("0 added, 0 replaced, 3 unchanged")
    assert result.stderr == (
        "warning: 2 stored documents under docs no longer exist on disk: docs/animals/tea.txt, "
        "docs/guide.md; `automatos kb add --prune docs` removes them\n"
    )
    lines = ok("add", "--prune", "docs").splitlines()
    assert lines[:2] == [
        "removed   docs/animals/tea.txt  (no longer on disk)",
        "removed   docs/guide.md  (no longer on disk)",
    ]
    assert lines[-1].startswith("0 added, 0 replaced, 3 unchanged, 0 skipped, 0 failed, 2 removed")
    assert ok("list").splitlines()[-1].startswith("3 documents, ")
    result = kb("add", "docs")
    assert result.exit_code == 0 and result.stderr == ""


def test_help_paragraphs_are_not_broken_mid_sentence() -> None:
    result = runner.invoke(app, ["kb", "add", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    assert "A file added again unchanged is left as it is; a changed one" in text
    lines = [line.strip(" │") for line in result.stdout.splitlines()]
    assert not [line for line in lines if line.endswith("unchanged")]
    assert "--prune" in result.stdout


def test_search_names_documents_of_another_embedder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = write_docs(tmp_path)
    ok("add", str(docs / "guide.md"))
    with FakeLLMServer(fake_vectors) as server:
        monkeypatch.setenv("AUTOMATOS_EMBEDDINGS__PROVIDER", "openai")
        monkeypatch.setenv("AUTOMATOS_EMBEDDINGS__MODEL", "embed-test")
        monkeypatch.setenv("AUTOMATOS_EMBEDDINGS__DIMENSION", "3")
        monkeypatch.setenv("AUTOMATOS_EMBEDDINGS__BASE_URL", server.base_url)
        line = refused("search", "install")
        assert line.startswith("1 document embedded by all-MiniLM-L6-v2, not by the configured ")
        assert "embed-test" in line and "automatos kb add" in line
        assert server.requests == []  # nothing to search: the query is not embedded
        ok("add", str(docs / "animals" / "tea.txt"))
        result = kb("search", "tea")
        assert result.exit_code == 0, result.output
        assert "1 document embedded by all-MiniLM-L6-v2" in result.stderr
        assert result.stdout.splitlines()[0].endswith("animals/tea.txt")
    monkeypatch.delenv("AUTOMATOS_EMBEDDINGS__PROVIDER")
    result = kb("search", "install")
    assert "1 document embedded by embed-test" in result.stderr
    assert result.stdout.splitlines()[0].endswith("docs/guide.md > Install")


def test_a_wrong_embedding_setting_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOMATOS_EMBEDDINGS__PROVIDER", "openai")
    monkeypatch.setenv("AUTOMATOS_EMBEDDINGS__MODEL", "nomic-embed-text")
    assert "embeddings.dimension" in refused("search", "anything")


def test_a_disabled_store_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AUTOMATOS_STORE__ENABLED", "false")
    for args in (("add", str(tmp_path)), ("list",), ("search", "x"), ("remove", "x")):
        assert refused(*args) == STORE_DISABLED
    assert "knowledge base" in STORE_DISABLED and "memories" in STORE_DISABLED


def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens (it was free a moment ago)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def many_files(root: Path, count: int) -> Path:
    files = root / "many"
    files.mkdir()
    for i in range(count):
        (files / f"f{i:02}.txt").write_text(f"File {i} is about topic number {i}.\n")
    return files


def test_an_unreachable_endpoint_stops_the_add_with_one_line_naming_the_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = many_files(tmp_path, 20)
    url = f"http://127.0.0.1:{closed_port()}/v1"
    monkeypatch.setenv("AUTOMATOS_EMBEDDINGS__PROVIDER", "openai")
    monkeypatch.setenv("AUTOMATOS_EMBEDDINGS__DIMENSION", "3")
    monkeypatch.setenv("AUTOMATOS_EMBEDDINGS__BASE_URL", url)
    report, line = add_failed(str(files))
    (summary,) = report  # no line per file: one error for them all
    assert summary.startswith("0 added, 0 replaced, 0 unchanged, 0 skipped, 0 failed; 0 chunks")
    assert line.startswith(
        "the embedder failed, so the adding stopped (nothing was added; 20 files not read: add "
        "them again once it works): ProviderUnavailableError: cannot reach the embeddings "
        "endpoint"
    )
    assert f"the embeddings endpoint is {url} (AUTOMATOS_EMBEDDINGS__BASE_URL)" in line
    assert "no API key is set (AUTOMATOS_EMBEDDINGS__API_KEY, else AUTOMATOS_LLM__API_KEY)" in line

    monkeypatch.delenv("AUTOMATOS_EMBEDDINGS__BASE_URL")
    monkeypatch.setenv("AUTOMATOS_LLM__BASE_URL", url)
    monkeypatch.setenv("AUTOMATOS_LLM__API_KEY", "sk-test")
    result = kb("add", str(files), "--json")
    assert result.exit_code == 1
    (report,) = json_lines(result)
    assert report["files"] == [] and len(report["not_read"]) == 20
    assert f"the LLM's, {url} (AUTOMATOS_LLM__BASE_URL)" in report["stopped"]
    assert "no API key" not in report["stopped"]
    (error_line,) = result.stderr.splitlines()
    assert error_line == "error: " + report["stopped"]


def test_an_endpoint_that_fails_midway_keeps_the_files_added_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = many_files(tmp_path, 5)
    with FakeLLMServer(fake_vectors) as server:
        server.queue.extend([fake_vectors("/v1/embeddings", {"input": ["x"], "model": "m"})])
        server.responder = lambda path, body: error(503, "overloaded")
        monkeypatch.setenv("AUTOMATOS_EMBEDDINGS__PROVIDER", "openai")
        monkeypatch.setenv("AUTOMATOS_EMBEDDINGS__MODEL", "embed-test")
        monkeypatch.setenv("AUTOMATOS_EMBEDDINGS__DIMENSION", "3")
        monkeypatch.setenv("AUTOMATOS_EMBEDDINGS__BASE_URL", server.base_url)
        result = kb("add", str(files))
        assert len(server.requests) == 2
    assert result.exit_code == 1
    assert re.search(r"^added +\S+/many/f00\.txt  \(1 chunk, \d+ tokens\)$", result.stdout, re.M)
    (error_line,) = result.stderr.splitlines()
    assert "(1 file added before it stay; 4 files not read" in error_line
    assert "ProviderUnavailableError: HTTP 503" in error_line
    # the server gone, a search says the same of its endpoint in one line
    line = refused("search", "topic")
    assert line.startswith("ProviderUnavailableError: cannot reach the embeddings endpoint")
    assert f"the embeddings endpoint is {server.base_url} (AUTOMATOS_EMBEDDINGS__BASE_URL)" in line


def test_a_refused_text_fails_only_its_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = many_files(tmp_path, 3)

    def refuse_topic_1(path: str, body: dict[str, Any]) -> Reply:
        if any("topic number 1." in text for text in body["input"]):
            return error(400, "the input is too long")
        return fake_vectors(path, body)

    with FakeLLMServer(refuse_topic_1) as server:
        monkeypatch.setenv("AUTOMATOS_EMBEDDINGS__PROVIDER", "openai")
        monkeypatch.setenv("AUTOMATOS_EMBEDDINGS__MODEL", "embed-test")
        monkeypatch.setenv("AUTOMATOS_EMBEDDINGS__DIMENSION", "3")
        monkeypatch.setenv("AUTOMATOS_EMBEDDINGS__BASE_URL", server.base_url)
        result = kb("add", str(files))
    assert result.exit_code == 1
    (error_line,) = result.stderr.splitlines()
    assert "f01.txt: ProviderRequestError: HTTP 400: " in error_line
    assert error_line.endswith("the input is too long")
    assert result.stdout.splitlines()[-1].startswith("2 added, 0 replaced, 0 unchanged, 0 skipped")


class Interrupting:
    """The real embedder, where the user presses Ctrl-C during the second file."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.name = inner.name
        self.dimension = inner.dimension
        self.calls = 0

    async def embed(self, texts: Sequence[str]) -> Vectors:
        self.calls += 1
        if self.calls == 2:
            raise KeyboardInterrupt
        return await self.inner.embed(texts)


def test_ctrl_c_says_how_many_files_were_added_before_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = many_files(tmp_path, 3)
    real = kb_cli.embedder_of
    monkeypatch.setattr(kb_cli, "embedder_of", lambda settings: Interrupting(real(settings)))
    result = kb("add", str(files))
    assert result.exit_code == 130
    assert result.stderr == (
        "error: interrupted: 1 file (1 added) before it stay in the knowledge base; add the "
        "same paths again for the rest\n"
    )
    assert ok("list").splitlines()[-1].startswith("1 document, 1 chunk, ")


async def test_the_first_embedding_is_announced_while_the_model_loads() -> None:
    calls: list[bool] = []
    embedder = LocalEmbedder()
    shown = kb_cli._FirstCallShown(embedder, calls.append)
    try:
        assert shown.name == "all-MiniLM-L6-v2" and shown.dimension == 384
        await shown.embed(["first"])
        assert calls == [True, False]
        await shown.embed(["second"])
        assert calls == [True, False]
    finally:
        embedder.close()


@pytest.mark.parametrize("args", [("kb", "--help"), ("kb", "add", "--help"), ("memory", "--help")])
def test_help_imports_no_model_or_numpy(args: tuple[str, ...]) -> None:
    heavy = {*HEAVY, "numpy", "torch", "sentence_transformers", "pypdf", "pydantic_settings"}
    modules = imported(*args)
    assert modules.isdisjoint(heavy), modules & heavy


def test_vectors_of_another_dimension_are_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "tea.txt").write_text("Green tea is not oxidised.\n")
    with FakeLLMServer(fake_vectors) as server:
        monkeypatch.setenv("AUTOMATOS_EMBEDDINGS__PROVIDER", "openai")
        monkeypatch.setenv("AUTOMATOS_EMBEDDINGS__MODEL", "embed-test")
        monkeypatch.setenv("AUTOMATOS_EMBEDDINGS__DIMENSION", "3")
        monkeypatch.setenv("AUTOMATOS_EMBEDDINGS__BASE_URL", server.base_url)
        ok("add", str(tmp_path))
        monkeypatch.setenv("AUTOMATOS_EMBEDDINGS__DIMENSION", "4")
        line = refused("search", "tea")
    assert "have 3 dimensions" in line and "embeddings.dimension" in line
