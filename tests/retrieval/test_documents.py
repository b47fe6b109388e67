"""Documents are read into sections with their heading paths, by format, within bounds."""

from __future__ import annotations

import hashlib
import io
import tarfile
import time
from pathlib import Path

import pytest
from pypdf import PdfWriter
from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

from automatos.errors import InvalidRequestError
from automatos.retrieval.documents import Document, read_document

KB = Path(__file__).parent.parent / "data" / "kb"
LIMIT = 1 << 20


def make_pdf(pages: list[list[str]], password: str | None = None) -> bytes:
    """A PDF whose pages show the given lines in Helvetica, written with pypdf."""
    writer = PdfWriter()
    for lines in pages:
        page = writer.add_blank_page(612, 792)
        operators = ["BT", "/F1 12 Tf", "14 TL", "72 720 Td"]
        for line in lines:
            escaped = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
            operators.append(f"({escaped}) Tj T*")
        operators.append("ET")
        font = DictionaryObject(
            {
                NameObject("/Type"): NameObject("/Font"),
                NameObject("/Subtype"): NameObject("/Type1"),
                NameObject("/BaseFont"): NameObject("/Helvetica"),
            }
        )
        page[NameObject("/Resources")] = DictionaryObject(
            {NameObject("/Font"): DictionaryObject({NameObject("/F1"): font})}
        )
        content = DecodedStreamObject()
        content.set_data("\n".join(operators).encode("latin-1"))
        page.replace_contents(content)
    if password is not None:
        writer.encrypt(password, algorithm="RC4-128")  # RC4 needs no cryptography package
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def outline(document: Document) -> list[tuple[tuple[str, ...], list[str]]]:
    return [
        (section.heading_path, [paragraph.text for paragraph in section.paragraphs])
        for section in document.sections
    ]


def test_markdown_headings_fences_and_setext() -> None:
    document = read_document(KB / "guide.md", LIMIT)
    assert document.kind == "markdown"
    assert [path for path, _ in outline(document)] == [
        (),
        ("Install",),
        ("Install", "From source"),
        ("Setext title",),
        ("Setext title", "Second level setext"),
        ("Setext title", "Closing"),
    ]
    source = dict(outline(document))[("Install", "From source")]
    assert source[0] == "Clone the repository first.\nThen run make install in the checkout."
    # the fence is one block, its "#" line is code
    assert source[1] == ("```bash\n# this is a shell comment, not a heading\nmake install\n```")
    section = document.sections[2]
    assert [p.kind for p in section.paragraphs] == ["text", "code"]


def test_markdown_offsets_are_the_source_text() -> None:
    document = read_document(KB / "guide.md", LIMIT)
    text = (KB / "guide.md").read_text(encoding="utf-8")
    for section in document.sections:
        for paragraph in section.paragraphs:
            assert paragraph.start is not None and paragraph.exact
            assert text[paragraph.start : paragraph.end] == paragraph.text


def test_markdown_atx_details(tmp_path: Path) -> None:
    path = tmp_path / "a.md"
    path.write_text(
        "# C#\n\n#NoSpace is text\n\n    # indented code\n\n### Deep ###\n\nbody\n\n"
        "~~~\n## inside tilde fence\n~~~\n\n## Back\n\nend\n",
        encoding="utf-8",
    )
    paths = [path for path, _ in outline(read_document(path, LIMIT))]
    assert paths == [("C#",), ("C#", "Deep"), ("C#", "Back")]
    first = outline(read_document(path, LIMIT))[0][1]
    assert first == ["#NoSpace is text", "    # indented code"]


def test_markdown_unclosed_fence_runs_to_the_end(tmp_path: Path) -> None:
    path = tmp_path / "a.md"
    path.write_text("# A\n\n```\n# not a heading\n\ntext\n", encoding="utf-8")
    document = read_document(path, LIMIT)
    assert outline(document) == [(("A",), ["```\n# not a heading\n\ntext\n"])]
    assert document.sections[0].paragraphs[0].kind == "code"


def test_rst_titles_with_and_without_overline() -> None:
    document = read_document(KB / "guide.rst", LIMIT)
    assert document.kind == "rst"
    sections = outline(document)
    assert [path for path, _ in sections] == [
        ("Tutorial",),
        ("Tutorial", "Getting started"),
        ("Tutorial", "Getting started", "Configuration"),
        ("Tutorial", "Getting started", "Running"),
        ("Tutorial", "Reference"),
    ]
    # an underlined line inside an indented literal block is not a title
    assert sections[2][1][1] == "    Not a title\n    ==========="
    # the transition (a lone "----------") is left out
    assert sections[3][1] == ["Run the engine with the run command."]


def test_text_is_one_section_of_paragraphs() -> None:
    document = read_document(KB / "notes.txt", LIMIT)
    assert outline(document) == [
        (
            (),
            [
                "First paragraph of plain notes.\nIt continues on a second line.",
                "# Not a heading in a text file",
                "Third paragraph about penguins.",
            ],
        )
    ]


def test_html_structure_without_scripts_styles_or_templates() -> None:
    document = read_document(KB / "page.html", LIMIT)
    assert outline(document) == [
        ((), ["Intro text & more before headings."]),
        (("Overview",), ["The overview paragraph has emphasis and a link."]),
        (("Overview", "Details"), ["First item", "Second item", "def main():\n    return 42"]),
        (("Appendix",), ["Loose text in a div about otters."]),
    ]
    words = " ".join(p.text for s in document.sections for p in s.paragraphs)
    for dropped in ("scriptword", "color", "templateword", "metadata", "fake"):
        assert dropped not in words
    assert document.sections[2].paragraphs[2].kind == "code"


def test_html_offsets_point_at_the_element() -> None:
    document = read_document(KB / "page.html", LIMIT)
    text = (KB / "page.html").read_text(encoding="utf-8")
    paragraph = document.sections[1].paragraphs[0]
    assert not paragraph.exact and paragraph.start is not None
    assert text[paragraph.start : paragraph.end].startswith("The overview paragraph has <em>")
    assert text[paragraph.end :].startswith("</p>")


def test_pdf_pages_are_sections(tmp_path: Path) -> None:
    path = tmp_path / "doc.PDF"
    path.write_bytes(
        make_pdf([["Hello from page one.", "Second line."], [], ["Page three has llamas."]])
    )
    document = read_document(path, LIMIT)
    assert document.kind == "pdf"
    assert [(s.page, s.heading_path) for s in document.sections] == [(1, ()), (3, ())]
    assert document.sections[0].paragraphs[0].text == "Hello from page one.\nSecond line."
    assert document.sections[1].paragraphs[0].text == "Page three has llamas."
    assert document.sections[0].paragraphs[0].start is None


def test_sha256_is_of_the_bytes(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_bytes(b"same\r\nbytes")
    first = read_document(path, LIMIT)
    assert first.sha256 == hashlib.sha256(b"same\r\nbytes").hexdigest()
    assert read_document(path, LIMIT).sha256 == first.sha256
    path.write_bytes(b"same\nbytes")
    assert read_document(path, LIMIT).sha256 != first.sha256


def test_unknown_kind_names_the_file_and_the_kinds(tmp_path: Path) -> None:
    path = tmp_path / "sheet.xlsx"
    path.write_bytes(b"x")
    with pytest.raises(InvalidRequestError) as raised:
        read_document(path, LIMIT)
    message = str(raised.value)
    assert str(path) in message and ".xlsx" in message
    for kind in (".md", ".rst", ".txt", ".html", ".pdf"):
        assert kind in message


def test_not_utf8_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "latin.md"
    path.write_bytes("# Caf\xe9\n".encode("latin-1"))
    with pytest.raises(InvalidRequestError, match=r"latin\.md is not UTF-8 text \(byte 0xe9 at"):
        read_document(path, LIMIT)


def test_too_large_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.txt"
    path.write_text("x" * 101, encoding="utf-8")
    with pytest.raises(
        InvalidRequestError, match=r"big\.txt is 101 bytes; the limit is 100 \(setting kb"
    ):
        read_document(path, 100, setting="kb.max_file_bytes")
    assert read_document(path, 101).sections


def test_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidRequestError, match=r"cannot read .*missing\.md"):
        read_document(tmp_path / "missing.md", LIMIT)


@pytest.mark.parametrize(
    "data",
    [b"%PDF-1.4\nthis is not a pdf body\n", b"", b"not even a header"],
    ids=["garbage-body", "empty", "no-header"],
)
def test_broken_pdf_is_refused(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "broken.pdf"
    path.write_bytes(data)
    with pytest.raises(InvalidRequestError, match=r"broken\.pdf is not a PDF that can be read"):
        read_document(path, LIMIT)


def test_truncated_pdf_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cut.pdf"
    path.write_bytes(make_pdf([["Some text."]])[:300])
    with pytest.raises(InvalidRequestError, match=r"cut\.pdf is not a PDF that can be read"):
        read_document(path, LIMIT)


def test_encrypted_pdf_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "locked.pdf"
    path.write_bytes(make_pdf([["Secret text."]], password="s3cret"))
    with pytest.raises(InvalidRequestError, match=r"locked\.pdf is an encrypted PDF"):
        read_document(path, LIMIT)


@pytest.mark.parametrize("suffix", [".md", ".rst", ".txt", ".html"])
def test_adversarial_text_is_read_in_linear_time(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"hostile{suffix}"
    line = "#" * 300_000 + "=" * 300_000 + "`" * 200_000 + "." * 250_000  # 1 MB, no spaces
    path.write_text("# Title\n\n" + line + "\n" + "\n" * 100_000 + "=" * 50 + "\nend\n")
    started = time.perf_counter()
    document = read_document(path, 4 * LIMIT)
    assert time.perf_counter() - started < 5
    text = " ".join(p.text for s in document.sections for p in s.paragraphs)
    assert line in text
    assert "end" in text


def test_a_missing_path_says_so_whatever_its_name(tmp_path: Path) -> None:
    for missing in ("nonexistent", "no-dir/", "archive.v2", "notes.md"):
        with pytest.raises(InvalidRequestError, match="No such file or directory") as raised:
            read_document(tmp_path / missing, LIMIT)
        assert "extension" not in str(raised.value)
    present = tmp_path / "Makefile"
    present.write_text("all:\n")
    with pytest.raises(InvalidRequestError, match="without an extension"):
        read_document(present, LIMIT)


def tar_of(directory: Path) -> bytes:
    """A tar archive of a directory, written by the standard library."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as archive:
        archive.add(directory, arcname=directory.name)
    return out.getvalue()


@pytest.mark.parametrize("suffix", [".md", ".rst", ".txt", ".html"])
def test_binary_bytes_that_decode_are_refused(tmp_path: Path, suffix: str) -> None:
    zeros = tmp_path / f"zeros{suffix}"
    zeros.write_bytes(b"\0" * 20_000)
    with pytest.raises(InvalidRequestError) as raised:
        read_document(zeros, LIMIT)
    assert str(raised.value).startswith(f"{zeros} looks like a binary file, not ")
    assert "NUL bytes" in str(raised.value)

    source = tmp_path / "source"
    source.mkdir()
    (source / "notes.txt").write_text("Plain notes, archived.\n")
    archive = tmp_path / f"archive{suffix}"
    archive.write_bytes(tar_of(source))
    archive.read_bytes().decode("utf-8")  # the archive of ASCII text decodes: not the test
    with pytest.raises(InvalidRequestError, match=r"archive\.\w+ looks like a binary file"):
        read_document(archive, LIMIT)


def test_control_characters_are_counted_not_forbidden(tmp_path: Path) -> None:
    controls = tmp_path / "controls.txt"
    controls.write_text("words " * 50 + "\x01\x02\x03\x1b" * 10)  # 40 of 340: 12%
    with pytest.raises(
        InvalidRequestError, match=r"controls\.txt looks like a binary file, not plain text \(40"
    ):
        read_document(controls, LIMIT)
    coloured = tmp_path / "log.md"
    # a log with a few colour codes, tabs and form feeds is still text (2 of 1,700+)
    coloured.write_text("# Log\n\n" + "line\twith a tab\f\n" * 100 + "\x1b[31mred\x1b[0m\n")
    document = read_document(coloured, LIMIT)
    assert document.sections[0].heading_path == ("Log",)
    kind = tmp_path / "kind.md"
    kind.write_text("\x07" * 3 + "x" * 100)  # 3 in 103: over 1%
    with pytest.raises(InvalidRequestError, match="not Markdown text"):
        read_document(kind, LIMIT)


def test_html_page_furniture_is_not_text(tmp_path: Path) -> None:
    path = tmp_path / "policy.html"
    path.write_text(
        "<html><body>"
        '<nav><a href="/">Home</a> | <a href="/hr">HR</a><h2>Menu</h2></nav>'
        "<header><h1>Leave policy</h1></header>"
        "<p>Staff take 25 days of leave a year.</p>"
        "<aside><p>Related: the travel policy</p></aside>"
        "<h2>Carry-over</h2><p>Five days carry over.</p>"
        '<svg viewBox="0 0 10 10"><title>logo</title><text>svgword</text></svg>'
        "<noscript>Enable JavaScript</noscript>"
        "<footer><p>© 2024 Example Corp</p></footer>"
        "</body></html>",
        encoding="utf-8",
    )
    assert outline(read_document(path, LIMIT)) == [
        (("Leave policy",), ["Staff take 25 days of leave a year."]),
        (("Leave policy", "Carry-over"), ["Five days carry over."]),
    ]


def test_a_pdf_that_takes_too_long_to_read_is_given_up(tmp_path: Path) -> None:
    path = tmp_path / "slow.pdf"
    path.write_bytes(make_pdf([["page one"], ["page two"], ["page three"]]))
    with pytest.raises(InvalidRequestError, match=r"took over 1e-09 s .* page 2 of 3"):
        read_document(path, 10_000_000, max_seconds=1e-9)
    assert len(read_document(path, 10_000_000, max_seconds=60).sections) == 3


def test_reading_a_pdf_stops_when_told(tmp_path: Path) -> None:
    import threading

    path = tmp_path / "long.pdf"
    path.write_bytes(make_pdf([["a page"]] * 3))
    stop = threading.Event()
    stop.set()
    with pytest.raises(InvalidRequestError, match="interrupted at page 1"):
        read_document(path, 10_000_000, stop=stop)
