"""What a request asks for: its separate deliverables and which of them use another's result.

:func:`shape_of` reads the request's own structure — numbered and bulleted lists, sentences,
clauses joined by "and", "then", ";" — and the words that tie one clause to another ("them",
"the results", "finally", "compare"). It runs no model and takes microseconds for a sentence,
a few milliseconds for a page, so the level classifier and the planner can call it freely.

The analysis is conservative: what it cannot read as separate deliverables stays one part,
the whole request, so a request in a language or a form it does not know is planned as one
step rather than cut wrongly. Each part's text is the request's own words, whole.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from automatos.phases.plan.clauses import (
    QUESTION,
    STRIP,
    TASK,
    Clause,
    bracketed,
    clauses_of,
    enumeration,
    norm,
    one_line,
)
from automatos.phases.plan.lexicon import (
    AGGREGATE_VERBS,
    DETERMINERS,
    DISTRIBUTIVE_VERBS,
    GENERIC_OUTPUTS,
    OBJECT_SLOTS,
    PREPOSITIONS,
    PRONOUNS,
    RESULT_NOUNS,
    WH_WORDS,
    Link,
)
from automatos.phases.plan.segments import mask

__all__ = ["Part", "RequestShape", "shape_of"]


@dataclass(frozen=True, slots=True)
class Part:
    """One deliverable of a request."""

    text: str
    """The request's own words for this deliverable, whole words, never cut."""
    uses: tuple[int, ...] = ()
    """Indexes of earlier parts whose results this one needs."""
    verb: str | None = None
    """Its work verb, in base form, when it has one."""
    question: bool = False
    """It is a question rather than an instruction."""


@dataclass(frozen=True, slots=True)
class RequestShape:
    """The deliverables of a request and how they depend on each other."""

    parts: tuple[Part, ...]
    """At least one; one part, the whole request, when it has one deliverable."""
    items: tuple[str, ...]
    """The items of the request's enumeration ("PostgreSQL", "Redis", "SQLite"), else ()."""
    verbs: frozenset[str]
    """Work verbs of its instructions, lower-case base forms."""
    words: int
    question: bool
    """It is one direct question ("What is 12 * 14?", "Who wrote Hamlet?")."""
    context: tuple[str, ...] = ()
    """What is no deliverable: the situation, constraints ("Be brief."), a goal that the
    deliverables make up ("Plan a trip to Japan:" before its list), quoted material."""

    @property
    def independent(self) -> tuple[int, ...]:
        """Indexes of the parts that use no other part's result."""
        return tuple(i for i, p in enumerate(self.parts) if not p.uses)


_NUMBER_REF = re.compile(
    r"\b(?:steps?|parts?|tasks?|items?|points?|questions?)\s+(\d{1,3})"
    r"(?:\s*(?:,|and|&|-|–|to)\s*(\d{1,3}))?|#(\d{1,3})\b",
    re.IGNORECASE,
)
_ALL_REF = re.compile(
    r"\b(?:all (?:of )?(?:the |these |those |this|that|them|above|results|findings|of it)|"
    r"everything|all of the above|each of (?:them|these|those|the above)|both|altogether|"
    r"in total|overall|total|combine[sd]?|merge|consolidate|synthesi[sz]e|put (?:it|them) "
    r"(?:all )?together)\b",
    re.IGNORECASE,
)
_PLURAL_REF = re.compile(
    r"\b(?:they|them|those|these|each one|each of them|the (?:two|three|four|five|six|seven|"
    r"eight|nine|ten|\d+)\b)|\b(?:for|to|of|on|about) each\s*(?:[.,;:!?]|$)|\btheir\b",
    re.IGNORECASE,
)
_EACH = re.compile(r"\b(?:each|every|separately|individually|one by one|in turn)\b", re.I)


@dataclass(slots=True)
class _Draft:
    text: str
    clause: Clause
    probe: str
    """Its words as masked, lower case: what references are looked for in."""
    uses: set[int] = field(default_factory=set)
    group: int = -1
    """Parts expanded from one enumeration share a group."""


def shape_of(text: str) -> RequestShape:
    """The deliverables of ``text`` and the references between them."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    words = len(text.split())
    masked = mask(text)
    clauses, context = clauses_of(text, masked)
    for clause in clauses:
        if clause.enum is None and clause.kind in (TASK, QUESTION):
            clause.enum = bracketed(text, masked, clause) or enumeration(masked, clause)
    items = _largest_enumeration(text, clauses)
    verbs = frozenset(c.verb for c in clauses if c.verb and c.kind == TASK)
    deliverables = [c for c in clauses if c.kind in (TASK, QUESTION) and not c.umbrella]
    drafts = _drafts(text, masked, deliverables)
    if any(not d.clause.goal for d in drafts) and any(d.clause.goal for d in drafts):
        context = (*context, *(d.text for d in drafts if d.clause.goal))
        drafts = [d for d in drafts if not d.clause.goal]
    if len(drafts) < 2:
        whole = one_line(text)
        sole = deliverables[0] if len(deliverables) == 1 else None
        question = (
            sole.kind == QUESTION
            if sole is not None
            else not deliverables and _looks_like_question(masked)
        )
        verb = sole.verb if sole is not None else None
        part = Part(whole or text, verb=verb, question=question)
        return RequestShape((part,), items, verbs, words, question, context)
    _link(drafts)
    parts = tuple(
        Part(
            d.text,
            tuple(sorted(d.uses)),
            verb=d.clause.verb,
            question=d.clause.kind == QUESTION,
        )
        for d in drafts
    )
    return RequestShape(parts, items, verbs, words, False, context)


def _largest_enumeration(text: str, clauses: list[Clause]) -> tuple[str, ...]:
    best: tuple[str, ...] = ()
    for clause in clauses:
        if clause.kind not in (TASK, QUESTION) or clause.enum is None:
            continue
        found = tuple(_item_words(text[a:b]) for a, b in clause.enum.items)
        if len(found) > len(best):
            best = found
    return tuple(i for i in best if i)


# --- parts and references ---------------------------------------------------------------


def _drafts(text: str, masked: str, deliverables: list[Clause]) -> list[_Draft]:
    """The deliverables as parts, an enumeration expanded into one part per item where its
    items are separate pieces of work."""
    drafts: list[_Draft] = []
    for n, clause in enumerate(deliverables):
        enum = clause.enum
        whole = [(clause.start, clause.end)]
        if not any(ch.isalnum() for ch in text[clause.start : clause.end]):
            continue
        if (
            len(masked[clause.start : clause.end].split()) < 2
            and drafts
            and not clause.listed  # a list item is a deliverable however short
            and (clause.verb not in AGGREGATE_VERBS)
        ):
            continue  # "Explain." after a deliverable elaborates it
        wanted = _wanted(masked, clause)
        if len(wanted) >= 2:
            drafts.extend(_draft(text, masked, clause, [piece], -1) for piece in wanted)
        elif enum is not None and _expands(masked, clause, deliverables[n + 1 :]):
            for k, item in enumerate(enum.items):
                spans = [enum.prefix, item] if enum.prefix[0] < enum.prefix[1] else [item]
                if enum.tail[0] < enum.tail[1] and (
                    enum.distribute_tail or k == len(enum.items) - 1
                ):
                    spans.append(enum.tail)
                drafts.append(_draft(text, masked, clause, spans, n, enum.separator))
        else:
            drafts.append(_draft(text, masked, clause, whole, -1))
    return drafts


def _draft(
    text: str,
    masked: str,
    clause: Clause,
    spans: list[tuple[int, int]],
    group: int,
    separator: str = " ",
) -> _Draft:
    """A part made of pieces of the request (a prefix, an item, a tail)."""
    pieces = [one_line(text[a:b]) for a, b in spans]
    probes = [one_line(masked[a:b]) for a, b in spans]
    if len(pieces) > 1:
        pieces[0], probes[0] = pieces[0].rstrip(":"), probes[0].rstrip(":")
        pieces[0] += separator.rstrip()
        probes[0] += separator.rstrip()
    words = _part_text(" ".join(p for p in pieces if p), clause)
    return _Draft(_sentence_case(words), clause, " ".join(probes).lower(), group=group)


def _wanted(masked: str, clause: Clause) -> list[tuple[int, int]]:
    """The things an "I need …" clause lists, when it lists several ("a list of questions,
    sample answers, and a study plan")."""
    if clause.wants is None:
        return []
    pieces: list[tuple[int, int]] = []
    begin = clause.wants
    for m in re.finditer(
        r",\s*(?:(?:and|or)\s+)?|\s+and\s+(?=(?:a|an|the|some|\d+)\s)",
        masked[clause.wants : clause.end],
    ):
        pieces.append((begin, clause.wants + m.start()))
        begin = clause.wants + m.end()
    pieces.append((begin, clause.end))
    if len(pieces) < 2 or any(len(masked[a:b].split()) < 2 for a, b in pieces):
        return []
    return pieces


def _expands(masked: str, clause: Clause, later: list[Clause]) -> bool:
    """Whether an enumeration's items are separate pieces of work: a verb such as
    "describe" before them, and "each", three or more items, or a later step on them all."""
    enum = clause.enum
    if enum is not None and enum.separate and clause.kind == TASK:
        return clause.verb not in AGGREGATE_VERBS  # "Compare these:" then a list weighs them
    if enum is None or clause.kind != TASK or clause.verb not in DISTRIBUTIVE_VERBS:
        return False
    prefix = masked[enum.prefix[0] : enum.prefix[1]].lower().split()
    if any(w in ("that", "which", "who", "to", "with", "between", "and", "or") for w in prefix):
        return False
    if _EACH.search(masked, clause.start, clause.end) or len(enum.items) >= 3:
        return True
    return any(
        c.verb in AGGREGATE_VERBS
        or _PLURAL_REF.search(masked, c.start, c.end)
        or _ALL_REF.search(masked, c.start, c.end)
        for c in later[:3]  # "then compare them" follows closely
    )


def _link(drafts: list[_Draft]) -> None:
    """Which earlier parts each part uses, from its connectives and references.

    Parts expanded from one enumeration never use each other. "Them", "the results" and a
    closing "then" or "finally" use the open parts (those no later part uses yet), "it"
    and "this" the part before, "all" and "everything" every part before.
    """
    numbered = {
        d.clause.list_number: i for i, d in enumerate(drafts) if d.clause.list_number is not None
    }
    group_start: list[int] = []
    for i, draft in enumerate(drafts):
        same = i > 0 and draft.group >= 0 and drafts[i - 1].group == draft.group
        group_start.append(group_start[i - 1] if same else i)
    open_parts: dict[int, None] = {}  # insertion-ordered: the parts no later part uses yet
    for i, draft in enumerate(drafts):
        first = group_start[i]
        if first > 0:
            previous = first - 1
            before = list(range(group_start[previous], first))  # "it": the part (or group) before
            draft.uses = _references(draft, drafts, i, first, before, open_parts, numbered)
            for used in draft.uses:
                open_parts.pop(used, None)
        open_parts[i] = None


def _references(
    draft: _Draft,
    drafts: list[_Draft],
    i: int,
    first: int,
    before: list[int],
    open_parts: dict[int, None],
    numbered: dict[int, int],
) -> set[int]:
    """The earlier parts (indexes below ``first``) that part ``i`` uses."""
    probe, clause = draft.probe, draft.clause
    uses: set[int] = set()
    for m in _NUMBER_REF.finditer(probe):
        numbers = [int(g) for g in m.groups() if g]
        if m.group(2) and re.search(r"-|–|\bto\b", m.group(0)):
            numbers = list(range(numbers[0], min(numbers[-1], len(drafts)) + 1))
        for number in numbers:
            target = numbered.get(number, number - 1 if not numbered else None)
            if target is not None and 0 <= target < first:
                uses.add(target)
    if uses:
        return uses
    if _ALL_REF.search(probe):
        return set(range(first))

    def sinks() -> set[int]:
        return {j for j in open_parts if j < first} or set(before)

    if _PLURAL_REF.search(probe) or _result_noun(probe):
        found = sinks()
        return found if len(found) > 1 else set(before)
    if _singular_ref(probe):
        return set(before)
    if clause.link in (Link.SEQUENCE, Link.FINAL):
        return sinks()
    aggregates = clause.verb in AGGREGATE_VERBS and not _own_object(probe, drafts, first)
    if aggregates or (_topicless(probe) and i == len(drafts) - 1):
        return sinks()
    if _demonstrative_ref(probe, drafts, first):
        return set(before)
    return set()


def _result_noun(lower: str) -> bool:
    for m in re.finditer(r"\b(?:the|these|those|your|my)\s+(\w+)", lower):
        if m.group(1) in RESULT_NOUNS:
            return True
    return bool(re.search(r"\b(?:above|previous|earlier|preceding|resulting)\b", lower))


def _singular_ref(lower: str) -> bool:
    """ "it", "this" or "that" in the place of an object ("summarise it", "based on that")."""
    words = [norm(w) for w in lower.split()]
    for k, w in enumerate(words):
        if w == "its":
            return True
        if w in ("it", "this", "that") and k > 0 and words[k - 1] in OBJECT_SLOTS:
            nxt = words[k + 1] if k + 1 < len(words) else ""
            if w == "that" and nxt and nxt not in PREPOSITIONS:
                continue  # "find a tool that parses": a relative clause
            if w == "this" and nxt and nxt not in PREPOSITIONS and nxt not in ("up", "out"):
                continue  # "this code": a determiner, handled with its noun
            return True
    return False


def _demonstrative_ref(lower: str, drafts: list[_Draft], first: int) -> bool:
    """ "this/that/these/those NOUN" where an earlier part names that noun."""
    for m in re.finditer(r"\b(?:this|that|these|those|such)\s+(\w+)", lower):
        noun = m.group(1)
        stem = noun[:-1] if noun.endswith("s") and len(noun) > 3 else noun
        if len(stem) > 2 and any(
            stem in drafts[j].text.lower() for j in range(first) if drafts[j].clause.verb
        ):
            return True
    return False


def _own_object(lower: str, drafts: list[_Draft], first: int) -> bool:
    """Whether an aggregating step ("compare", "rank") names things no earlier part does,
    in its object (the words before a preposition: "recommend one for a student")."""
    words = []
    for w in (norm(w) for w in lower.split()[1:]):
        if w in PREPOSITIONS:
            break
        words.append(w)
    content = [
        w
        for w in words
        if len(w) > 2
        and w not in DETERMINERS
        and w not in PREPOSITIONS
        and w not in PRONOUNS
        and w not in GENERIC_OUTPUTS
        and w not in ("and", "or", "best", "most", "least", "which", "what")
    ]
    if not content:
        return False
    earlier = " ".join(d.text.lower() for d in drafts[:first])
    return not all(w in earlier for w in content[:3])


def _topicless(lower: str) -> bool:
    """A step with nothing of its own to work on ("write a short report")."""
    words = [norm(w) for w in lower.split()[1:]]
    rest = [w for w in words if w not in DETERMINERS and w not in GENERIC_OUTPUTS and w]
    return bool(words) and not rest


# --- words -------------------------------------------------------------------------------


def _part_text(body: str, clause: Clause) -> str:
    """A part's words: the clause without the punctuation that joined it to the next."""
    text = body.rstrip(" ,;:")
    if clause.kind != QUESTION:
        text = text.rstrip(".!?")
    return text.strip() or body


def _item_words(text: str) -> str:
    words = one_line(text).strip(" ,;:" + STRIP).split(" ")
    if len(words) > 1 and words[0].lower() in ("the", "a", "an"):
        words = words[1:]
    return " ".join(words)


def _sentence_case(text: str) -> str:
    return text[:1].upper() + text[1:] if text[:1].islower() else text


def _looks_like_question(masked: str) -> bool:
    stripped = masked.strip()
    if stripped.endswith("?"):
        return True
    head = norm(stripped.split(None, 1)[0]) if stripped else ""
    return head in WH_WORDS
