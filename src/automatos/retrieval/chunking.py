"""Cutting a :class:`~automatos.retrieval.documents.Document` into chunks for retrieval.

A chunk stays inside one section. Within it, paragraphs are packed whole while they fit; a
paragraph that does not fit in what is left of a chunk starts the next one, and a paragraph
larger than a whole chunk is cut at sentences (at lines, for code), a sentence larger than a
chunk at words, and a word larger than a chunk into runs of characters. Consecutive chunks of a
section overlap: the next one starts with the last whole sentences (or lines) of the one before,
up to ``overlap_tokens``.

Each chunk's text starts with its heading path (``"Install > From source\\n\\n..."``), which is
counted in its tokens, so that the heading's words are found by retrieval with the chunk.

Every token count is the caller's ``count_tokens`` (the model's tokenizer); each piece of text
is counted once, and each chunk's final text once more, so the work is linear in the document
(plus the overlap).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from automatos.errors import ConfigurationError
from automatos.llm.base import estimate_tokens
from automatos.retrieval.documents import Document, Paragraph, Section

__all__ = ["Chunk", "TokenCounter", "chunk", "estimate_tokens"]

TokenCounter = Callable[[str], int]
"""The number of tokens of a text, as a model's tokenizer counts them."""

_WORD = re.compile(r"\S+")
_SENTENCE_END = ".!?…。！？"
_CLOSERS = "\"')]}»”’"
_SEPARATOR = "\n\n"


@dataclass(frozen=True, slots=True)
class Chunk:
    """A piece of a document, sized for a model's context.

    Attributes:
        id: a stable id: the hex sha256 (first 32 digits) of the source, the ordinal and the
            text; the same file chunked the same way gives the same ids.
        source: the document's path (POSIX form), as it was read.
        ordinal: its place among the document's chunks, from 0.
        heading_path: the headings of its section, outermost first.
        text: the text to embed and to show a model: the heading path (``"A > B"``), a blank
            line, then the passage. Where the path would take more than half of
            ``max_tokens`` only its last heading is used, or none.
        tokens: ``count_tokens(text)``.
        start: offset of the passage in the document's text (see
            :attr:`~automatos.retrieval.documents.Paragraph.start`); for HTML, the start of
            the element it begins in; ``None`` for PDF.
        end: offset just past the passage (for HTML, the end of the element's content);
            ``None`` for PDF.
        page: the PDF page (from 1) it comes from; ``None`` for other formats.
    """

    id: str
    source: str
    ordinal: int
    heading_path: tuple[str, ...]
    text: str
    tokens: int
    start: int | None
    end: int | None
    page: int | None


@dataclass(frozen=True, slots=True)
class _Unit:
    """A piece chunks are made of: a sentence, a line of code, a word or a run of characters
    of one paragraph, ``[start:end]`` of its text."""

    paragraph: int
    start: int
    end: int
    tokens: int


def chunk(
    document: Document,
    max_tokens: int,
    overlap_tokens: int,
    count_tokens: TokenCounter = estimate_tokens,
) -> list[Chunk]:
    """The chunks of ``document``, in document order.

    Args:
        document: what :func:`~automatos.retrieval.documents.read_document` read.
        max_tokens: the most tokens of a chunk's text, heading path included. No chunk is
            larger, except one made of a single character that is alone larger (with its
            heading path) than ``max_tokens``, which cannot be cut further.
        overlap_tokens: about how many tokens of the end of a chunk the next chunk of the same
            section starts with, in whole sentences or lines (fewer when the next piece would
            not fit with them; none when the last sentence is larger than this).
        count_tokens: the model's tokenizer; by default :func:`estimate_tokens`.

    Raises:
        ConfigurationError: ``max_tokens`` below 1, or ``overlap_tokens`` negative or not
            below ``max_tokens``.
    """
    if max_tokens < 1:
        raise ConfigurationError(f"max_tokens must be at least 1, not {max_tokens}")
    if not 0 <= overlap_tokens < max_tokens:
        raise ConfigurationError(
            f"overlap_tokens must be at least 0 and below max_tokens ({max_tokens}), "
            f"not {overlap_tokens}"
        )
    source = document.path.as_posix()
    chunks: list[Chunk] = []
    for section in document.sections:
        for text, tokens, start, end in _section_chunks(
            section, max_tokens, overlap_tokens, count_tokens
        ):
            ordinal = len(chunks)
            key = f"{source}\0{ordinal}\0{text}".encode()
            chunks.append(
                Chunk(
                    id=hashlib.sha256(key).hexdigest()[:32],
                    source=source,
                    ordinal=ordinal,
                    heading_path=section.heading_path,
                    text=text,
                    tokens=tokens,
                    start=start,
                    end=end,
                    page=section.page,
                )
            )
    return chunks


def _prefix(path: tuple[str, ...], max_tokens: int, count: TokenCounter) -> str:
    """The heading path to put before each chunk of a section, at most half of a chunk."""
    for headings in (path, path[-1:]):
        if headings:
            prefix = " > ".join(headings) + _SEPARATOR
            if count(prefix) <= max_tokens // 2:
                return prefix
    return ""


def _section_chunks(
    section: Section, max_tokens: int, overlap: int, count: TokenCounter
) -> Iterator[tuple[str, int, int | None, int | None]]:
    """Text, tokens, start and end of each chunk of one section."""
    prefix = _prefix(section.heading_path, max_tokens, count)
    budget = max(1, max_tokens - count(prefix))
    paragraphs = section.paragraphs
    units: list[_Unit] = []
    sizes: list[int] = []  # per unit: tokens of its whole paragraph when that fits, else 0
    for index, paragraph in enumerate(paragraphs):
        found = list(_units(index, paragraph, budget, count))
        whole = sum(unit.tokens for unit in found)
        units.extend(found)
        sizes.extend(whole if whole <= budget and i == 0 else 0 for i in range(len(found)))

    begin, new = 0, 0  # the chunk's first unit; its first unit not in the chunk before
    while new < len(units):
        end, used = new, sum(unit.tokens for unit in units[begin:new])
        # leave out overlap that would keep the next paragraph (or piece) from fitting
        need = sizes[new] or units[new].tokens
        while begin < new and used + need > budget:
            used -= units[begin].tokens
            begin += 1
        while end < len(units):
            unit = units[end]
            whole = sizes[end]
            if end > new and whole and used + whole > budget:
                break  # a paragraph that fits in a chunk of its own is not split
            if end > new and used + unit.tokens > budget:
                break
            used += unit.tokens
            end += 1
        text, tokens = _text(prefix, paragraphs, units, begin, end), 0
        # the tokenizer may count the joined text above the sum of its pieces
        while (tokens := count(text)) > max_tokens and (end - new > 1 or begin < new):
            if begin < new:
                begin += 1
            else:
                end -= 1
            text = _text(prefix, paragraphs, units, begin, end)
        yield text, tokens, *_span(paragraphs, units[begin], units[end - 1])
        new = end
        begin = _overlap_start(units, begin, end, overlap)


def _overlap_start(units: list[_Unit], begin: int, end: int, overlap: int) -> int:
    """The first of the last units of ``units[begin:end]`` that together have at most
    ``overlap`` tokens; ``end`` if none (or all: a chunk never starts where the last did)."""
    start, total = end, 0
    while start - 1 > begin and total + units[start - 1].tokens <= overlap:
        start -= 1
        total += units[start].tokens
    return start


def _text(
    prefix: str, paragraphs: tuple[Paragraph, ...], units: list[_Unit], a: int, b: int
) -> str:
    """The prefix and the text of ``units[a:b]``: source text within a paragraph, paragraphs
    joined by a blank line."""
    parts: list[str] = []
    i = a
    while i < b:
        j = i
        while j + 1 < b and units[j + 1].paragraph == units[i].paragraph:
            j += 1
        parts.append(paragraphs[units[i].paragraph].text[units[i].start : units[j].end])
        i = j + 1
    return prefix + _SEPARATOR.join(parts)


def _span(
    paragraphs: tuple[Paragraph, ...], first: _Unit, last: _Unit
) -> tuple[int | None, int | None]:
    """Offsets in the document of the text from ``first`` to ``last``."""
    head, tail = paragraphs[first.paragraph], paragraphs[last.paragraph]
    if head.start is None or tail.start is None:
        return None, None
    start = head.start + first.start if head.exact else head.start
    end = tail.start + last.end if tail.exact else tail.end
    return start, end


def _units(index: int, paragraph: Paragraph, budget: int, count: TokenCounter) -> Iterator[_Unit]:
    """A paragraph's sentences (lines, for code), each cut further when larger than
    ``budget``: into words, then runs of characters."""
    text = paragraph.text
    pieces = _lines(text) if paragraph.kind == "code" else _sentences(text)
    for start, end in pieces:
        tokens = count(text[start:end])
        if tokens <= budget:
            yield _Unit(index, start, end, tokens)
            continue
        for match in _WORD.finditer(text, start, end):
            word_tokens = count(match.group())
            if word_tokens <= budget:
                yield _Unit(index, match.start(), match.end(), word_tokens)
                continue
            for a, b, run_tokens in _runs(
                text, match.start(), match.end(), word_tokens, budget, count
            ):
                yield _Unit(index, a, b, run_tokens)


def _sentences(text: str) -> Iterator[tuple[int, int]]:
    """Spans of the sentences of ``text``: runs of words up to one ending in ``.``, ``!`` or
    ``?`` (closing quotes and brackets after it allowed). Scanning words (``\\S+``) rather
    than matching a sentence pattern keeps a megabyte of ``....`` linear."""
    start: int | None = None
    end = 0
    for match in _WORD.finditer(text):
        start = match.start() if start is None else start
        end = match.end()
        last = match.group().rstrip(_CLOSERS)[-1:]
        if last and last in _SENTENCE_END:
            yield start, end
            start = None
    if start is not None:
        yield start, end


def _lines(text: str) -> Iterator[tuple[int, int]]:
    """Spans of the non-blank lines of ``text``."""
    start = 0
    while start < len(text):
        end = text.find("\n", start)
        end = len(text) if end < 0 else end
        if text[start:end].strip():
            yield start, end
        start = end + 1


def _runs(
    text: str, start: int, end: int, tokens: int, budget: int, count: TokenCounter
) -> Iterator[tuple[int, int, int]]:
    """``text[start:end]`` (a word larger than ``budget``) as runs of characters of at most
    ``budget`` tokens, each as long as the word's tokens per character suggest, halved until
    it fits."""
    guess = max(1, (end - start) * budget // max(tokens, 1))
    while start < end:
        length = min(guess, end - start)
        run_tokens = count(text[start : start + length])
        while run_tokens > budget and length > 1:
            length //= 2
            run_tokens = count(text[start : start + length])
        yield start, start + length, run_tokens
        start += length
