"""A request cut into the pieces its writer made: paragraphs, list items and sentences.

Everything works on a *masked* copy of the request (:func:`mask`): quoted text, code and
asides keep their length but lose their punctuation and line breaks, so that a full stop
inside "quoted text", a list marker inside a code block or a comma inside parentheses never
cuts the request. Offsets into the masked copy are offsets into the request.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from automatos.phases.plan.lexicon import verb_of

__all__ = ["MASK", "Unit", "mask", "sentences", "units"]

MASK = "\x1a"
"""What masked characters become: neither a word character, nor space, nor punctuation."""

_PROTECTED = re.compile(
    r"```.*?(?:```|\Z)"  # fenced code, to the end when it is never closed
    r"|`[^`\n]*`"
    r'|"[^"\n]{0,400}"'
    r"|“[^”]{0,400}”|‘[^’]{0,400}’|«[^»]{0,400}»|„[^“”]{0,400}[“”]"
    r"|(?<!\w)'[^'\n]{1,400}'(?!\w)"  # 'quoted', not an apostrophe
    r"|\([^()\n]{4,400}\)"  # asides; "(1)" stays a marker
    r"|\[[^\[\]\n]{1,400}\]"
    r"|\b(?:https?|ftp)://\S+|\bwww\.\S+"
    r"|(?<![\w.+-])[\w.+-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63})+",  # bounded: no backtracking
    re.DOTALL,
)


def mask(text: str) -> str:
    """``text`` with the inside of quotes, code, brackets and links masked (same length)."""

    def blank(match: re.Match[str]) -> str:
        inner = match.group()
        if len(inner) <= 2:
            return inner
        return inner[0] + MASK * (len(inner) - 2) + inner[-1]

    return _PROTECTED.sub(blank, text)


@dataclass(frozen=True, slots=True)
class Unit:
    """A paragraph of prose or one item of a list, as offsets into the request."""

    start: int
    end: int
    list_group: int | None = None
    """Items of one list share a group; prose has none."""
    number: int | None = None
    """A numbered item's number."""


_MARKER = re.compile(
    r"[ \t]*(?:(?P<bullet>[-*•·‣▪◦–—+])|\(?(?P<number>\d{1,3})[.)](?!\d)|\(?[a-zA-Z]\)"
    r"|(?:step|part|task)\s*(?P<step>\d{1,3})\s*[:.)-])[ \t]+(?=\S)",
    re.IGNORECASE,
)
_INLINE_NUMBER = re.compile(r"(?:^|(?<=\s))\(?(\d{1,2})[.)](?=\s+\S)")


def units(masked: str) -> list[Unit]:
    """The paragraphs and list items of a (masked) request, in order.

    A list is two or more marked lines ("1.", "-", "a)", "Step 2:"); a line under an item
    that is indented, or starts in lower case, continues that item, and so do more deeply
    indented sub-items. A paragraph numbered inline ("1) do this 2) do that") is a list too.
    """
    lines: list[tuple[int, int]] = []
    pos = 0
    for line in masked.split("\n"):
        lines.append((pos, pos + len(line)))
        pos += len(line) + 1
    marks = [_MARKER.match(masked, a, b) for a, b in lines]
    listed = _list_lines(masked, lines, marks)
    next_text: list[int | None] = [None] * len(lines)  # the next line with text, per line
    upcoming: int | None = None
    for n in range(len(lines) - 1, -1, -1):
        next_text[n] = upcoming
        if masked[lines[n][0] : lines[n][1]].strip():
            upcoming = n
    result: list[Unit] = []
    group = 1
    prose_start: int | None = None
    prose_end = 0
    item: list[int] | None = None  # start, end, indent, number (-1 for none)
    for n, (a, b) in enumerate(lines):
        text = masked[a:b]
        blank = not text.strip()
        mark = marks[n] if listed[n] else None
        if mark is not None:
            indent = len(text) - len(text.lstrip())
            if item is not None and indent > item[2]:
                item[1] = b  # a sub-item belongs to its item
                continue
            if prose_start is not None:
                result.extend(_prose(masked, prose_start, prose_end))
                prose_start = None
            if item is not None:
                result.append(_item(item, group))
            number = mark.group("number") or mark.group("step")
            item = [mark.end(), b, indent, int(number) if number else -1]
            continue
        if item is not None and not blank:
            indented = text[:1].isspace()
            if indented or (text.lstrip()[:1].islower() and not _ended(masked, item[1])):
                item[1] = b
                continue
        if item is not None and blank:
            following = next_text[n]
            if following is not None and listed[following]:
                continue  # a loose list: blank lines between its items
        if item is not None:
            result.append(_item(item, group))
            item = None
            group += 1
        if blank:
            if prose_start is not None:
                result.extend(_prose(masked, prose_start, prose_end))
                prose_start = None
            continue
        if prose_start is None:
            prose_start = a
        prose_end = b
    if item is not None:
        result.append(_item(item, group))
    if prose_start is not None:
        result.extend(_prose(masked, prose_start, prose_end))
    return result


def _list_lines(
    masked: str, lines: list[tuple[int, int]], marks: list[re.Match[str] | None]
) -> list[bool]:
    """Which marked lines are list items: those with another marked line of their kind
    (a lone "- " or "1." line is prose)."""
    kinds = [
        None if m is None else "number" if (m.group("number") or m.group("step")) else "other"
        for m in marks
    ]
    counts = {k: kinds.count(k) for k in ("number", "other")}
    return [k is not None and counts[k] >= 2 for k in kinds]


def _item(item: list[int], group: int) -> Unit:
    return Unit(item[0], item[1], group, item[3] if item[3] >= 0 else None)


def _ended(masked: str, end: int) -> bool:
    """Whether the text before ``end`` finishes a sentence or a clause."""
    end -= 1
    while end >= 0 and masked[end].isspace():
        end -= 1
    return end < 0 or masked[end] in ".!?:;"


def _prose(masked: str, start: int, end: int) -> list[Unit]:
    """A paragraph, as a list when it is numbered inline (1 … n in order), else whole."""
    run: list[re.Match[str]] = []
    for m in _INLINE_NUMBER.finditer(masked, start, end):
        if int(m.group(1)) == len(run) + 1:
            run.append(m)
    if len(run) < 2:
        return [Unit(start, end)]
    result: list[Unit] = []
    if masked[start : run[0].start()].strip():
        result.append(Unit(start, run[0].start()))
    group = -(start + 1)  # distinct from the line lists' groups
    for k, m in enumerate(run):
        stop = run[k + 1].start() if k + 1 < len(run) else end
        result.append(Unit(m.end(), stop, group, k + 1))
    return result


_ABBREVIATIONS = frozenset(
    "e.g i.e etc vs mr mrs ms dr st no fig approx incl cf al jr sr inc ltd co prof dept est "
    "min max ca resp viz eg ie".split()
)
_END = re.compile(r"[.!?。！？]+[\"')\]]*(?=\s|$)|[。！？]")


def sentences(masked: str, start: int, end: int) -> list[tuple[int, int]]:
    """The sentences of ``masked[start:end]`` as spans.

    A sentence ends at ".", "!" or "?" followed by a space (not after an abbreviation,
    an initial or a number's point), at a line that ends in punctuation or a colon, and
    at a line break before a capital; a line that wraps mid-sentence is joined.
    """
    spans: list[tuple[int, int]] = []
    begin = start
    for m in _END.finditer(masked, start, end):
        word = masked[max(begin, m.start() - 40) : m.start()].rsplit(None, 1)[-1:] or [""]
        token = word[0].lower().strip("\"'(")
        if m.group().startswith(".") and (
            token in _ABBREVIATIONS
            or (len(token) == 1 and token.isalpha() and _initial(masked, m.end()))
        ):
            continue
        spans.append((begin, m.end()))
        begin = m.end()
    spans.append((begin, end))
    result: list[tuple[int, int]] = []
    for a, b in spans:
        result.extend(_line_breaks(masked, a, b))
    return [(a, b) for a, b in (_trimmed(masked, a, b) for a, b in result) if a < b]


def _initial(masked: str, after: int) -> bool:
    """Whether a single letter and its point end at ``after`` as an initial ("J. K.
    Rowling"), not as a sentence ("Research A. Research B."): a verb does not follow."""
    following = masked[after : after + 40].split(None, 1)
    if not following:
        return False
    word = following[0].strip(".,;:!?\"'()").lower()
    return verb_of(word) is None


def _line_breaks(masked: str, start: int, end: int) -> list[tuple[int, int]]:
    """A sentence split at its line breaks where the line ends a clause or the next one
    starts a new thought (a capital, a digit)."""
    spans: list[tuple[int, int]] = []
    begin = start
    pos = masked.find("\n", start, end)
    while pos >= 0:
        before = masked[begin:pos].rstrip()
        after = masked[pos + 1 : end].lstrip()
        if (
            before
            and after
            and (before[-1] in ".!?:;" or after[:1].isupper() or after[:1].isdigit())
        ):
            spans.append((begin, pos))
            begin = pos + 1
        pos = masked.find("\n", pos + 1, end)
    spans.append((begin, end))
    return spans


def _trimmed(masked: str, start: int, end: int) -> tuple[int, int]:
    while start < end and masked[start].isspace():
        start += 1
    while end > start and masked[end - 1].isspace():
        end -= 1
    return start, end
