"""Chunks stay in their section, fit the token limit, overlap, keep every word, and have
stable ids."""

from __future__ import annotations

import itertools
import re
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from automatos.errors import ConfigurationError
from automatos.retrieval.chunking import Chunk, chunk, estimate_tokens
from automatos.retrieval.documents import Document, Paragraph, Section, read_document

KB = Path(__file__).parent.parent / "data" / "kb"


def words(text: str) -> int:
    """A tokenizer that counts whitespace-separated words: easy to reason about in tests."""
    return len(text.split())


def body(piece: Chunk) -> str:
    """A chunk's text without its heading path."""
    prefix = " > ".join(piece.heading_path) + "\n\n"
    return piece.text.removeprefix(prefix) if piece.heading_path else piece.text


def document(*sections: Section, path: str = "doc.md") -> Document:
    return Document(Path(path), "markdown", "0" * 64, tuple(sections))


def section(path: tuple[str, ...], *texts: str, kind: str = "text") -> Section:
    paragraphs: list[Paragraph] = []
    offset = 0
    for text in texts:
        paragraphs.append(
            Paragraph(text, "code" if kind == "code" else "text", offset, offset + len(text))
        )
        offset += len(text) + 2
    return Section(path, tuple(paragraphs))


def sentence(n: int, word: str = "w") -> str:
    """A sentence of ``n`` words ending in a full stop."""
    return " ".join(f"{word}{i}" for i in range(n)) + "."


def test_estimate_is_the_larger_of_words_and_characters() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("one two three") == 4  # 3 words x 1.3 = 3.9, 13 chars / 4 = 3.25
    assert estimate_tokens("x" * 400) == 100  # one "word", but 400 characters


def test_small_paragraphs_are_packed_and_sections_never_crossed() -> None:
    doc = document(
        section(("A",), sentence(3), sentence(3), sentence(3)),
        section(("A", "B"), sentence(2)),
    )
    chunks = chunk(doc, max_tokens=20, overlap_tokens=0, count_tokens=words)
    assert [c.heading_path for c in chunks] == [("A",), ("A", "B")]
    assert chunks[0].text == f"A\n\n{sentence(3)}\n\n{sentence(3)}\n\n{sentence(3)}"
    assert chunks[1].text == f"A > B\n\n{sentence(2)}"
    assert [c.ordinal for c in chunks] == [0, 1]
    assert [c.tokens for c in chunks] == [10, 5]


def test_a_paragraph_that_fits_alone_starts_the_next_chunk_instead_of_being_split() -> None:
    first, second = sentence(6, "a"), sentence(3, "b") + " " + sentence(3, "c")
    doc = document(section((), first, second))
    chunks = chunk(doc, max_tokens=10, overlap_tokens=0, count_tokens=words)
    assert [c.text for c in chunks] == [first, second]


def test_a_long_paragraph_is_cut_at_sentences() -> None:
    text = " ".join(sentence(4, f"s{i}_") for i in range(10))  # 10 sentences of 4 words
    doc = document(section(("Long",), text))
    chunks = chunk(doc, max_tokens=13, overlap_tokens=0, count_tokens=words)
    # heading "Long" takes 1 token: 12 left, three sentences a chunk
    assert [words(body(c)) for c in chunks] == [12, 12, 12, 4]
    assert all(body(c).endswith(".") for c in chunks)
    assert " ".join(body(c) for c in chunks) == text


def test_a_sentence_longer_than_a_chunk_is_cut_at_words() -> None:
    text = sentence(25)
    chunks = chunk(document(section((), text)), max_tokens=10, overlap_tokens=0, count_tokens=words)
    assert [c.tokens for c in chunks] == [10, 10, 5]
    assert " ".join(c.text for c in chunks) == text


def test_a_word_longer_than_a_chunk_is_cut_into_runs_of_characters() -> None:
    word = "x" * 1000
    doc = document(section((), f"before {word} after."))
    chunks = chunk(doc, max_tokens=50, overlap_tokens=0)
    assert all(c.tokens <= 50 for c in chunks)
    joined = "".join(c.text for c in chunks)
    assert word in joined and "before" in joined and "after." in joined
    runs = [c.text for c in chunks if set(c.text) == {"x"}]
    assert "".join(runs) == word and len(runs) > 1


def test_code_is_cut_at_lines() -> None:
    code = "```\n" + "\n".join(f"line{i} = {i} + {i}" for i in range(20)) + "\n```"
    doc = document(section(("Code",), code, kind="code"))
    chunks = chunk(doc, max_tokens=21, overlap_tokens=0, count_tokens=words)
    assert len(chunks) > 1
    for piece in chunks:
        for line in body(piece).split("\n"):
            assert line == "```" or re.fullmatch(r"line\d+ = \d+ \+ \d+", line)


def test_consecutive_chunks_of_a_section_overlap_by_whole_sentences() -> None:
    text = " ".join(sentence(3, f"s{i}_") for i in range(12))  # 12 sentences of 3 words
    doc = document(section((), text), section(("Next",), sentence(3, "n")))
    chunks = chunk(doc, max_tokens=12, overlap_tokens=4, count_tokens=words)
    first_section = [c for c in chunks if not c.heading_path]
    assert len(first_section) > 2
    for before, after in itertools.pairwise(first_section):
        # the next chunk starts with the last sentence of the one before (3 tokens <= 4)
        last_sentence = before.text.rsplit(". ", 1)[-1]
        assert after.text.startswith(last_sentence.removesuffix(".") + ".")
        assert after.text.split(". ")[1:] and after.text != before.text
    # and no chunk of the next section carries words of the one before
    assert chunks[-1].text == "Next\n\n" + sentence(3, "n")


def test_overlap_is_left_out_when_the_next_paragraph_would_not_fit_with_it() -> None:
    doc = document(section((), sentence(4, "a"), sentence(9, "b")))
    chunks = chunk(doc, max_tokens=10, overlap_tokens=5, count_tokens=words)
    assert [c.text for c in chunks] == [sentence(4, "a"), sentence(9, "b")]


def test_overlap_of_paragraphs_packed_together() -> None:
    paragraphs = [sentence(2, f"p{i}_") for i in range(8)]
    chunks = chunk(
        document(section((), *paragraphs)), max_tokens=6, overlap_tokens=2, count_tokens=words
    )
    texts = [c.text.split("\n\n") for c in chunks]
    assert texts[0] == paragraphs[0:3]
    assert texts[1] == paragraphs[2:5]  # starts with the last paragraph of the chunk before
    assert texts[-1][-1] == paragraphs[-1]


def test_a_heading_path_too_long_for_the_chunk_is_shortened_then_left_out() -> None:
    long = " ".join(["heading"] * 30)
    doc = document(section((long, "Short"), sentence(3)), section((long,), sentence(3)))
    chunks = chunk(doc, max_tokens=20, overlap_tokens=0, count_tokens=words)
    assert chunks[0].text == "Short\n\n" + sentence(3)
    assert chunks[1].text == sentence(3)
    assert chunks[1].heading_path == (long,)


def test_a_tokenizer_that_counts_joins_is_still_kept_under_the_limit() -> None:
    # counts every newline as a token, so the joined text costs more than its pieces
    def joins(text: str) -> int:
        return len(text.split()) + text.count("\n")

    doc = document(section(("H",), *[sentence(2, f"p{i}_") for i in range(30)]))
    chunks = chunk(doc, max_tokens=9, overlap_tokens=2, count_tokens=joins)
    assert chunks and all(c.tokens == joins(c.text) <= 9 for c in chunks)
    every = " ".join(c.text for c in chunks)
    for i in range(30):
        assert f"p{i}_1." in every


def test_markdown_file_chunks_carry_offsets_into_the_source() -> None:
    path = KB / "guide.md"
    source = path.read_text(encoding="utf-8")
    chunks = chunk(read_document(path, 1 << 20), max_tokens=30, overlap_tokens=5)
    assert {c.heading_path for c in chunks} >= {("Install", "From source"), ("Setext title",)}
    for piece in chunks:
        assert piece.start is not None and piece.end is not None and piece.page is None
        parts = body(piece).split("\n\n")
        assert source[piece.start : piece.end].startswith(parts[0])
        assert source[piece.start : piece.end].endswith(parts[-1])
        assert piece.source == path.as_posix()
    # the fence is kept whole, with its "#" line, in one chunk
    fence = [c for c in chunks if "```bash" in c.text]
    assert len(fence) == 1 and "make install\n```" in fence[0].text


def test_html_chunks_carry_the_element_span() -> None:
    path = KB / "page.html"
    source = path.read_text(encoding="utf-8")
    chunks = chunk(read_document(path, 1 << 20), max_tokens=100, overlap_tokens=0)
    overview = next(c for c in chunks if c.heading_path == ("Overview",))
    assert overview.start is not None
    assert source[overview.start : overview.end].startswith("The overview paragraph")


def test_pdf_chunks_carry_their_page() -> None:
    doc = Document(
        Path("paper.pdf"),
        "pdf",
        "0" * 64,
        (
            Section((), (Paragraph(sentence(8, "one")),), page=1),
            Section((), (Paragraph(sentence(8, "two")),), page=2),
        ),
    )
    chunks = chunk(doc, max_tokens=5, overlap_tokens=0, count_tokens=words)
    assert [(c.page, c.start, c.end) for c in chunks] == [(1, None, None)] * 2 + [
        (2, None, None)
    ] * 2
    assert all("one" not in c.text for c in chunks if c.page == 2)


def test_ids_are_stable_unique_and_depend_on_source_and_text() -> None:
    doc = read_document(KB / "guide.md", 1 << 20)
    first = chunk(doc, max_tokens=25, overlap_tokens=5)
    again = chunk(read_document(KB / "guide.md", 1 << 20), max_tokens=25, overlap_tokens=5)
    assert [c.id for c in first] == [c.id for c in again]
    assert len({c.id for c in first}) == len(first)
    assert all(re.fullmatch(r"[0-9a-f]{32}", c.id) for c in first)
    moved = chunk(Document(Path("elsewhere.md"), doc.kind, doc.sha256, doc.sections), 25, 5)
    assert not {c.id for c in moved} & {c.id for c in first}
    # an id changes with the text at its place, and only then
    bigger = chunk(doc, max_tokens=60, overlap_tokens=5)
    pairs = list(zip(first, bigger, strict=False))
    assert all((a.id == b.id) == (a.text == b.text) for a, b in pairs)
    assert any(a.text == b.text for a, b in pairs) and any(a.text != b.text for a, b in pairs)


@pytest.mark.parametrize(("max_tokens", "overlap"), [(0, 0), (10, -1), (10, 10), (10, 11)])
def test_bad_sizes_are_refused(max_tokens: int, overlap: int) -> None:
    with pytest.raises(ConfigurationError, match=r"max_tokens|overlap_tokens"):
        chunk(document(section((), "x.")), max_tokens, overlap)


def test_empty_sections_give_no_chunks() -> None:
    doc = document(Section(("Only a heading",), ()))
    assert chunk(doc, 10, 0) == []


WORD = st.text(alphabet="abcdefghij.!?", min_size=1, max_size=12)
PARAGRAPH = st.lists(WORD, min_size=1, max_size=40).map(" ".join)
SECTIONS = st.lists(
    st.tuples(
        st.lists(st.sampled_from(["A", "B", "C"]), max_size=2), st.lists(PARAGRAPH, max_size=6)
    ),
    min_size=1,
    max_size=4,
)


@settings(max_examples=150, deadline=None)
@given(sections=SECTIONS, max_tokens=st.integers(4, 40), overlap=st.integers(0, 39))
def test_every_word_is_kept_and_no_chunk_is_over_the_limit(
    sections: list[tuple[list[str], list[str]]], max_tokens: int, overlap: int
) -> None:
    overlap = min(overlap, max_tokens - 1)
    doc = document(*(section(tuple(path), *texts) for path, texts in sections))
    for count in (words, estimate_tokens):
        chunks = chunk(doc, max_tokens, overlap, count_tokens=count)
        for piece in chunks:
            assert piece.tokens == count(piece.text) <= max_tokens
        for index, (path, texts) in enumerate(sections):
            mine = " ".join(body(c) for c in chunks if c.heading_path == tuple(path))
            for text in texts:
                for word in text.split():
                    # a word longer than a chunk is cut into runs; check it by its characters
                    if count(word) <= max_tokens // 2:
                        assert word in mine.split(), (index, word)
        assert [c.ordinal for c in chunks] == list(range(len(chunks)))


@pytest.mark.parametrize(
    "text",
    [
        "z" * 1_000_000,  # a 1 MB line without spaces
        "\n" * 100_000 + "end",  # 100k blank lines
        "." * 1_000_000,  # a megabyte of sentence ends
        "a " * 300_000,  # 300k words in one sentence
    ],
    ids=["long-line", "blank-lines", "dots", "many-words"],
)
def test_adversarial_input_is_chunked_in_linear_time(tmp_path: Path, text: str) -> None:
    path = tmp_path / "hostile.md"
    path.write_text("# T\n\n" + text, encoding="utf-8")
    started = time.perf_counter()
    chunks = chunk(read_document(path, 2 << 20), max_tokens=256, overlap_tokens=32)
    assert time.perf_counter() - started < 10
    assert chunks and all(c.tokens <= 256 for c in chunks)
    assert text.split()[-1][-5:] in chunks[-1].text
