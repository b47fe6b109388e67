"""How an agent states findings in its answer, and how they are read back out of it.

An agent asked to share (see :func:`instruction`) ends its answer with a block::

    Findings:
    - FACT: the launch date moved to 14 March
    - DECISION: the announcement goes out a week before
    - QUESTION: does the venue confirm the new date?

:func:`extract_findings` takes such blocks out of the answer (the committed output, which
the user sees and the scorers grade, does not carry them) and returns the findings, bounded
in number and length. Reading is lenient where models vary: the heading's case and markdown
(``## Findings``, ``**Findings:**``, ``Shared findings``), bullets or numbers or none, a label
in any case, singular or plural, bold or bracketed, followed by a colon or a spaced dash
(``Fact: …``, ``**DECISION** - …``, ``[question] …``), blank lines between items, and an
indented line continuing the item above. It is strict where leniency would eat the answer:
a block is a findings heading *followed by labelled items*; a "Findings" section of a report
whose bullets carry no FACT/DECISION/QUESTION label is left alone, and the block ends at the
first line that is neither an item, its continuation nor a blank line before another item.
An answer without a block shares nothing.

The other half, how findings are quoted into a later subtask's prompt with their provenance,
is :func:`finding_line` and :func:`quote_findings`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from automatos.domain.collaboration import Finding
from automatos.field.base import FindingKind
from automatos.prompts.catalog import FINDINGS, render

__all__ = [
    "FINDINGS_SHARE",
    "Extracted",
    "StatedFinding",
    "extract_findings",
    "finding_line",
    "findings_budget",
    "instruction",
    "quote_findings",
]


FINDINGS_SHARE = 4
"""Findings quoted into one prompt take at most ``1/FINDINGS_SHARE`` of
``execution.max_quoted_chars``; the dependencies' outputs get what the findings leave."""

_CUT = "…"

# Cheap test first: most answers never mention findings, and they are not scanned line by line.
_MENTION = re.compile("findings", re.IGNORECASE)
_HEADING = re.compile(
    r"(?:shared |key |new )?findings(?: for (?:later|the next|next|other) steps)?",
    re.IGNORECASE,
)
# An item is read step by step rather than by one regular expression: runs of blanks between
# optional parts would make a regex backtrack in cubic time on a line of spaces, and an
# answer is a model's output, which may be anything.
_BULLET_MARK = re.compile(r"[-*•+]|\d{1,3}[.)]")
_LABEL = re.compile(r"(facts?|decisions?|(?:open[ \t]+)?questions?)(?![^\W_])", re.IGNORECASE)
_BLANKS = " \t"
_EMPHASIS = ("**", "__")
_DASHES = "-–—"
_BULLET = re.compile(r"^[ \t]*(?:[-*•+]|\d{1,3}[.)])[ \t]")


@dataclass(frozen=True, slots=True)
class StatedFinding:
    """One finding as an agent stated it, before it is shared (and numbered)."""

    kind: FindingKind
    text: str


@dataclass(frozen=True, slots=True)
class Extracted:
    """An answer with its findings blocks taken out."""

    answer: str
    """The answer as it is committed: without the blocks (unchanged if it had none)."""
    findings: tuple[StatedFinding, ...] = ()
    """At most ``max_findings``, each at most ``max_chars`` long, duplicates dropped."""
    ignored: int = 0
    """Items beyond ``max_findings`` (taken out of the answer all the same)."""


def instruction(max_findings: int, template: str = FINDINGS) -> str:
    """What a subtask's prompt ends with when later steps may read its findings
    (``template``: the registry's ``findings`` version)."""
    return render(template, {"max_findings": max_findings})


def extract_findings(text: str, max_findings: int, max_chars: int) -> Extracted:
    """``text`` without its findings blocks, and the findings they state.

    Linear in the length of ``text``; a block of any size yields at most ``max_findings``
    findings of at most ``max_chars`` characters each.
    """
    if _MENTION.search(text) is None:
        return Extracted(text)
    scan = _Scan(text.split("\n"), max_findings * 2, max_chars)
    kept = scan.answer_lines()
    if not scan.found:
        return Extracted(text)
    findings: list[StatedFinding] = []
    seen: set[tuple[str, str]] = set()
    ignored = scan.overflow
    for kind, parts in scan.items:
        stated = _bounded(" ".join(" ".join(parts).split()), max_chars)
        key = (kind, stated.casefold())
        if not stated or key in seen:
            continue
        if len(findings) >= max_findings:
            ignored += 1
            continue
        seen.add(key)
        findings.append(StatedFinding(kind, stated))
    return Extracted("\n".join(kept).strip(), tuple(findings), ignored)


def _is_heading(line: str) -> bool:
    if len(line) > 80 or "indings" not in line.lower():
        return False
    core = line.strip().strip("#*_ \t").rstrip(":").strip("*_ \t").rstrip(":").strip()
    return _HEADING.fullmatch(core) is not None


class _Scan:
    """One pass over an answer's lines, collecting the items of its findings blocks."""

    def __init__(self, lines: list[str], keep: int, max_chars: int) -> None:
        self.lines = lines
        self.keep = keep
        """Items whose text is kept (duplicates and empty ones are dropped later); past it,
        items are still taken out of the answer, and only counted: a runaway block costs
        one regex match per line, nothing more."""
        self.max_chars = max_chars
        self.items: list[tuple[FindingKind, list[str]]] = []
        self.overflow = 0
        self.found = False

    def answer_lines(self) -> list[str]:
        """The lines of the answer outside findings blocks."""
        lines, kept = self.lines, []
        n, i = len(lines), 0
        while i < n:
            end = self._block_end(i) if _is_heading(lines[i]) else i
            if end == i:
                kept.append(lines[i])
                i += 1
                continue
            self.found = True
            if end >= n or not lines[end].strip():  # no run of blank lines left at the seam
                while kept and not kept[-1].strip():
                    kept.pop()
            i = end
        return kept

    def _block_end(self, start: int) -> int:
        """The line after the block headed at ``start``, with its items collected; ``start``
        itself if no labelled item follows the heading (then it is no block)."""
        lines, n, limit = self.lines, len(self.lines), self.max_chars + 1
        end = _next_filled(lines, start + 1)
        if end >= n or _item(lines[end]) is None:
            return start
        while end < n:
            line = lines[end]
            item = _item(line)
            if item is not None:
                if len(self.items) < self.keep:
                    self.items.append((item[0], [item[1][:limit]]))
                else:
                    self.overflow += 1
                end += 1
            elif not line.strip():
                after = _next_filled(lines, end)
                if after >= n or _item(lines[after]) is None:
                    return end
                end = after
            elif line[:1] in " \t" and not _BULLET.match(line):  # an indented continuation
                parts = self.items[-1][1] if self.items and not self.overflow else None
                if parts is not None and sum(map(len, parts)) < limit:
                    parts.append(line.strip()[:limit])
                end += 1
            else:
                return end
        return end


def _item(line: str) -> tuple[FindingKind, str] | None:
    """The kind and text of a labelled item (``- **FACT:** text``, ``[question] text``,
    ``Decision - text``), or ``None``; linear in the line's length."""
    rest = line.lstrip(_BLANKS)
    bullet = _BULLET_MARK.match(rest)
    if bullet is not None:
        rest = rest[bullet.end() :].lstrip(_BLANKS)
    rest = _unemphasised(rest)
    bracketed = rest.startswith("[")
    if bracketed:
        rest = rest[1:].lstrip(_BLANKS)
    label = _LABEL.match(rest)
    if label is None:
        return None
    rest = rest[label.end() :].lstrip(_BLANKS)
    if bracketed:
        if not rest.startswith("]"):
            return None
        rest = rest[1:].lstrip(_BLANKS)
    rest = _unemphasised(rest)
    # After a bracketed label the separator is optional; a bare one needs a colon, or a dash
    # followed by a blank (so that "Fact-checking is needed" is not a fact).
    if rest.startswith(":") or (len(rest) > 1 and rest[0] in _DASHES and rest[1] in _BLANKS):
        rest = rest[1:]
    elif not bracketed:
        return None
    text = _unemphasised(rest.lstrip(_BLANKS)).strip()
    if not text:
        return None
    word = label.group(1).lower()
    kind: FindingKind = (
        "fact" if word.startswith("fact") else "decision" if word[0] == "d" else "question"
    )
    return kind, text


def _unemphasised(text: str) -> str:
    return text[2:].lstrip(_BLANKS) if text.startswith(_EMPHASIS) else text


def _next_filled(lines: list[str], start: int) -> int:
    i = start
    while i < len(lines) and not lines[i].strip():
        i += 1
    return i


def _bounded(text: str, limit: int) -> str:
    text = text.strip("*_ \t")
    if len(text) <= limit:
        return text
    return text[: max(limit - len(_CUT), 0)].rstrip() + _CUT


def findings_budget(max_quoted_chars: int) -> int:
    """The characters findings may take in one prompt (see :data:`FINDINGS_SHARE`)."""
    return max_quoted_chars // FINDINGS_SHARE


def finding_line(finding: Finding) -> str:
    """One finding as quoted into a prompt: its id, kind and provenance, then its text."""
    mark = ""
    if finding.contradicts:
        mark = "; contradicts " + ", ".join(f"F{i}" for i in finding.contradicts)
    return (
        f"- [F{finding.id} {finding.kind}, from {finding.subtask_id} by {finding.agent}{mark}] "
        f"{finding.text}"
    )


_QUOTE_HEADING = (
    "Findings shared by other agents (each with its id, its kind, and the step and agent "
    "that wrote it):"
)


def quote_findings(findings: Sequence[Finding], budget: int) -> str:
    """The findings section of a prompt, within ``budget`` characters ("" for none).

    ``findings`` come most important first: those that fit are kept in that order of
    priority, then shown oldest first (ids read in order); a note says how many were left
    out. A section that cannot hold even one finding is left out whole.
    """
    if not findings:
        return ""
    lines = [finding_line(f) for f in findings]
    used = len(_QUOTE_HEADING)
    if used + sum(len(line) + 1 for line in lines) <= budget:
        chosen = sorted(range(len(findings)), key=lambda k: findings[k].id)
    else:
        note = len("\n(999999 more findings not shown: the quoted-output budget)")
        picked: list[int] = []
        for k, line in enumerate(lines):
            if used + len(line) + 1 + note <= budget:
                picked.append(k)
                used += len(line) + 1
        if not picked:
            return ""
        chosen = sorted(picked, key=lambda k: findings[k].id)
    text = _QUOTE_HEADING + "".join("\n" + lines[k] for k in chosen)
    left = len(findings) - len(chosen)
    if left:
        text += (
            f"\n({left} more finding{'s' if left != 1 else ''} not shown: the quoted-output budget)"
        )
    return text
