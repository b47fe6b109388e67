"""Reading documents for the knowledge base: Markdown, reStructuredText, text, HTML and PDF.

A file becomes a :class:`Document`: its path, the sha256 of its bytes (so that an unchanged
file can be skipped when it is added again) and its :class:`Section` s, each with the path of
headings it sits under and its paragraphs. Chunking (``retrieval.chunking``) works on that
structure and never has to know the format again.

What is read is bounded (``max_bytes``, read as :func:`automatos.files.read_user_file` reads),
text formats must be UTF-8 text (not binary bytes that happen to decode: a tar archive renamed
``.md`` is refused), and every parser here is a single pass over lines or tags with no
backtracking regular expression, so a one-megabyte line or a hundred thousand blank lines cost
no more than their size.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Literal

from automatos.errors import InvalidRequestError
from automatos.files import read_user_bytes

__all__ = ["KINDS", "Document", "Paragraph", "Section", "kinds_read", "read_document"]

DocumentKind = Literal["markdown", "rst", "text", "html", "pdf"]

KINDS: dict[str, DocumentKind] = {
    ".md": "markdown",
    ".markdown": "markdown",
    ".rst": "rst",
    ".txt": "text",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
}
"""The file extensions read (compared in lower case) and the kind each is read as."""


@dataclass(frozen=True, slots=True)
class Paragraph:
    """One block of a section: a paragraph, a list item, a code block.

    Attributes:
        text: the block's text. For Markdown, reStructuredText and text it is the source's own
            characters (a fenced code block with its fences); for HTML, the element's text with
            entities decoded and its whitespace collapsed (``<pre>`` kept as it is); for PDF,
            what pypdf extracted.
        kind: ``"code"`` for fenced code and ``<pre>``: chunking splits it at lines, not
            sentences.
        start: offset of the block in the document's text (newlines read as ``\\n``);
            ``None`` for PDF.
        end: offset just past the block; ``None`` for PDF.
        exact: whether ``text`` is the source's ``[start:end]`` character for character, so that
            offsets inside it are offsets in the source (not so for HTML, whose offsets are
            those of the element's content).
    """

    text: str
    kind: Literal["text", "code"] = "text"
    start: int | None = None
    end: int | None = None
    exact: bool = True


@dataclass(frozen=True, slots=True)
class Section:
    """The paragraphs under one heading.

    Attributes:
        heading_path: the headings this section sits under, outermost first, e.g.
            ``("Install", "From source")``; empty before the first heading, in text files and
            in PDFs.
        paragraphs: its blocks in order (a heading followed at once by a sub-heading has none).
        page: the page number (from 1) for a PDF, where each page is a section; else ``None``.
    """

    heading_path: tuple[str, ...]
    paragraphs: tuple[Paragraph, ...]
    page: int | None = None


@dataclass(frozen=True, slots=True)
class Document:
    """A file read into sections.

    Attributes:
        path: the path it was read from, as given.
        kind: the format it was read as (from its extension).
        sha256: hex sha256 of the file's bytes: the same bytes, the same document.
        sections: its sections in order.
    """

    path: Path
    kind: DocumentKind
    sha256: str
    sections: tuple[Section, ...]


def read_document(
    path: str | Path,
    max_bytes: int,
    *,
    setting: str | None = None,
    max_seconds: float | None = None,
    stop: threading.Event | None = None,
) -> Document:
    """Read ``path`` into a :class:`Document`, by its extension (see :data:`KINDS`).

    Args:
        path: the file.
        max_bytes: the most bytes read; a larger file is refused.
        setting: the setting behind ``max_bytes``, named in the error if there is one.

    Raises:
        InvalidRequestError: a file that is missing (whatever its name), of an extension not
            in :data:`KINDS`, unreadable or larger than ``max_bytes``; a text format that is
            not UTF-8, or that looks binary (NUL bytes, over 1% of control characters); a PDF
            that is encrypted or that pypdf cannot read. The message names the file.
    """
    path = Path(path)
    kind = KINDS.get(path.suffix.lower())
    if kind is None:
        if not os.path.lexists(path):  # what is wrong is that it is not there, not its name
            raise InvalidRequestError(f"cannot read {path}: {os.strerror(errno.ENOENT)}")
        what = f"{path.suffix} files" if path.suffix else "a file without an extension"
        raise InvalidRequestError(f"{path}: cannot read {what}; the kinds read are {kinds_read()}")
    data = read_user_bytes(path, max_bytes, setting=setting)
    digest = hashlib.sha256(data).hexdigest()
    if kind == "pdf":
        sections = _read_pdf(data, path, max_seconds, stop)
    else:
        text = _decode(data, path)
        _check_text(text, path, kind)
        parse = _PARSERS[kind]
        sections = parse(text)
    return Document(path=path, kind=kind, sha256=digest, sections=tuple(sections))


def kinds_read() -> str:
    """The extensions read, for a message: ``.htm, .html, .markdown, …``."""
    return ", ".join(sorted(KINDS))


def _check_text(text: str, path: Path, kind: DocumentKind) -> None:
    """Refuse what decodes as UTF-8 but is not text: NUL bytes (a tar archive, a run of
    zeros), or more than :data:`_MAX_CONTROL_SHARE` of control characters. Read as text, such
    bytes would become chunks of noise that a search would hand to a model."""
    if "\0" in text:
        why = "it holds NUL bytes"
    else:
        controls = len(text) - len(text.translate(_CONTROLS))
        if controls <= _MAX_CONTROL_SHARE * len(text):
            return
        why = f"{controls} of its {len(text)} characters are control characters"
    raise InvalidRequestError(
        f"{path} looks like a binary file, not {_KIND_NAMES[kind]} text ({why})"
    )


_MAX_CONTROL_SHARE = 0.01
"""The largest share of a text file's characters that may be control characters."""
_CONTROLS = {
    code: None for code in (*range(0x20), *range(0x7F, 0xA0)) if chr(code) not in "\t\n\r\f"
}
"""The control characters (C0, DEL and C1) a text may hold few of, as a table that deletes
them; tab, newline, carriage return and form feed are text."""
_KIND_NAMES: dict[DocumentKind, str] = {
    "markdown": "Markdown",
    "rst": "reStructuredText",
    "text": "plain",
    "html": "HTML",
    "pdf": "PDF",
}


def _decode(data: bytes, path: Path) -> str:
    """UTF-8 text with newlines as ``\\n`` and without a byte-order mark."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRequestError(
            f"{path} is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})"
        ) from None
    text = text.removeprefix("\ufeff")
    return text.replace("\r\n", "\n").replace("\r", "\n")


@dataclass(slots=True)
class _Sections:
    """Collects sections as headings and paragraphs arrive in document order."""

    sections: list[Section] = field(default_factory=list)
    _stack: list[tuple[int, str]] = field(default_factory=list)
    _paragraphs: list[Paragraph] = field(default_factory=list)

    def heading(self, level: int, title: str) -> None:
        """Close the current section and open one under ``title`` at ``level`` (1 outermost)."""
        self._close()
        while self._stack and self._stack[-1][0] >= level:
            self._stack.pop()
        self._stack.append((level, title))

    def paragraph(self, paragraph: Paragraph) -> None:
        """Add a block to the current section."""
        self._paragraphs.append(paragraph)

    def result(self) -> list[Section]:
        """The sections, the last one closed."""
        self._close()
        return self.sections

    def _close(self) -> None:
        path = tuple(title for _, title in self._stack)
        # Before the first heading nothing is lost by leaving out an empty section.
        if self._paragraphs or path:
            self.sections.append(Section(path, tuple(self._paragraphs)))
        self._paragraphs = []


def _lines(text: str) -> Iterator[tuple[int, str]]:
    """Each line of ``text`` (without its ``\\n``) with the offset it starts at."""
    start = 0
    while start <= len(text):
        end = text.find("\n", start)
        if end < 0:
            end = len(text)
        yield start, text[start:end]
        start = end + 1


def _is_blank(line: str) -> bool:
    return not line.strip()


def _read_text(text: str) -> list[Section]:
    """Plain text: paragraphs between blank lines, in one section without headings."""
    sections = _Sections()
    _blocks(text, sections)
    return sections.result()


def _blocks(text: str, sections: _Sections) -> None:
    start: int | None = None
    end = 0
    for offset, line in _lines(text):
        if _is_blank(line):
            if start is not None:
                sections.paragraph(Paragraph(text[start:end], "text", start, end))
            start = None
        else:
            start = offset if start is None else start
            end = offset + len(line)
    if start is not None:
        sections.paragraph(Paragraph(text[start:end], "text", start, end))


def _read_markdown(text: str) -> list[Section]:
    """Markdown: ATX (``#``) and setext (``===``/``---`` underlined) headings, paragraphs
    between blank lines, fenced code blocks (``````` or ``~~~``) kept whole: a ``#`` line inside
    a fence is code, not a heading. An unclosed fence runs to the end, as in CommonMark."""
    sections = _Sections()
    start: int | None = None  # the open paragraph's first offset
    end = 0
    lines: list[str] = []  # the open paragraph's lines, for a setext heading
    fence: tuple[str, int] | None = None

    def flush(kind: Literal["text", "code"] = "text") -> None:
        nonlocal start
        if start is not None:
            sections.paragraph(Paragraph(text[start:end], kind, start, end))
        start = None
        lines.clear()

    for offset, line in _lines(text):
        if fence is not None:
            end = offset + len(line)
            if _closes_fence(line, fence):
                flush("code")
                fence = None
            continue
        opened = _opens_fence(line)
        if opened is not None:
            flush()
            fence, start, end = opened, offset, offset + len(line)
        elif _is_blank(line):
            flush()
        elif (atx := _atx_heading(line)) is not None:
            flush()
            sections.heading(*atx)
        elif lines and (level := _setext_level(line)):
            title = " ".join(part.strip() for part in lines)
            start = None
            lines.clear()
            sections.heading(level, title)
        elif start is None and _is_thematic_break(line):
            continue
        else:
            start = offset if start is None else start
            end = offset + len(line)
            lines.append(line)
    flush("code" if fence is not None else "text")
    return sections.result()


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _opens_fence(line: str) -> tuple[str, int] | None:
    """The fence character and length if ``line`` opens a fenced code block."""
    if _indent(line) > 3:
        return None
    stripped = line.lstrip(" ")
    char = stripped[:1]
    if char not in ("`", "~"):
        return None
    length = len(stripped) - len(stripped.lstrip(char))
    if length < 3 or (char == "`" and "`" in stripped[length:]):
        return None
    return char, length


def _closes_fence(line: str, fence: tuple[str, int]) -> bool:
    char, length = fence
    stripped = line.strip()
    return (
        _indent(line) <= 3
        and len(stripped) >= length
        and stripped.startswith(char)
        and not stripped.strip(char)
    )


def _atx_heading(line: str) -> tuple[int, str] | None:
    """The level and title of an ATX heading (``## Title ##``), without a regex: a long line
    of ``#`` and spaces would make a backtracking pattern quadratic."""
    if _indent(line) > 3:
        return None
    stripped = line.strip()
    level = len(stripped) - len(stripped.lstrip("#"))
    if not 1 <= level <= 6:
        return None
    rest = stripped[level:]
    if rest and rest[0] not in " \t":
        return None
    # a closing run of "#" counts only after a space ("# C#" keeps its "#")
    unclosed = rest.rstrip("#")
    if not unclosed or unclosed[-1] in " \t":
        rest = unclosed
    title = rest.strip()
    return (level, title) if title else None


def _setext_level(line: str) -> int:
    """1 for a ``===`` underline, 2 for ``---``, 0 otherwise."""
    if _indent(line) > 3:
        return 0
    stripped = line.strip()
    if stripped and not stripped.strip("="):
        return 1
    if stripped and not stripped.strip("-"):
        return 2
    return 0


def _is_thematic_break(line: str) -> bool:
    compact = line.replace(" ", "").replace("\t", "")
    return (
        _indent(line) <= 3
        and len(compact) >= 3
        and compact[0] in "-*_"
        and not (compact.strip(compact[0]))
    )


_ADORNMENT = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")


def _adornment(line: str) -> str | None:
    """The character of a reStructuredText adornment line (``=====``), if ``line`` is one."""
    stripped = line.rstrip()
    if len(stripped) < 2 or stripped[0] not in _ADORNMENT or stripped.strip(stripped[0]):
        return None
    return stripped[0]


def _read_rst(text: str) -> list[Section]:
    """reStructuredText: section titles underlined, or over- and underlined, with a
    punctuation character. Levels follow docutils: each new style (character, with or
    without an overline) is one level deeper than the styles seen before it. A title must
    start a block and sit at the left margin, so lines in an indented literal block are never
    titles; a lone adornment line between blocks is a transition and is left out."""
    sections = _Sections()
    styles: list[tuple[str, bool]] = []
    lines = list(_lines(text))
    start: int | None = None
    end = 0

    def flush() -> None:
        nonlocal start
        if start is not None:
            sections.paragraph(Paragraph(text[start:end], "text", start, end))
        start = None

    def heading(style: tuple[str, bool], title: str) -> None:
        if style not in styles:
            styles.append(style)
        sections.heading(styles.index(style) + 1, title)

    i = 0
    while i < len(lines):
        offset, line = lines[i]
        after = lines[i + 1][1] if i + 1 < len(lines) else ""
        third = lines[i + 2][1] if i + 2 < len(lines) else ""
        char = _adornment(line)
        if _is_blank(line):
            flush()
        elif start is None and char and after.strip() and _adornment(third) == char:
            heading((char, True), after.strip())
            i += 3
            continue
        elif (
            start is None
            and not line[0].isspace()
            and (under := _adornment(after))
            and len(after.rstrip()) >= len(line.rstrip())
        ):
            heading((under, False), line.strip())
            i += 2
            continue
        elif start is None and char and not after.strip():
            pass  # a transition
        else:
            start = offset if start is None else start
            end = offset + len(line)
        i += 1
    flush()
    return sections.result()


_HTML_SKIP = frozenset("script style template title noscript svg nav footer aside".split())
"""Elements whose content is not the page's text: code, metadata, drawings, and the site's
furniture around the page (its menus, footer and sidebars), which would otherwise become
chunks of their own ("Home | HR") or be appended to the last section ("© 2024 Example")."""
_HTML_HEADINGS = {f"h{level}": level for level in range(1, 7)}
_HTML_BLOCKS = frozenset(
    "address article blockquote body br dd details div dl dt figcaption figure "
    "form header hr html li main ol p pre section summary table td th tr ul "
    "caption".split()
)


class _HtmlReader(HTMLParser):
    """Sections of an HTML page: ``h1``–``h6`` are headings, block elements end paragraphs,
    ``<pre>`` is code kept as it is, and what :data:`_HTML_SKIP` names is dropped with all it
    holds (the tags inside it too: a heading in a menu is not a heading of the page)."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self._line_starts = [0]
        self._line_starts.extend(offset + 1 for offset, _ in _newlines(text))
        self.sections = _Sections()
        self._skip = 0
        self._pre = 0
        self._heading: int | None = None
        self._buffer: list[str] = []
        self._start: int | None = None

    def _offset(self) -> int:
        line, column = self.getpos()
        return self._line_starts[line - 1] + column

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HTML_SKIP:
            self._skip += 1
        elif self._skip:
            return
        elif tag in _HTML_HEADINGS or tag in _HTML_BLOCKS:
            self._flush()
            if tag in _HTML_HEADINGS:
                self._heading = _HTML_HEADINGS[tag]
            elif tag == "pre":
                self._pre += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in _HTML_SKIP:
            self._skip = max(0, self._skip - 1)
        elif self._skip:
            return
        elif tag in _HTML_HEADINGS or tag in _HTML_BLOCKS:
            self._flush()
            if tag == "pre":
                self._pre = max(0, self._pre - 1)

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        if self._start is None:
            if not data.strip():
                return
            self._start = self._offset()
        self._buffer.append(data)

    def close(self) -> None:
        """Finish the page: the last paragraph is flushed."""
        super().close()
        self._flush()

    def _flush(self) -> None:
        raw = "".join(self._buffer)
        start, self._start, self._buffer = self._start, None, []
        level, self._heading = self._heading, None
        if level is not None:
            title = " ".join(raw.split())
            if title:
                self.sections.heading(level, title)
            return
        code = self._pre > 0
        text = raw.strip("\n").rstrip() if code else " ".join(raw.split())
        if text and start is not None:
            kind: Literal["text", "code"] = "code" if code else "text"
            self.sections.paragraph(Paragraph(text, kind, start, self._offset(), exact=False))


def _newlines(text: str) -> Iterator[tuple[int, str]]:
    offset = text.find("\n")
    while offset >= 0:
        yield offset, "\n"
        offset = text.find("\n", offset + 1)


def _read_html(text: str) -> list[Section]:
    reader = _HtmlReader(text)
    reader.feed(text)
    reader.close()
    return reader.sections.result()


def _read_pdf(
    data: bytes, path: Path, max_seconds: float | None, stop: threading.Event | None
) -> list[Section]:
    """Each page of a PDF is a section of its paragraphs (text between blank lines).

    A small PDF can take hours to read (every page drawing one huge shared content stream):
    past ``max_seconds`` it is refused, and once ``stop`` is set (the caller was cancelled)
    reading ends after the page it is on."""
    from pypdf import PdfReader  # here: reading Markdown needs no PDF library
    from pypdf.errors import PdfReadError, PyPdfError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise InvalidRequestError(f"{path} is an encrypted PDF; decrypt it first")
        began = time.monotonic()
        pages = []
        for number, page in enumerate(reader.pages, start=1):
            if stop is not None and stop.is_set():
                raise InvalidRequestError(f"{path}: reading was interrupted at page {number}")
            if number > 1 and max_seconds is not None and time.monotonic() - began > max_seconds:
                raise InvalidRequestError(
                    f"{path} took over {max_seconds:g} s to read and was given up at page "
                    f"{number} of {len(reader.pages)} (setting context.max_read_s)"
                )
            pages.append(page.extract_text())
    except InvalidRequestError:
        raise
    except (PdfReadError, PyPdfError) as exc:
        raise InvalidRequestError(f"{path} is not a PDF that can be read: {exc}") from exc
    except Exception as exc:
        # pypdf meets a damaged file with whatever its code trips on (KeyError, ValueError,
        # struct errors...): any of them means this file cannot be read.
        raise InvalidRequestError(
            f"{path} is not a PDF that can be read: {type(exc).__name__}: {exc}"
        ) from exc
    sections: list[Section] = []
    for number, page_text in enumerate(pages, start=1):
        paragraphs = _Sections()
        _blocks(page_text.replace("\r\n", "\n").replace("\r", "\n"), paragraphs)
        found = tuple(
            Paragraph(p.text, "text") for section in paragraphs.result() for p in section.paragraphs
        )
        if found:
            sections.append(Section((), found, page=number))
    return sections


_PARSERS: dict[str, Callable[[str], list[Section]]] = {
    "markdown": _read_markdown,
    "rst": _read_rst,
    "text": _read_text,
    "html": _read_html,
}
