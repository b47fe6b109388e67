"""A request's clauses, each classified: an instruction, a question, a constraint or context.

A sentence splits where a new instruction or question starts: after ";" or a colon, and after
"," or "and" when a work verb with its object follows ("find flights, book a hotel") but not
when it continues a verb phrase ("a script to read the file and plot the data"). Each clause
keeps the connective that led it ("then", "finally", "also") and, when it names several
things ("describe A, B and C"), its enumeration. Offsets are into the request; the words are
read from its masked copy (:func:`~automatos.phases.plan.segments.mask`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from automatos.phases.plan.lexicon import (
    AGGREGATE_VERBS,
    AMBIGUOUS_VERBS,
    AUXILIARIES,
    CONSTRAINT_HEADS,
    DETERMINERS,
    LEADERS,
    PREPOSITIONS,
    PRONOUNS,
    WH_WORDS,
    Link,
    verb_of,
)
from automatos.phases.plan.segments import Unit, sentences, units

__all__ = [
    "CONSTRAINT",
    "CONTEXT",
    "QUESTION",
    "STRIP",
    "TASK",
    "Clause",
    "Enumeration",
    "bracketed",
    "clauses_of",
    "enumeration",
    "norm",
    "one_line",
]

TASK, QUESTION, CONSTRAINT, CONTEXT = "task", "question", "constraint", "context"
"""The kinds of clause: a deliverable asked for, a question, a constraint on the answer
("Keep it short."), anything else (the situation, quoted material)."""

_TOKEN = re.compile(r"[;,]|:(?=\s|$)|(?:[^\s;,:]|:(?!\s|$))+")
STRIP = ".!?\"'()[]{}*_“”‘’«»…"
"""What is stripped from a word's ends before it is looked up."""
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
_GOAL = re.compile(
    r"(?:please\s+|can you\s+|could you\s+)*help (?:me|us)\b"
    r"|(?:i|we)(?:'m| am|'re| are)? (?:want|need|would like|'d like|trying|plan|hope|going) to\b",
    re.IGNORECASE,
)
_MAKE_CONSTRAINT = frozenset("it them this that sure certain each every everything".split())
_MANNER = frozenset(
    "in as using with only briefly concisely formally informally clearly simply like".split()
)
_COPULAS = frozenset("is are was were has have had 's".split())
_NOT_THINGS = AUXILIARIES | _COPULAS
"""Heads of list items that state a detail ("must be fast") rather than name a thing."""
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
class Clause:
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
    enum: Enumeration | None = None


@dataclass(slots=True)
class Enumeration:
    prefix: tuple[int, int]
    items: list[tuple[int, int]]
    tail: tuple[int, int]
    distribute_tail: bool
    separator: str = " "
    """Between the prefix and an item: ": " after a colon ("Research these companies:")."""
    separate: bool = False
    """Its items are a marked list of things under an instruction ("Write these chapters:"
    then "1. Testing", "2. Deployment"): each is a deliverable of its own."""


# --- clauses ---------------------------------------------------------------------------


def clauses_of(text: str, masked: str) -> tuple[list[Clause], tuple[str, ...]]:
    """Every clause of the request in order, classified, and the words that are context."""
    clauses: list[Clause] = []
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
        for start, end in sentences(masked, unit.start, unit.end):
            found = list(_sentence_clauses(masked, start, end))
            if in_material:
                # Material runs to a paragraph that starts with "then", "also", "finally".
                if found and found[0].link != Link.NONE and _line_start(masked, start):
                    in_material = False
                else:
                    context.append(one_line(text[start:end]))
                    continue
            for clause in found:
                if clause.kind in (CONSTRAINT, CONTEXT):
                    context.append(one_line(text[clause.start : clause.end]))
                clauses.append(clause)
            last = found[-1] if found else None
            in_material = (
                last is not None
                and masked[end - 1 : end] == ":"
                and last.kind == TASK
                and last.verb in _TEXT_VERBS
            )
    for clause in clauses:
        if clause.umbrella:
            context.append(one_line(text[clause.start : clause.end]))
    return clauses, tuple(c for c in context if c)


def _list_clauses(
    text: str, masked: str, group: list[Unit], clauses: list[Clause], context: list[str]
) -> None:
    """The clauses of one list: its items are deliverables, or the objects of the clause
    that introduces the list ("Compare these databases:" then a list of names)."""
    item_clauses: list[list[Clause]] = []
    for unit in group:
        found: list[Clause] = []
        for start, end in sentences(masked, unit.start, unit.end):
            found.extend(_sentence_clauses(masked, start, end))
        item_clauses.append(found)
    intro = next((c for c in reversed(clauses) if c.end <= group[0].start), None)
    intro_headed = intro is not None and intro.kind in (TASK, QUESTION)
    firsts = [found[0] for found in item_clauses if found]
    header = one_line(text[intro.start : intro.end]).lower().rstrip(":") if intro else ""
    details = bool(header.split()[-1:]) and header.split()[-1] in _CONTEXT_HEADERS
    # Items without a verb of their own are the intro's objects ("Write these chapters:"
    # then "Testing", "Code review"); a stray item read as a verb ("Code review") does not
    # make the rest instructions, so most items decide.
    objects = [f for f in firsts if f.kind == CONTEXT]
    if intro is not None and intro_headed and firsts and 2 * len(objects) >= len(firsts):
        spans = [(f.start, f.end) for f in firsts]
        things = [f for f in objects if _head_word(masked, f.start) not in _NOT_THINGS]
        separate = len(things) == len(objects) and len(spans) >= 2 and not details
        intro.enum = Enumeration(
            (intro.start, intro.end), spans, (intro.end, intro.end), False, ": ", separate
        )
        intro.umbrella = False
        return
    as_context = intro is not None and not intro_headed and details
    if intro is not None and intro_headed and masked[intro.end : intro.end + 1] == ":":
        intro.umbrella = True
    for unit, found in zip(group, item_clauses, strict=True):
        for n, clause in enumerate(found):
            if (
                n == 0
                and clause.kind == CONTEXT
                and not as_context
                and _head_word(masked, clause.start) not in _NOT_THINGS
            ):
                clause.kind = TASK
            clause.listed = True
            clause.list_number = unit.number if n == 0 else None
            if clause.kind in (CONSTRAINT, CONTEXT):
                context.append(one_line(text[clause.start : clause.end]))
            clauses.append(clause)


def _sentence_clauses(masked: str, start: int, end: int) -> Iterator[Clause]:
    """The clauses of one sentence: it splits where a new instruction or question starts."""
    tokens = [
        (m.start() + start, m.end() + start, m.group()) for m in _TOKEN.finditer(masked[start:end])
    ]
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
            if current.kind not in (TASK, QUESTION) or not _may_split(tokens, k, clause_token):
                continue
        else:
            continue
        candidate = _classify(masked, tok_start, end, question_sentence, first=False)
        if prev == ":" and current.kind in (TASK, QUESTION) and candidate.kind == TASK:
            current.umbrella = True
        elif candidate.kind not in (TASK, QUESTION) and prev not in ";:":
            continue
        if prev in ";:" and candidate.kind in (CONSTRAINT, CONTEXT) and not current.umbrella:
            continue
        if not any(ch.isalnum() for ch in masked[current.start : tokens[k - 1][1]]):
            continue  # nothing before the split but punctuation or symbols
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
    if verb_of(norm(before)) is not None and norm(before) not in AMBIGUOUS_VERBS:
        return False
    words = [norm(t[2]) for t in tokens[k : k + 8] if t[2] not in ",;:"]
    while words and words[0] in ("and", "&", "then", "plus", "also", "but"):
        words.pop(0)
    if len(words) < 2:
        return False
    head, nxt = words[0], words[1]
    if head in WH_WORDS:
        return True
    comma = tokens[k - 1][2] == "," or (k > 1 and tokens[k - 2][2] == ",")
    if not comma and _open_verb_phrase([t[2] for t in tokens[max(first, k - 30) : k]]):
        return False  # without a comma "and" continues the infinitive
    if head in AMBIGUOUS_VERBS and verb_of(head, nxt) is not None:
        if nxt in DETERMINERS or nxt in PRONOUNS or nxt in WH_WORDS or nxt[:1].isdigit():
            return True
        return norm(before) not in AMBIGUOUS_VERBS
    return True


def _open_verb_phrase(raw: list[str]) -> bool:
    """Whether a clause has an infinitive ("a script to read the file") or a relative
    clause with a bare verb ("a tool that can parse"): a verb after "and" continues it."""
    words = [norm(w) for w in raw]
    for k, w in enumerate(words[:-1]):
        nxt = words[k + 1]
        if (
            w == "to"
            and nxt[:1].isalpha()
            and not raw[k + 1][:1].isupper()
            and (nxt not in DETERMINERS and nxt not in PREPOSITIONS and nxt not in PRONOUNS)
        ):
            return True
        if w in ("that", "which", "who") and (
            nxt in ("can", "will", "should", "must", "could", "would", "may", "might")
            or verb_of(nxt) is not None
        ):
            return True
    return False


def _classify(masked: str, start: int, end: int, question_sentence: bool, *, first: bool) -> Clause:
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
    clause = Clause(pos, end, CONTEXT, link, pos, goal=bool(_GOAL.match(masked, start, end)))
    lower = masked[pos : min(end, pos + _WINDOW)].lower()  # what the head is read from
    lead_in = _LEAD_IN.match(lower)
    if lead_in:  # "For each, list …", "Using the data above, build …"
        after = lower[lead_in.end() :].split(None, 2)
        if after and verb_of(norm(after[0]), norm(after[1]) if len(after) > 1 else ""):
            clause.head = pos + lead_in.end()
            lower = lower[lead_in.end() :]
    words = [norm(w).rstrip(",;:") for w in lower.split()[:8]]  # "Cover:" before its list
    while words and not any(ch.isalnum() for ch in words[0]):
        words.pop(0)  # emoji, symbols
    if not words:
        return clause
    head, nxt = words[0], words[1] if len(words) > 1 else ""
    if head.endswith("ly") and len(words) > 1 and verb_of(nxt, words[2] if len(words) > 2 else ""):
        words = words[1:]  # "briefly explain"
        head, nxt = words[0], words[1] if len(words) > 1 else ""
    if head in WH_WORDS or (head in AUXILIARIES and question_sentence):
        clause.kind = QUESTION
        return clause
    verb = verb_of(head, nxt)
    if head == "use" or head == "using":
        later = re.search(r"\b(?:to|,)\s*(\w+)", lower)
        if later and verb_of(later.group(1)):
            clause.kind, clause.verb = TASK, verb_of(later.group(1))
        else:
            clause.kind = CONSTRAINT
        return clause
    if head in CONSTRAINT_HEADS and verb is None:
        clause.kind = CONSTRAINT
        return clause
    if verb is not None:
        if (head == "make" and nxt in _MAKE_CONSTRAINT) or (
            head in ("write", "answer", "respond", "reply") and nxt in _MANNER
        ):
            clause.kind = CONSTRAINT
            return clause
        if head in AMBIGUOUS_VERBS and any(w in _COPULAS for w in words[1:5]):
            return clause  # "Test results are in": a statement
        clause.kind, clause.verb = TASK, verb
        if verb in ("tell", "show") and _ASKS.match(lower):
            clause.kind = QUESTION
        return clause
    want = _WANT.match(masked, pos, end)
    if want:
        clause.kind, clause.wants = TASK, want.start("object")
        return clause
    if question_sentence and first and not masked[start:end].rstrip().endswith(":"):
        clause.kind = QUESTION
    return clause


def _trim_end(masked: str, start: int, end: int) -> int:
    """``end`` moved back over spaces and the punctuation that joins clauses."""
    while end > start and (masked[end - 1].isspace() or masked[end - 1] in ",;:"):
        end -= 1
    return end


# --- enumerations ------------------------------------------------------------------------


_CONJUNCTIONS = ("and", "or", "&")
_MAX_ITEMS = 50


def enumeration(masked: str, clause: Clause) -> Enumeration | None:
    """The longest enumeration in a clause ("describe A, B and C for X"), if it has one."""
    tokens = [
        (m.start() + clause.start, m.end() + clause.start, m.group())
        for m in _TOKEN.finditer(masked[clause.start : clause.end])
    ]
    norms = [norm(t[2]) for t in tokens]
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
    return Enumeration(prefix, spans, tail, distribute, separator)


def bracketed(text: str, masked: str, clause: Clause) -> Enumeration | None:
    """The items of a bracketed list that ends a clause after a colon ("Write these
    chapters: [Testing, Deployment, Code review]"): separate things, as a marked list's.
    Not for a verb that weighs them together ("Sort these numbers: [5, 3, 9]")."""
    if clause.kind != TASK or clause.verb in AGGREGATE_VERBS:
        return None
    end = clause.end
    while end > clause.start and (masked[end - 1].isspace() or masked[end - 1] in ".!?"):
        end -= 1
    if end - clause.start < 4 or masked[end - 1] != "]":
        return None
    opening = masked.rfind("[", clause.start, end - 1)
    colon = opening - 1
    while colon > clause.start and masked[colon].isspace():
        colon -= 1
    if opening < 0 or colon <= clause.start or masked[colon] != ":":
        return None
    items: list[tuple[int, int]] = []
    begin = opening + 1
    for m in re.finditer(r"[,;]\s*(?:(?:and|or)\s+)?|\s+(?:and|or)\s+", text[begin : end - 1]):
        items.append((begin, opening + 1 + m.start()))
        begin = opening + 1 + m.end()
    items.append((begin, end - 1))
    items = [(a, b) for a, b in items if any(ch.isalnum() for ch in text[a:b])]
    if len(items) < 2:
        return None
    return Enumeration(
        (clause.start, colon + 1), items, (clause.end, clause.end), False, ": ", True
    )


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
    while end > 0 and len(items) < _MAX_ITEMS:
        begin = end
        while begin > 0 and tokens[begin - 1][2] not in ",;:" and end - begin < 4:
            w = norms[begin - 1]
            if w in AUXILIARIES:
                begin = end  # "which is faster, A, B or C": what precedes is no item
                break
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
    norms: list[str],
    tokens: list[tuple[int, int, str]],
    items: list[tuple[int, int]],
    clause: Clause,
) -> bool:
    """ "A and B" enumerates two things when compared, chosen between, or both are names."""
    if clause.verb in AGGREGATE_VERBS:
        return True
    if items[0][0] > 0 and norms[items[0][0] - 1] == "between":
        return True
    return all(_capital(tokens, a) and a > 0 for a, _ in items)


def _capital(tokens: list[tuple[int, int, str]], k: int) -> bool:
    if not 0 <= k < len(tokens):
        return False
    word = tokens[k][2].lstrip(STRIP)
    return word[:1].isupper()


def one_line(text: str) -> str:
    """``text`` on one line: whitespace runs become one space."""
    return " ".join(text.split())


def norm(word: str) -> str:
    return word.lower().replace("’", "'").strip(STRIP)


def _head_word(masked: str, start: int) -> str:
    parts = masked[start : start + 40].split(None, 1)
    return norm(parts[0]) if parts else ""


def _line_start(masked: str, at: int) -> bool:
    at -= 1
    while at >= 0 and masked[at] in " \t":
        at -= 1
    return at < 0 or masked[at] == "\n"
