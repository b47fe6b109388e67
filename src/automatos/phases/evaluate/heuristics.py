"""Quality dimensions computed from what an agent actually wrote (no model needed).

Each function looks at the output itself, against the task it answers and, when given, the
request and the outputs it depended on. They return values in [0, 1]. The heuristics are
deliberately generic (lengths, endings, repetition, character-level relevance, novelty,
refusal, deferral and contradiction cues) so that they hold for outputs they were not tuned
on.

:meth:`ScoringPass.dimensions` also knows how a small model answers without answering
(``tests/data/embedded.jsonl`` holds what the embedded one wrote): it says the task back,
reworded, or says what the thing asked for is instead of making it ("Write a slogan…": "A
slogan is a short phrase…"); it goes on with its few-shot prompt and writes a new task of
its own; it writes about another subject, which shares some trigrams with the task by
chance but none of its words; it answers a step that drifted off the request on the step's
subject; it gives a wrong result of the sum it was asked (:mod:`.sums`). Each of these
scores below the quality gate. A bare answer to a short question ("Paris", "391") is an
answer, not a truncated one.

Nothing here is kept in module state: a workflow's outputs (and its tasks) must not stay in
the process after it, where another workspace's run could read them. What several outputs of
one pass share (what the request and each task say) is kept by a :class:`ScoringPass` that
the pass creates and drops; what the dimensions of one output share (its trigrams, words,
relevance, novelty, contradictions) is measured once per output in
:meth:`ScoringPass.dimensions`.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from automatos.phases.evaluate.sums import Sum, claims_result, gives, numbers_in, sum_in

__all__ = [
    "Dimensions",
    "ScoringPass",
    "coherence",
    "completeness",
    "contradiction",
    "heuristic_dimensions",
    "is_deferral",
    "is_refusal",
    "novelty",
    "relevance",
    "repetition",
]

_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_']*")
_TOKEN = re.compile(r"[A-Za-z][A-Za-z0-9_']*|\d+(?:[.,]\d+)*")
"""Words, and numbers ("391", "10,000", "7.2")."""
_IDENT = re.compile(r"[A-Za-z0-9]+")
_DOTTED = re.compile(r"[A-Za-z0-9]+(?:[._]+[A-Za-z0-9]+)+")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_INSTRUCTION = frozenset(
    "explain describe what does do how use using in python and the a an of to it its is are "
    "write give list summarise summarize compare briefly short please for with about on".split()
)
# Words that carry no subject: they neither make an answer new nor name what it is about.
_FUNCTION = frozenset(
    "a an the is are was were be been being am of to in on at by for from with into onto as "
    "and or but nor not no so if than that this these those it its they them their there "
    "he she his her him we us our you your i me my do does did done has have had can could "
    "will would shall should may might must what which who whom whose when where why how "
    "all any some each such very also just only more most other because since while though "
    "although thus therefore however i'm i've i'll i'd it's that's there's you're you've "
    "we're they're don't doesn't isn't aren't can't won't".split()
)
_REFUSAL = re.compile(
    r"\b(i'?m sorry|i am sorry|i apologi[sz]e|i can(?:no|')t (?:help|assist|provide|do)|"
    r"i cannot (?:help|assist|provide|do)|i am unable|i'm unable|unable to (?:help|assist|"
    r"provide)|as an ai\b|as a language model|i don'?t have (?:enough )?information|"
    r"i do not have (?:enough )?information|cannot assist|can'?t assist|consult the)",
    re.IGNORECASE,
)
# An answer that opens like a promise or a plan ("I will…", "Let me…", "Here is…", "To do X,
# I would first…") and then adds nothing to the task is a deferral, not an answer.
_DEFERRAL = re.compile(
    r"^\W*(?:(?:sure|okay|ok|certainly|of course|absolutely|great|alright)\b\W*)?"
    r"(?:i will|i'll|i would|i'd|i am going to|i'm going to|i can|let me|let's|we will|"
    r"we'll|here is|here's|below is|to .{0,100}?,? i (?:will|would))\b",
    re.IGNORECASE,
)
# Words of promises, plans and of a task's own form: they say what an answer would do
# ("list the facts, in order", "write the summary"), not what it finds.
_META = frozenset(
    "sure okay certainly course absolutely great alright here below will would going "
    "explanation explain explaining describe description show first then next finally "
    "look step steps detail details answer answers question questions task tasks help your "
    "code yourself following overview let use used uses using work works fact facts "
    "summary request order".split()
)
_SKIP = _FUNCTION | _INSTRUCTION | _META
_CONTRADICTION = re.compile(
    r"\b(does not exist|doesn'?t exist|there is no such|no such (?:function|thing|method|"
    r"module|class|feature)|the opposite is true|is not (?:able|possible)|cannot be used|"
    r"should not be used|never does|not able to|is a myth|is false|is wrong|that is incorrect|"
    r"contrary to)",
    re.IGNORECASE,
)
_NEGATION = re.compile(r"\b(not|no|never|none|cannot|can't|isn't|doesn't|won't)\b", re.I)
_LIST_ITEM = re.compile(r"\s*(?:[-*\u2022]|\d{1,2}[.)])\s+\S")
_LIST_NUMBER = re.compile(r"^\s*\d{1,2}[.)]\s", re.MULTILINE)

# What a base model writes when it goes on with its few-shot prompt instead of stopping: the
# prompt's own labels, anywhere, and a new numbered task after some text.
_PROMPT_LABEL = re.compile(
    r"^[ \t#*]*(?:task\s*(?:\(|:)|your step\b|overall request\s*:|expected output\s*:|"
    r"results of the steps)",
    re.IGNORECASE | re.MULTILINE,
)
_NEW_TASK = re.compile(r"\n[ \t#*]*task\s+\d", re.IGNORECASE)
_FIRST_TASK = re.compile(r"\s*[#*]*\s*task\s+\d", re.IGNORECASE)
_PROMPT_CUES = re.compile("task|your step|overall request|expected output|results of")
"""Words without which neither pattern above can match (looked for first: it is faster)."""
_ANSWER_LABEL = re.compile(r"^\s*answer\s*:\s*", re.IGNORECASE)
_RESTATED = 0.2
"""Share of new content words under which an answer only says its task back."""
_BRIEF_TOKENS = 60
"""Texts longer than this may carry material to work on (a paragraph to rewrite or sum up):
an answer that reuses their words is not saying them back."""

# Asking for a fact, a number, a name or a few items: a short answer does it.
_SHORT_ASKS = frozenset(
    "name translate calculate compute convert define find give list spell suggest".split()
)
_CALCULATE = frozenset("calculate compute evaluate solve".split())
_SHORT_QUESTION_WORDS = 12
_SHORT_ANSWER_TOKENS = 15
_SHORT_ANSWER_WORDS = 8
"""Distinct words that fully answer a short question (a longer task wants about 60)."""
_VERBAL = frozenset(
    "is are was were be been am has have had do does did can could will would should may "
    "might must".split()
)
"""Words that make a sentence of a short answer, which is then no bare name or number."""

# Asking for something made or done (a list, a name, a poem, steps), not for what a thing
# is: an answer that only says what the thing asked for is has not made it.
_MAKE_ASKS = frozenset(
    "write suggest give name list translate recommend create compose draft make plan design "
    "propose find provide".split()
)
_HOW_DO_I = re.compile(r"^\W*how (?:do|can|should) (?:i|we|you)\b|^\W*how to\b", re.I)
_WHAT_IT_IS = frozenset(
    "describe description explain explanation define definition summarise summarize "
    "summary what mean meaning".split()
)
# Asked for facts about a thing ("List three facts about the Moon"), an answer may well
# open by saying what the thing is.
_FACTS = frozenset(
    "fact facts thing things detail details point points information feature features "
    "property properties characteristic characteristics use uses benefit benefits advantage "
    "advantages disadvantage disadvantages reason reasons cause causes effect effects".split()
)
_CREATIVE_WORDS = (
    "slogan tagline motto poem haiku limerick verse song story joke sentence line title "
    "description note letter email message speech toast".split()
)
_OBJECT_ENDS = frozenset("about for of to on in from with that which who at by into as".split())
# "A thank-you note is a formal letter…", "The bakery is a place where…": the opening
# subject (group 1) is looked up in what the request says.
_DEFINITION = re.compile(
    r"^\W*(?:(?:a|an|the)\s+)?((?:[\w'-]+\s+){0,3}[\w'-]+)\s+(?:is|are)\s+"
    r"(?:a|an|the|one|something|what|when|where)\b",
    re.IGNORECASE,
)
_DEFINITION_TOKENS = 50
_IDENTIFIER = re.compile(r"[A-Za-z0-9][._][A-Za-z]")
_UNNAMED = 0.2
"""Topic an answer keeps that names none of its task's subject words."""
_CODE = re.compile(r"[`={}]|\b(?:def|return|import|select)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Dimensions:
    """The five dimension scores of one output, each in [0, 1]."""

    completeness: float
    accuracy: float
    efficiency: float | None
    """``None`` when there is no run data (an output scored on its own)."""
    reliability: float | None
    coherence: float


def _trigrams(text: str) -> Counter[str]:
    t = f" {text.lower()} "
    return Counter(t[i : i + 3] for i in range(len(t) - 2))


def _cosine(a: Counter[str], b: Counter[str]) -> float:
    if not a or not b:
        return 0.0
    dot = sum(v * b[k] for k, v in a.items() if k in b)
    return dot / math.sqrt(sum(v * v for v in a.values()) * sum(v * v for v in b.values()))


def key_terms(task: str) -> tuple[str, ...]:
    """The task's own subject words (identifier parts included): words of instructions, of
    the task's form and function words dropped."""
    if "'" in task or "\u2019" in task:
        task = task.replace("'", "").replace("\u2019", "")
    # A part of an identifier names it, whatever it means as a word ("shutil.which").
    parts = (
        {p.lower() for dotted in _DOTTED.findall(task) for p in _IDENT.findall(dotted)}
        if "." in task or "_" in task
        else set()
    )
    terms = []
    for raw in _IDENT.findall(task):
        word = raw.lower()
        if len(word) > 1 and (word not in _SKIP or (word in parts and word not in _INSTRUCTION)):
            terms.append(word)
    return tuple(dict.fromkeys(terms))


class _Terms(NamedTuple):
    """What relevance and contradiction need of a task (or request): the inner trigrams of
    each key term, the numbers it names, and the terms long enough to count as naming the
    subject."""

    grams: tuple[tuple[str, ...], ...]
    numbers: tuple[str, ...]
    named: tuple[str, ...]


def _terms(task: str, terms: Sequence[str] | None = None) -> _Terms:
    """``terms``: the task's key terms, when known."""
    if terms is None:
        terms = key_terms(task)
    grams = []
    numbers = []
    for term in terms:  # lower-case letters and digits: no trigram inside one has a space
        if term.isdigit():
            numbers.append(term)  # whole: "17" is not in "1789"
            continue
        inner = tuple(dict.fromkeys([term[i : i + 3] for i in range(len(term) - 2)]))
        # A two-letter term has no inner trigram: its edges (" ab", "ab ") stand in.
        grams.append(inner or (f" {term}", f"{term} "))
    return _Terms(tuple(grams), tuple(numbers), tuple(t for t in terms if len(t) > 3))


def _relevance(terms: _Terms, present: Counter[str], numbers: Collection[str] = ()) -> float:
    if not terms.grams and not terms.numbers:
        return 0.0
    shares = [sum(1 for g in inner if g in present) / len(inner) for inner in terms.grams]
    shares += [1.0 if n in numbers else 0.0 for n in terms.numbers]
    return _best_half(shares)


def _best_half(shares: list[float]) -> float:
    """The mean of ``shares``, the best half weighted double."""
    shares.sort(reverse=True)
    best = shares[: max(1, len(shares) // 2)]
    return min(1.0, (2 * sum(best) + sum(shares)) / (2 * len(best) + len(shares)))


def _saturated(relevance: float) -> float:
    return min(1.0, relevance / 0.6)


def relevance(task: str, output: str) -> float:
    """How much of the task's subject the output is about, by character trigrams.

    Trigrams match across word forms and identifier fragments ("getfqdn" against "FQDN" and
    "gethostbyaddr"), which plain word overlap misses; numbers are matched whole. Per key
    term: the share of its trigrams found in the output; the result averages the terms,
    best half weighted double.
    """
    if not output.strip():
        return 0.0
    terms = _terms(task)
    return _relevance(terms, _trigrams(output), numbers_in(output) if terms.numbers else ())


def on_topic(task: str, output: str) -> float:
    """Relevance that saturates: an answer need not repeat every word of its task to be on
    it, so relevance of 0.6 and above counts fully."""
    return _saturated(relevance(task, output))


def _repetition(output: str, words: Sequence[str]) -> float:
    if len(words) < 8:
        return 0.0
    lowered = [w.lower() for w in words]
    grams = [tuple(lowered[i : i + 4]) for i in range(len(lowered) - 3)]
    gram_rep = 1 - len(set(grams)) / len(grams)
    sentences = [s.strip().lower() for s in _SENTENCE.split(output) if s.strip()]
    sent_rep = 1 - len(set(sentences)) / len(sentences) if len(sentences) > 1 else 0.0
    return max(gram_rep, sent_rep)


def repetition(output: str) -> float:
    """Share of the text that repeats itself: 0 for none, near 1 for a loop.

    Measured on word 4-grams and on whole sentences; the larger wins.
    """
    return _repetition(output, _WORD.findall(output))


def _stem(word: str) -> str:
    """A crude common form of a short word ("eggs" -> "egg", "adds" -> "add")."""
    if word.endswith("'s"):
        word = word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def _head(word: str) -> str:
    """A lower-case word by its first four letters, enough to know it in its other forms
    ("virus", "viruses"; "salt", "salty"; "vaccines", "vaccination"); a shorter word whole
    ("eggs" and "egg"), a number whole."""
    if word[:1].isdigit():
        return word.replace(",", "")
    return word[:4] if len(word) > 4 else _stem(word)


def _said(tokens: Sequence[str]) -> frozenset[str]:
    """Every word and number of a text, by its head: what the text already says."""
    return frozenset(_heads_of({t.lower() for t in tokens}))


def _heads_of(words: Iterable[str]) -> list[str]:
    """:func:`_head` of each lower-case word, inlined: it runs for every word scored."""
    heads = []
    for word in words:
        if word[0].isdigit():
            heads.append(word.replace(",", ""))
        elif len(word) > 4:
            heads.append(word[:4])
        else:
            heads.append(_stem(word))
    return heads


_CREATIVE = frozenset(_heads_of(_CREATIVE_WORDS))


def _content(text: str, lowered: Sequence[str] | None = None) -> set[str]:
    """The heads of the words and numbers of an answer that could say something (not the
    numbers of a numbered list). ``lowered``: its tokens in lower case, when known."""
    if lowered is None or (lowered and lowered[0][0].isdigit()) or "\n" in text:
        lowered = [t.lower() for t in _TOKEN.findall(_LIST_NUMBER.sub("", text))]
    kept = set(lowered)
    found = set(_heads_of(w for w in kept - _SKIP if len(w) > 1 or w[0].isdigit()))
    if "no" in kept:  # an answer in itself
        found.add("no")
    return found


def _share_new(content: set[str], *given: frozenset[str]) -> float:
    """Share of ``content`` in none of ``given`` (0 for no content: it says nothing)."""
    if not content:
        return 0.0
    return len(content.difference(*given)) / len(content)


def novelty(task: str, output: str) -> float:
    """Share of the output's content words (and numbers) that its task did not already say,
    in [0, 1].

    An answer brings something: names, facts, steps, a result. One that only says the task
    back, in the words of a promise or a plan, brings nothing.
    """
    return _share_new(_content(output), _said(_TOKEN.findall(task)))


def _opens_like_deferral(output: str) -> bool:
    return bool(_DEFERRAL.match(output.strip()))


def is_deferral(task: str, output: str) -> bool:
    """Whether the output promises or plans the task instead of doing it."""
    return _opens_like_deferral(output) and novelty(task, output) < 0.35


def _is_refusal(output: str, words: Sequence[str]) -> bool:
    return bool(_REFUSAL.search(output.strip()[:300])) and len(words) < 80


def is_refusal(output: str) -> bool:
    """Whether the output declines the task instead of doing it."""
    return _is_refusal(output, _WORD.findall(output))


def _contradiction(terms: _Terms, output: str) -> float:
    strong = len(_CONTRADICTION.findall(output))
    weak = 0
    if terms.named:
        for sentence in _SENTENCE.split(output):
            low = sentence.lower()
            if any(t in low for t in terms.named):
                weak += len(_NEGATION.findall(sentence))
    return min(1.0, 0.6 * strong + 0.1 * weak)


def contradiction(task: str, output: str) -> float:
    """Cues that the output denies its own subject, in [0, 1].

    Strong phrases ("does not exist", "there is no such", "the opposite is true") count
    fully; negations inside sentences that name the subject count a little.
    """
    return _contradiction(_terms(task), output)


def finished(output: str) -> bool:
    """Whether the output ends where a text ends, not in the middle of a sentence (an item
    of a list, on its own line, needs no full stop)."""
    stripped = output.rstrip()
    if stripped[-1:] in ".!?)\"'`]}>:" or stripped.endswith("```"):
        return True
    _, newline, last = stripped.rpartition("\n")
    return bool(newline) and bool(_LIST_ITEM.match(last))


def _completeness(length: float, ended: bool, novel: float, topic: float) -> float:
    ending = 1.0 if ended else 0.45
    # Saying the task back covers none of it: under a third of new content words, less.
    new = min(1.0, 0.2 + 0.8 * novel / 0.3)
    return length * ending * new * (0.25 + 0.75 * topic)


def _length(distinct: int, full: int = 60) -> float:
    """Substance in distinct words, full credit from ``full`` of them."""
    return min(1.0, math.log1p(distinct) / math.log1p(full))


def _coherence(topic: float, repeated: float, contradicted: float, ended: bool) -> float:
    fresh = 1.0 - repeated
    consistent = 1.0 - 0.5 * contradicted
    ending = 1.0 if ended else 0.8
    return max(0.0, min(1.0, fresh**2 * (0.35 + 0.65 * topic) * consistent * ending))


def _accuracy(
    contradicted: float, topic: float, present: Counter[str], dependencies: Sequence[str]
) -> float:
    base = (1.0 - contradicted) ** 2 * (0.5 + 0.5 * topic)
    if dependencies:
        # Building on what earlier steps found shows as shared vocabulary.
        support = max(_cosine(_trigrams(d), present) for d in dependencies)
        base *= 0.75 + 0.25 * min(1.0, support / 0.5)
    return max(0.0, base)


def completeness(task: str, output: str) -> float:
    """Does the output cover the task: enough substance, a finished ending, its subject?

    Substance is counted in distinct words, up to about 60 (an answer shorter than a couple
    of sentences rarely covers a task, and repeating itself adds nothing); an output cut off
    mid-sentence loses most of its credit; an output about something else covers little.
    """
    distinct = len({w.lower() for w in _WORD.findall(output)})
    if not distinct:
        return 0.0
    return _completeness(
        _length(distinct), finished(output), novelty(task, output), on_topic(task, output)
    )


def coherence(task: str, output: str, request: str = "") -> float:
    """Structure, repetition and relevance to the task (and to the request, when given)."""
    if not output.strip():
        return 0.0
    topic = on_topic(task, output)
    if request and request != task:
        topic = 0.7 * topic + 0.3 * on_topic(request, output)
    return _coherence(topic, repetition(output), contradiction(task, output), finished(output))


def accuracy(task: str, output: str, dependencies: Sequence[str] = ()) -> float:
    """Consistency with the task and with the outputs depended on; contradictions cost.

    An output about something else than its task is not consistent with it either: half the
    credit depends on relevance.
    """
    if not output.strip():
        return 0.0
    terms = _terms(task)
    present = _trigrams(output)
    topic = _saturated(_relevance(terms, present, numbers_in(output)))
    return _accuracy(_contradiction(terms, output), topic, present, dependencies)


class _Text(NamedTuple):
    """What an output is measured against in a task or a request, worked out once."""

    terms: _Terms
    said: frozenset[str]
    """The heads of its words and numbers (:func:`_head`)."""
    brief: bool
    """Short enough that an answer reusing its words is only saying it back."""
    echoes: tuple[str, ...]
    """It, and its sentences of four words or more, lower-cased, longest first: an answer
    quoting them says nothing by the quote."""
    question: bool
    """It asks for a fact, a number, a name or a few items: a bare answer does it."""
    makes: frozenset[str] | None
    """When it asks for something made or done (not for what a thing is, or facts about
    it): the heads of what it asks for ("a short thank-you note": short, than, note);
    ``None`` otherwise."""
    creative: bool
    """What it asks for is a piece of writing (a slogan, a poem), which may well say what
    its subject is."""
    sum: Sum | None
    """The calculation it asks for."""
    subject: tuple[str, ...]
    """The heads of its key terms."""
    prose: bool
    """Its subject is in words, not identifiers ("os.path.basename"): an answer on it names
    some of them."""


def _squeeze(text: str) -> str:
    return " ".join(text.lower().split())


def _text(text: str) -> _Text:
    terms = key_terms(text)
    subject = tuple(dict.fromkeys(_heads_of(terms)))
    words = text.split()
    echoes: tuple[str, ...] = ()
    if len(words) >= 4:
        quoted = {" ".join(words).lower()}
        if _SENTENCE.search(text):
            quoted.update(s for s in map(_squeeze, _SENTENCE.split(text)) if s.count(" ") >= 3)
        echoes = tuple(sorted(quoted, key=len, reverse=True))
    first = words[0].lower().strip("\"'*,.:") if words else ""
    question = len(words) <= _SHORT_QUESTION_WORDS and (
        text.rstrip().endswith("?") or first in _SHORT_ASKS
    )
    tokens = _TOKEN.findall(text)
    made = _makes(first, text, words)
    return _Text(
        _terms(text, terms),
        _said(tokens),
        len(tokens) <= _BRIEF_TOKENS,
        echoes,
        question,
        made,
        made is not None and bool(_CREATIVE.intersection(made)),
        sum_in(text) if question or first in _CALCULATE else None,
        subject,
        not _IDENTIFIER.search(text),
    )


def _makes(first: str, text: str, words: Sequence[str]) -> frozenset[str] | None:
    """The heads of what a request to make something asks for, or ``None``."""
    if first not in _MAKE_ASKS and (first != "how" or not _HOW_DO_I.match(text)):
        return None
    bare = [w.lower().strip("\"'*,.:;?!()") for w in words]
    if _WHAT_IT_IS.intersection(bare):
        return None
    wanted = []
    for word in bare[1:]:  # what is asked for: "a short thank-you note", "three facts"
        if word in _OBJECT_ENDS:
            break
        if word in _FACTS:
            return None
        wanted += [w.lower() for w in _TOKEN.findall(word)]
    return frozenset(_heads_of(w for w in wanted if w not in _SKIP))


def _answer_of(output: str, texts: Sequence[_Text]) -> str:
    """The part of an output that answers: without a prompt the model went on to write (a
    new task, the prompt's labels), and without quotes of its task or request."""
    low = output.lower()
    body = output
    if "answer" in low[:12]:
        body = _ANSWER_LABEL.sub("", output, count=1)
    if _PROMPT_CUES.search(low):
        label = _PROMPT_LABEL.search(body)
        # An answer that is itself a list of numbered tasks goes on with its list.
        new_task = None if _FIRST_TASK.match(body) else _NEW_TASK.search(body)
        cuts = [m.start() for m in (label, new_task) if m is not None]
        if cuts:
            body = body[: min(cuts)]
    if body is not output:
        low = body.lower()
    quoted = [e for t in texts for e in t.echoes if len(e) <= len(low)]
    if not quoted:
        return body
    if not any(e in low for e in quoted):
        if not ("\n" in body or "  " in body or "\t" in body):
            return body
        low = _squeeze(body)
        if not any(e in low for e in quoted):
            return body
    for echo in quoted:
        low = low.replace(echo, " ")
    return low


def _defines(body: str, tokens: Sequence[str], texts: Sequence[_Text]) -> bool:
    """Whether a short answer (to a request for something made or done) only says what
    the thing asked for is ("Write a slogan…": "A slogan is a short phrase that…")."""
    if len(tokens) > _DEFINITION_TOKENS:
        return False
    if "\n" in body.strip() or body.count(",") > 1 or _CODE.search(body):
        return False  # a list, or code: it may go on to do what was asked
    opening = _DEFINITION.match(body)
    if opening is None:
        return False
    words = [w.lower() for w in _TOKEN.findall(opening.group(1))]
    named = set(_heads_of(w for w in words if w not in _SKIP))
    if not named:
        return False  # "It is a…": a pronoun names nothing of the request
    if not all(any(h in t.said for t in texts) for h in named):
        return False
    # Asked for a slogan or a poem, "Coffee is the best thing you've ever had" may be one;
    # "A slogan is a short phrase…" is not.
    return not any(t.creative and t.makes is not None and t.makes.isdisjoint(named) for t in texts)


def _mentions(subject: Sequence[str], heads: set[str] | frozenset[str]) -> float:
    """How much of a subject (the heads of a task's or a request's key terms) a text names,
    word by word (``heads``: the text's), saturating like :func:`on_topic`.

    Stricter than relevance by trigrams, whose matches of short words are often chance
    ("legs" in "privileges", "water" in "write"): this one tells whether a text is about the
    subject at all.
    """
    if not subject:
        return 1.0
    named = len(heads.intersection(subject))
    best = max(1, len(subject) // 2)  # all shares are 0 or 1: the best half is the named
    return _saturated((2 * min(named, best) + named) / (2 * best + len(subject)))


def _topic(
    own: _Text,
    asked: _Text | None,
    present: Counter[str],
    numbers: Collection[str],
    content: set[str],
) -> tuple[float, float]:
    """How much an answer is on its task's subject, and on the subject its task and the
    request frame together (``content``: the heads of the answer's content words)."""
    topic = _saturated(_relevance(own.terms, present, numbers))
    if own.prose and own.subject:
        # Trigrams of short words match by chance ("legs" in "privileges"): an answer on a
        # subject in words names some of them.
        topic = min(topic, _UNNAMED + _mentions(own.subject, content))
    if asked is None or not asked.subject:
        return topic, topic
    toward = _mentions(asked.subject, content)
    if _mentions(asked.subject, own.said) < 0.5:
        # The step has left the request's subject (a small model copied its prompt's example
        # into a plan: "The causes of the French Revolution…"): what counts is whether the
        # answer is on the request's subject.
        topic = toward
    elif toward < 0.5:  # on the step's subject, and never naming the request's
        topic *= 0.5 + toward
    return topic, 0.7 * topic + 0.3 * toward


class ScoringPass:
    """One scoring pass over outputs (a workflow's, or the lines of one file).

    Every output of a pass is measured against a few texts it shares with the others (the
    request, its task); what they say is worked out once and kept here. The pass is created
    by whoever scores and dropped with it, so no text outlives the workflow (or the file) it
    came from.
    """

    def __init__(self) -> None:
        self._known: dict[str, _Text] = {}

    def _text_of(self, text: str) -> _Text:
        known = self._known.get(text)
        if known is None:
            known = self._known[text] = _text(text)
        return known

    def dimensions(
        self,
        task: str,
        output: str,
        *,
        request: str = "",
        dependencies: Sequence[str] = (),
        efficiency: float | None = None,
        reliability: float | None = None,
    ) -> Dimensions:
        """All five dimensions of one output (see :func:`heuristic_dimensions`)."""
        if not output.strip():
            return Dimensions(0.0, 0.0, efficiency, reliability, 0.0)
        own = self._text_of(task)
        asked = self._text_of(request) if request and request != task else None
        texts = (own,) if asked is None else (own, asked)
        body = _answer_of(output, texts)
        # Each signal once: several dimensions share it.
        tokens = _TOKEN.findall(body)
        lowered = [t.lower() for t in tokens]
        words = [t for t in tokens if not t[0].isdigit()]
        content = _content(body, lowered)
        novel = _share_new(content, own.said)
        given = [t.said for t in texts if t.brief]
        if (
            not body.strip()  # nothing but the prompt, quoted or gone on with
            or (given and (novel if asked is None else _share_new(content, *given)) < _RESTATED)
            or _is_refusal(body, words)
            or (novel < 0.35 and _opens_like_deferral(body))
            or (
                (own.makes is not None or (asked is not None and asked.makes is not None))
                and _defines(body, tokens, texts)
            )
        ):
            return Dimensions(0.05, 0.1, efficiency, reliability, 0.1)
        present = _trigrams(body)
        wanted = own.sum or (asked.sum if asked is not None else None)
        numbers = numbers_in(body) if own.terms.numbers or wanted else ()
        topic, framed = _topic(own, asked, present, numbers, content)
        ended = finished(body)
        distinct = len({w for w in lowered if not w[0].isdigit()})
        length = _length(distinct)
        if own.question:
            if len(tokens) <= _SHORT_ANSWER_TOKENS and _VERBAL.isdisjoint(lowered):
                # "Paris", "391", "Solid, liquid and gas": a bare answer to a short question
                # need not repeat it, nor end a sentence. A sentence must be on its subject.
                topic = framed = length = 1.0
                ended = bool(tokens)
            else:
                length = _length(distinct, _SHORT_ANSWER_WORDS)
        wrong = False
        if wanted is not None:
            if gives(wanted.value, numbers):
                topic = framed = 1.0
            elif own.sum is not None or claims_result(body, numbers, wanted):
                wrong = True
                topic = framed = 0.0
        contradicted = _contradiction(own.terms, body)
        accurate = _accuracy(contradicted, topic, present, dependencies)
        return Dimensions(
            completeness=_completeness(length, ended, novel, topic) if tokens else 0.0,
            accuracy=min(accurate, 0.1) if wrong else accurate,
            efficiency=efficiency,
            reliability=reliability,
            coherence=_coherence(framed, _repetition(body, words), contradicted, ended),
        )


def heuristic_dimensions(
    task: str,
    output: str,
    *,
    request: str = "",
    dependencies: Sequence[str] = (),
    efficiency: float | None = None,
    reliability: float | None = None,
) -> Dimensions:
    """All five dimensions of one output. ``efficiency`` and ``reliability`` come from the
    run (tokens and time against budget; status, retries, errors); an output scored on its
    own has neither, and Q is then taken over the other three.

    Scoring many outputs of one workflow, use one :class:`ScoringPass` for all of them."""
    return ScoringPass().dimensions(
        task,
        output,
        request=request,
        dependencies=dependencies,
        efficiency=efficiency,
        reliability=reliability,
    )
