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
from collections.abc import Iterator
from dataclasses import dataclass, field

from automatos.phases.plan.lexicon import (
    AGGREGATE_VERBS,
    AMBIGUOUS_VERBS,
    AUXILIARIES,
    CONSTRAINT_HEADS,
    DETERMINERS,
    DISTRIBUTIVE_VERBS,
    GENERIC_OUTPUTS,
    LEADERS,
    OBJECT_SLOTS,
    PREPOSITIONS,
    RESULT_NOUNS,
    WH_WORDS,
    Link,
    verb_of,
)
from automatos.phases.plan.segments import Unit, mask, sentences, units

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


# Kinds of clause.
_TASK, _QUESTION, _CONSTRAINT, _CONTEXT = "task", "question", "constraint", "context"

_TOKEN = re.compile(r"[;,]|:(?=\s|$)|(?:[^\s;,:]|:(?!\s|$))+")
_STRIP = ".!?\"'()[]{}*_“”‘’«»…"
_LEADER = re.compile(
    r"(?:" + "|".join(f"(?P<g{i}>{pattern})" for i, (pattern, _) in enumerate(LEADERS)) + r")"
    r"(?=[\s,:]|$)[\s,:]*",
    re.IGNORECASE,
)
_WANT = re.compile(
    r"(?:i|we)\s+(?:need|want|would like|'d like|d like|am looking for|'m looking for)\s+"
    r"(?:(?:me|us)\s+)?(?P<object>\w)",
    re.IGNORECASE,
)
_LEAD_IN = re.compile(
    r"(?:for each|for every|for both|for all|in each case|using [^,]{1,80}|based on [^,]{1,80}|"
    r"with [^,]{1,60}|given [^,]{1,80}|in [^,]{1,60}|for [^,]{1,60}|from [^,]{1,60}|"
    r"after [^,]{1,60}|once [^,]{1,60}|if [^,]{1,80}|when [^,]{1,60}),\s*"
)
_ASKS = re.compile(r"\S+\s+(?:me|us)\s+(?:who|what|when|where|why|which|how|whether|if)\b")
_WINDOW = 300
"""Characters of a clause its head is read from."""
_GOAL = re.compile(r"(?:please\s+|can you\s+|could you\s+)*help (?:me|us)\b", re.IGNORECASE)
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
_MAKE_CONSTRAINT = frozenset("it them this that sure certain each every everything".split())
_MANNER = frozenset(
    "in as using with only briefly concisely formally informally clearly simply like".split()
)
_PRONOUNS = frozenset("me us them it him her you this that these those".split())
_COPULAS = frozenset("is are was were has have had 's".split())
_CONTEXT_HEADERS = frozenset(
    "requirements requirement constraints context background notes note details info "
    "information assumptions rules guidelines criteria facts data input inputs given "
    "preferences budget specs specification specifications".split()
)
_TEXT_VERBS = frozenset(
    "summarise translate proofread edit rewrite review fix debug explain analyse classify "
    "extract parse paraphrase convert correct improve shorten simplify critique check grade "
    "score rate tag label annotate count answer condense recap refactor optimise document "
    "interpret format".split()
)


@dataclass(slots=True)
class _Clause:
    start: int
    """Where the clause's own words start, after its leading connectives."""
    end: int
    kind: str
    link: int = Link.NONE
    head: int = 0
    """Where its verb or question word is: after a lead-in ("For each, list …")."""
    verb: str | None = None
    umbrella: bool = False
    """It ends in a colon and what follows it is its deliverables."""
    goal: bool = False
    """It asks for help with a goal ("Help me prepare for an interview."): when other
    deliverables follow, they make it up."""
    wants: int | None = None
    """Where the object of "I need …" starts, for a clause without a verb."""
    listed: bool = False
    list_number: int | None = None
    enum: _Enumeration | None = None


@dataclass(slots=True)
class _Enumeration:
    prefix: tuple[int, int]
    items: list[tuple[int, int]]
    tail: tuple[int, int]
    distribute_tail: bool
    separator: str = " "
    """Between the prefix and an item: ": " after a colon ("Research these companies:")."""


@dataclass(slots=True)
class _Draft:
    text: str
    clause: _Clause
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
    clauses, context = _clauses(text, masked)
    for clause in clauses:
        if clause.enum is None and clause.kind in (_TASK, _QUESTION):
            clause.enum = _enumeration(masked, clause)
    items = _largest_enumeration(text, clauses)
    verbs = frozenset(c.verb for c in clauses if c.verb and c.kind == _TASK)
    deliverables = [c for c in clauses if c.kind in (_TASK, _QUESTION) and not c.umbrella]
    drafts = _drafts(text, masked, deliverables)
    if sum(not d.clause.goal for d in drafts) >= 2 and any(d.clause.goal for d in drafts):
        context = (*context, *(d.text for d in drafts if d.clause.goal))
        drafts = [d for d in drafts if not d.clause.goal]
    if len(drafts) < 2:
        whole = _words(text)
        sole = deliverables[0] if len(deliverables) == 1 else None
        question = (
            sole.kind == _QUESTION
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
            question=d.clause.kind == _QUESTION,
        )
        for d in drafts
    )
    return RequestShape(parts, items, verbs, words, False, context)


# --- clauses ---------------------------------------------------------------------------


def _clauses(text: str, masked: str) -> tuple[list[_Clause], tuple[str, ...]]:
    """Every clause of the request in order, classified, and the words that are context."""
    clauses: list[_Clause] = []
    context: list[str] = []
    in_material = False  # a colon line asked for work on the text after it ("Summarise:")
    all_units = units(masked)
    i = 0
    while i < len(all_units):
        unit = all_units[i]
        i += 1
        if unit.list_group is not None:
            group = [unit]
            while i < len(all_units) and all_units[i].list_group == unit.list_group:
                group.append(all_units[i])
                i += 1
            _list_clauses(text, masked, group, clauses, context)
            in_material = False
            continue
        for n, (start, end) in enumerate(sentences(masked, unit.start, unit.end)):
            found = list(_sentence_clauses(masked, start, end))
            if in_material:
                # Material runs to a paragraph that starts with "then", "also", "finally".
                if found and found[0].link != Link.NONE and _line_start(masked, start):
                    in_material = False
                else:
                    context.append(_words(text[start:end]))
                    continue
            for clause in found:
                if clause.kind in (_CONSTRAINT, _CONTEXT):
                    context.append(_words(text[clause.start : clause.end]))
                clauses.append(clause)
            last = found[-1] if found else None
            in_material = (
                last is not None
                and masked[end - 1 : end] == ":"
                and last.kind == _TASK
                and last.verb in _TEXT_VERBS
            )
    for clause in clauses:
        if clause.umbrella:
            context.append(_words(text[clause.start : clause.end]))
    return clauses, tuple(c for c in context if c)


def _list_clauses(
    text: str, masked: str, group: list[Unit], clauses: list[_Clause], context: list[str]
) -> None:
    """The clauses of one list: its items are deliverables, or the objects of the clause
    that introduces the list ("Compare these databases:" then a list of names)."""
    item_clauses: list[list[_Clause]] = []
    for unit in group:
        found: list[_Clause] = []
        for start, end in sentences(masked, unit.start, unit.end):
            found.extend(_sentence_clauses(masked, start, end))
        item_clauses.append(found)
    intro = next((c for c in reversed(clauses) if c.end <= group[0].start), None)
    intro_headed = intro is not None and intro.kind in (_TASK, _QUESTION)
    firsts = [found[0] for found in item_clauses if found]
    if intro is not None and intro_headed and all(f.kind == _CONTEXT for f in firsts):
        spans = [(f.start, f.end) for f in firsts]
        intro.enum = _Enumeration(
            (intro.start, intro.end), spans, (intro.end, intro.end), False, ": "
        )
        intro.umbrella = False
        return
    header = _words(text[intro.start : intro.end]).lower().rstrip(":") if intro else ""
    as_context = intro is not None and not intro_headed and header.split()[-1:] and (
        header.split()[-1] in _CONTEXT_HEADERS
    )
    if intro is not None and intro_headed and masked[intro.end : intro.end + 1] == ":":
        intro.umbrella = True
    for unit, found in zip(group, item_clauses, strict=True):
        for n, clause in enumerate(found):
            if n == 0 and clause.kind == _CONTEXT and not as_context:
                head = _head_word(masked, clause.start)
                if head not in AUXILIARIES and head not in _COPULAS:
                    clause.kind = _TASK
            clause.listed = True
            clause.list_number = unit.number if n == 0 else None
            if clause.kind in (_CONSTRAINT, _CONTEXT):
                context.append(_words(text[clause.start : clause.end]))
            clauses.append(clause)


def _sentence_clauses(masked: str, start: int, end: int) -> Iterator[_Clause]:
    """The clauses of one sentence: it splits where a new instruction or question starts."""
    tokens = [(m.start() + start, m.end() + start, m.group()) for m in _TOKEN.finditer(
        masked[start:end]
    )]
    if not tokens:
        return
    question_sentence = masked[start:end].rstrip().endswith("?")
    current = _classify(masked, tokens[0][0], end, question_sentence, first=True)
    clause_token = 0
    for k in range(1, len(tokens)):
        tok_start, _, tok = tokens[k]
        prev = tokens[k - 1][2]
        if tok in ";,:" or tok_start <= current.head:
            continue
        word = tok.lower()
        if prev in ";:":
            pass  # after a semicolon or a colon any clause may start
        elif prev == "," or word in ("and", "&", "then", "plus", "also", "but"):
            if current.kind not in (_TASK, _QUESTION) or not _may_split(tokens, k, clause_token):
                continue
        else:
            continue
        candidate = _classify(masked, tok_start, end, question_sentence, first=False)
        if prev == ":" and current.kind in (_TASK, _QUESTION) and candidate.kind == _TASK:
            current.umbrella = True
        elif candidate.kind not in (_TASK, _QUESTION) and prev not in ";:":
            continue
        if prev in ";:" and candidate.kind in (_CONSTRAINT, _CONTEXT) and not current.umbrella:
            continue
        current.end = _trim_end(masked, current.start, tokens[k - 1][1])
        yield current
        current = candidate
        clause_token = k
    current.end = _trim_end(masked, current.start, end)
    yield current


def _may_split(tokens: list[tuple[int, int, str]], k: int, first: int) -> bool:
    """Whether a new clause may start at token ``k`` of a sentence after "," or "and"
    (``first`` is the first token of the clause it would end)."""
    # A bare verb just before the connective coordinates verbs ("compare and contrast",
    # "how to research and write"): one clause.
    before = tokens[k - 1][2] if tokens[k - 1][2] != "," else tokens[k - 2][2] if k > 1 else ""
    if verb_of(_norm(before)) is not None and _norm(before) not in AMBIGUOUS_VERBS:
        return False
    words = [_norm(t[2]) for t in tokens[k : k + 8] if t[2] not in ",;:"]
    while words and words[0] in ("and", "&", "then", "plus", "also", "but"):
        words.pop(0)
    if len(words) < 2:
        return False
    head, nxt = words[0], words[1]
    if head in WH_WORDS:
        return True
    if _open_verb_phrase([t[2] for t in tokens[first:k]]):
        return False
    if head in AMBIGUOUS_VERBS and verb_of(head, nxt) is not None:
        if nxt in DETERMINERS or nxt in _PRONOUNS or nxt in WH_WORDS or nxt[:1].isdigit():
            return True
        return _norm(before) not in AMBIGUOUS_VERBS
    return True


def _open_verb_phrase(raw: list[str]) -> bool:
    """Whether a clause has an infinitive ("a script to read the file") or a relative
    clause with a bare verb ("a tool that can parse"): a verb after "and" continues it."""
    words = [_norm(w) for w in raw]
    for k, w in enumerate(words[:-1]):
        nxt = words[k + 1]
        if w == "to" and nxt[:1].isalpha() and not raw[k + 1][:1].isupper() and (
            nxt not in DETERMINERS and nxt not in PREPOSITIONS and nxt not in _PRONOUNS
        ):
            return True
        if w in ("that", "which", "who") and (
            nxt in ("can", "will", "should", "must", "could", "would", "may", "might")
            or verb_of(nxt) is not None
        ):
            return True
    return False


def _classify(masked: str, start: int, end: int, question_sentence: bool, *, first: bool) -> _Clause:
    """A clause from ``start`` to the sentence end, its leading connectives skipped."""
    link = Link.NONE
    pos = start
    while pos < end:
        m = _LEADER.match(masked, pos, end)
        if m is None or m.end() == pos:
            break
        kind = next(i for i, (_, k) in enumerate(LEADERS) if m.group(f"g{i}") is not None)
        if link == Link.NONE:
            link = LEADERS[kind][1]
        pos = m.end()
    clause = _Clause(pos, end, _CONTEXT, link, pos, goal=bool(_GOAL.match(masked, start, end)))
    lower = masked[pos : min(end, pos + _WINDOW)].lower()  # what the head is read from
    lead_in = _LEAD_IN.match(lower)
    if lead_in:  # "For each, list …", "Using the data above, build …"
        after = lower[lead_in.end() :].split(None, 2)
        if after and verb_of(_norm(after[0]), _norm(after[1]) if len(after) > 1 else ""):
            clause.head = pos + lead_in.end()
            lower = lower[lead_in.end() :]
    words = [_norm(w) for w in lower.split()[:8]]
    while words and not any(ch.isalnum() for ch in words[0]):
        words.pop(0)  # emoji, symbols
    if not words:
        return clause
    head, nxt = words[0], words[1] if len(words) > 1 else ""
    if head.endswith("ly") and len(words) > 1 and verb_of(nxt, words[2] if len(words) > 2 else ""):
        words = words[1:]  # "briefly explain"
        head, nxt = words[0], words[1] if len(words) > 1 else ""
    if head in WH_WORDS or (head in AUXILIARIES and question_sentence):
        clause.kind = _QUESTION
        return clause
    verb = verb_of(head, nxt)
    if head == "use" or head == "using":
        later = re.search(r"\b(?:to|,)\s*(\w+)", lower)
        if later and verb_of(later.group(1)):
            clause.kind, clause.verb = _TASK, verb_of(later.group(1))
        else:
            clause.kind = _CONSTRAINT
        return clause
    if head in CONSTRAINT_HEADS and verb is None:
        clause.kind = _CONSTRAINT
        return clause
    if verb is not None:
        if (head == "make" and nxt in _MAKE_CONSTRAINT) or (
            head in ("write", "answer", "respond", "reply") and nxt in _MANNER
        ):
            clause.kind = _CONSTRAINT
            return clause
        if head in AMBIGUOUS_VERBS and any(w in _COPULAS for w in words[1:5]):
            return clause  # "Test results are in": a statement
        clause.kind, clause.verb = _TASK, verb
        if verb in ("tell", "show") and _ASKS.match(lower):
            clause.kind = _QUESTION
        return clause
    want = _WANT.match(masked, pos, end)
    if want:
        clause.kind, clause.wants = _TASK, want.start("object")
        return clause
    if question_sentence and first and not masked[start:end].rstrip().endswith(":"):
        clause.kind = _QUESTION
    return clause


def _trim_end(masked: str, start: int, end: int) -> int:
    """``end`` moved back over spaces and the punctuation that joins clauses."""
    while end > start and (masked[end - 1].isspace() or masked[end - 1] in ",;:"):
        end -= 1
    return end


# --- enumerations ------------------------------------------------------------------------


_CONJUNCTIONS = ("and", "or", "&")


def _enumeration(masked: str, clause: _Clause) -> _Enumeration | None:
    """The longest enumeration in a clause ("describe A, B and C for X"), if it has one."""
    tokens = [
        (m.start() + clause.start, m.end() + clause.start, m.group())
        for m in _TOKEN.finditer(masked[clause.start : clause.end])
    ]
    norms = [_norm(t[2]) for t in tokens]
    best: tuple[list[tuple[int, int]], int] | None = None
    for c, word in enumerate(norms):
        if c > 0 and word in ("and", "or", "&", "vs", "versus"):
            found = _enumeration_at(tokens, norms, c, clause.head)
            if found is not None and (best is None or len(found[0]) > len(best[0])):
                best = found
    if best is None:
        return None
    items, j = best
    if len(items) == 2 and not _pair_is_enumeration(norms, tokens, items, clause):
        return None
    spans = [(tokens[a][0], tokens[b - 1][1]) for a, b in items]
    prefix = (clause.start, tokens[items[0][0]][0])
    tail = (tokens[j][0] if j < len(tokens) else clause.end, clause.end)
    capitals = all(_capital(tokens, a) for a, _ in items)
    distribute = not capitals or not (j + 1 < len(tokens) and _capital(tokens, j + 1))
    separator = ": " if masked[prefix[0] : prefix[1]].rstrip().endswith(":") else " "
    return _Enumeration(prefix, spans, tail, distribute, separator)


def _enumeration_at(
    tokens: list[tuple[int, int, str]], norms: list[str], c: int, head: int
) -> tuple[list[tuple[int, int]], int] | None:
    """The items around the conjunction at token ``c`` (as token ranges) and the token after
    the last item; items are at most four words, separated by commas."""
    j = c + 1  # the last item runs to a preposition, a verb or a clause boundary
    while j < len(tokens) and j - (c + 1) < 4:
        w = norms[j]
        if tokens[j][2] in ",;:" or w in PREPOSITIONS or w in WH_WORDS:
            if w == "of" and _capital(tokens, j - 1) and _capital(tokens, j + 1):
                j += 2  # "the Tower of London"
                continue
            break
        if verb_of(w) is not None and w not in AMBIGUOUS_VERBS:
            break
        j += 1
    if j == c + 1:
        return None
    items = [(c + 1, j)]
    end = c - 1 if tokens[c - 1][2] == "," else c  # "A, B, and C"
    while end > 0:
        begin = end
        while begin > 0 and tokens[begin - 1][2] not in ",;:" and end - begin < 4:
            w = norms[begin - 1]
            if w in PREPOSITIONS or w in WH_WORDS or w in _CONJUNCTIONS:
                break
            if verb_of(w) is not None and (
                w not in AMBIGUOUS_VERBS or tokens[begin - 1][0] <= head
            ):
                break  # the clause's own verb, or another clause's
            begin -= 1
            if w in DETERMINERS:
                break
        if begin == end:
            break
        items.insert(0, (begin, end))
        if begin > 0 and tokens[begin - 1][2] == ",":
            end = begin - 1  # the whole segment was an item: the one before may be too
            continue
        break
    return (items, j) if len(items) >= 2 else None


def _pair_is_enumeration(
    norms: list[str], tokens: list[tuple[int, int, str]], items: list[tuple[int, int]],
    clause: _Clause,
) -> bool:
    """"A and B" enumerates two things when compared, chosen between, or both are names."""
    if clause.verb in AGGREGATE_VERBS:
        return True
    if items[0][0] > 0 and norms[items[0][0] - 1] == "between":
        return True
    return all(_capital(tokens, a) and a > 0 for a, _ in items)


def _capital(tokens: list[tuple[int, int, str]], k: int) -> bool:
    if not 0 <= k < len(tokens):
        return False
    word = tokens[k][2].lstrip(_STRIP)
    return word[:1].isupper()


def _largest_enumeration(text: str, clauses: list[_Clause]) -> tuple[str, ...]:
    best: tuple[str, ...] = ()
    for clause in clauses:
        if clause.kind not in (_TASK, _QUESTION) or clause.enum is None:
            continue
        found = tuple(_item_words(text[a:b]) for a, b in clause.enum.items)
        if len(found) > len(best):
            best = found
    return tuple(i for i in best if i)


# --- parts and references ---------------------------------------------------------------


def _drafts(text: str, masked: str, deliverables: list[_Clause]) -> list[_Draft]:
    """The deliverables as parts, an enumeration expanded into one part per item where its
    items are separate pieces of work."""
    drafts: list[_Draft] = []
    for n, clause in enumerate(deliverables):
        enum = clause.enum
        whole = [(clause.start, clause.end)]
        if len(masked[clause.start : clause.end].split()) < 2 and drafts and (
            clause.verb not in AGGREGATE_VERBS
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
    clause: _Clause,
    spans: list[tuple[int, int]],
    group: int,
    separator: str = " ",
) -> _Draft:
    """A part made of pieces of the request (a prefix, an item, a tail)."""
    pieces = [_words(text[a:b]) for a, b in spans]
    probes = [_words(masked[a:b]) for a, b in spans]
    if len(pieces) > 1:
        pieces[0], probes[0] = pieces[0].rstrip(":"), probes[0].rstrip(":")
        pieces[0] += separator.rstrip()
        probes[0] += separator.rstrip()
    words = _part_text(" ".join(p for p in pieces if p), clause)
    return _Draft(_sentence_case(words), clause, " ".join(probes).lower(), group=group)


def _wanted(masked: str, clause: _Clause) -> list[tuple[int, int]]:
    """The things an "I need …" clause lists, when it lists several ("a list of questions,
    sample answers, and a study plan")."""
    if clause.wants is None:
        return []
    pieces: list[tuple[int, int]] = []
    begin = clause.wants
    for m in re.finditer(r",\s*(?:(?:and|or)\s+)?|\s+and\s+(?=(?:a|an|the|some|\d+)\s)", masked[
        clause.wants : clause.end
    ]):
        pieces.append((begin, clause.wants + m.start()))
        begin = clause.wants + m.end()
    pieces.append((begin, clause.end))
    if len(pieces) < 2 or any(len(masked[a:b].split()) < 2 for a, b in pieces):
        return []
    return pieces


def _expands(masked: str, clause: _Clause, later: list[_Clause]) -> bool:
    """Whether an enumeration's items are separate pieces of work: a verb such as
    "describe" before them, and "each", three or more items, or a later step on them all."""
    enum = clause.enum
    if enum is None or clause.kind != _TASK or clause.verb not in DISTRIBUTIVE_VERBS:
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
        for c in later
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
    sinks = [j for j in open_parts if j < first]
    if _PLURAL_REF.search(probe) or _result_noun(probe):
        return set(sinks) if len(sinks) > 1 else set(before)
    if _singular_ref(probe):
        return set(before)
    if clause.link in (Link.SEQUENCE, Link.FINAL):
        return set(sinks or before)
    aggregates = clause.verb in AGGREGATE_VERBS and not _own_object(probe, drafts, first)
    if aggregates or (_topicless(probe) and i == len(drafts) - 1):
        return set(sinks or before)
    if _demonstrative_ref(probe, drafts, first):
        return set(before)
    return set()


def _result_noun(lower: str) -> bool:
    for m in re.finditer(r"\b(?:the|these|those|your|my)\s+(\w+)", lower):
        if m.group(1) in RESULT_NOUNS:
            return True
    return bool(re.search(r"\b(?:above|previous|earlier|preceding|resulting)\b", lower))


def _singular_ref(lower: str) -> bool:
    """"it", "this" or "that" in the place of an object ("summarise it", "based on that")."""
    words = [_norm(w) for w in lower.split()]
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
    """"this/that/these/those NOUN" where an earlier part names that noun."""
    for m in re.finditer(r"\b(?:this|that|these|those|such)\s+(\w+)", lower):
        noun = m.group(1)
        stem = noun[:-1] if noun.endswith("s") and len(noun) > 3 else noun
        if len(stem) > 2 and any(
            stem in drafts[j].text.lower() for j in range(first) if drafts[j].clause.verb
        ):
            return True
    return False


def _own_object(lower: str, drafts: list[_Draft], first: int) -> bool:
    """Whether an aggregating step ("compare", "rank") names things no earlier part does."""
    words = [_norm(w) for w in lower.split()[1:]]
    content = [
        w
        for w in words
        if len(w) > 2
        and w not in DETERMINERS
        and w not in PREPOSITIONS
        and w not in _PRONOUNS
        and w not in GENERIC_OUTPUTS
        and w not in ("and", "or", "best", "most", "least", "which", "what")
    ]
    if not content:
        return False
    earlier = " ".join(d.text.lower() for d in drafts[:first])
    return not all(w in earlier for w in content[:3])


def _topicless(lower: str) -> bool:
    """A step with nothing of its own to work on ("write a short report")."""
    words = [_norm(w) for w in lower.split()[1:]]
    rest = [w for w in words if w not in DETERMINERS and w not in GENERIC_OUTPUTS and w]
    return bool(words) and not rest


# --- words -------------------------------------------------------------------------------


def _part_text(body: str, clause: _Clause) -> str:
    """A part's words: the clause without the punctuation that joined it to the next."""
    text = body.rstrip(" ,;:")
    if clause.kind != _QUESTION:
        text = text.rstrip(".!?")
    return text.strip() or body


def _words(text: str) -> str:
    """``text`` on one line: whitespace runs become one space."""
    return " ".join(text.split())


def _item_words(text: str) -> str:
    words = _words(text).strip(" ,;:" + _STRIP).split(" ")
    if len(words) > 1 and words[0].lower() in ("the", "a", "an"):
        words = words[1:]
    return " ".join(words)


def _sentence_case(text: str) -> str:
    return text[:1].upper() + text[1:] if text[:1].islower() else text


def _norm(word: str) -> str:
    return word.lower().replace("’", "'").strip(_STRIP)


def _head_word(masked: str, start: int) -> str:
    parts = masked[start : start + 40].split(None, 1)
    return _norm(parts[0]) if parts else ""


def _line_start(masked: str, at: int) -> bool:
    at -= 1
    while at >= 0 and masked[at] in " \t":
        at -= 1
    return at < 0 or masked[at] == "\n"


def _looks_like_question(masked: str) -> bool:
    stripped = masked.strip()
    if stripped.endswith("?"):
        return True
    head = _norm(stripped.split(None, 1)[0]) if stripped else ""
    return head in WH_WORDS
