"""``automatos kb``: adding, listing, searching and removing files from the command line, with
the real embedder (all-MiniLM-L6-v2), the configured model's tokenizer and the SQLite store of
the test's data directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from automatos.cli import app
from automatos.cli.kb import EMPTY_KB
from automatos.cli.store import STORE_DISABLED
from tests.retrieval.test_documents import make_pdf
from tests.retrieval.test_remote_embedder import vectors as fake_vectors
from tests.support.fake_servers import FakeLLMServer
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
    assert all(line.startswith("added ") and " chunks, " in line for line in lines[:-1])
    assert lines[-1].startswith("5 added, 0 replaced, 0 unchanged, 0 skipped, 0 failed; ")
    assert "files," not in result.stderr  # no progress bar: standard error is not a terminal

    listed = ok("list").splitlines()
    assert len(listed) == 6 and listed[-1].startswith("5 documents, ")
    guide = next(line for line in listed if "guide.md" in line)
    assert guide.split()[1:4] == ["md", "3", "chunks"]
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
    assert ok("list", "--json") == ""
    assert ok("search", "anything") == EMPTY_KB + "\n"
    assert "holds nothing at or under" in refused("remove", str(tmp_path / "docs"))
    assert refused("search", "   ") == "the query is empty"


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
