"""Quality dimensions computed from what an agent actually wrote (no model needed).

Each function looks at the output itself, against the task it answers and, when given, the
request and the outputs it depended on. They return values in [0, 1]. The heuristics are
deliberately generic (lengths, endings, repetition, character-level relevance, novelty,
refusal, deferral and contradiction cues) so that they hold for outputs they were not tuned
on.

Nothing here is kept in module state: a workflow's outputs (and its tasks) must not stay in
the process after it, where another workspace's run could read them. What several outputs of
one pass share (the key terms of the request, of each task) is kept by a :class:`ScoringPass`
that the pass creates and drops; what the dimensions of one output share (its trigrams,
words, relevance, novelty, contradictions) is measured once per output in
:meth:`ScoringPass.dimensions`.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

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
_IDENT = re.compile(r"[A-Za-z0-9]+")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_INSTRUCTION = frozenset(
    "explain describe what does do how use using in python and the a an of to it its is are "
    "write give list summarise summarize compare briefly short please for with about on".split()
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
# Words of promises and plans: they say what an answer would do, not what it finds.
_META = frozenset(
    "sure okay certainly course absolutely great alright here below will would going "
    "explanation explain explaining describe description show first then next finally "
    "look step steps detail details answer question task help your code yourself "
    "following overview let use used uses using work works".split()
)
_CONTRADICTION = re.compile(
    r"\b(does not exist|doesn'?t exist|there is no such|no such (?:function|thing|method|"
    r"module|class|feature)|the opposite is true|is not (?:able|possible)|cannot be used|"
    r"should not be used|never does|not able to|is a myth|is false|is wrong|that is incorrect|"
    r"contrary to)",
    re.IGNORECASE,
)
_NEGATION = re.compile(r"\b(not|no|never|none|cannot|can't|isn't|doesn't|won't)\b", re.I)


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
    """The task's own subject words (identifier parts included), instruction words dropped."""
    terms = []
    for raw in _IDENT.findall(task):
        word = raw.lower()
        if len(word) > 1 and word not in _INSTRUCTION:
            terms.append(word)
    return tuple(dict.fromkeys(terms))


class _Terms(NamedTuple):
    """What relevance and contradiction need of a task (or request): the inner trigrams of
    each key term, and the terms long enough to count as naming the subject."""

    grams: tuple[tuple[str, ...], ...]
    named: tuple[str, ...]


def _terms(task: str) -> _Terms:
    terms = key_terms(task)
    grams = []
    for term in terms:  # lower-case letters and digits: no trigram inside one has a space
        inner = tuple(dict.fromkeys([term[i : i + 3] for i in range(len(term) - 2)]))
        # A two-letter term has no inner trigram: its edges (" ab", "ab ") stand in.
        grams.append(inner or (f" {term}", f"{term} "))
    return _Terms(tuple(grams), tuple(t for t in terms if len(t) > 3))


def _relevance(terms: _Terms, present: Counter[str]) -> float:
    if not terms.grams:
        return 0.0
    shares = [sum(1 for g in inner if g in present) / len(inner) for inner in terms.grams]
    shares.sort(reverse=True)
    best = shares[: max(1, len(shares) // 2)]
    return min(1.0, (2 * sum(best) + sum(shares)) / (2 * len(best) + len(shares)))


def _saturated(relevance: float) -> float:
    return min(1.0, relevance / 0.6)


def relevance(task: str, output: str) -> float:
    """How much of the task's subject the output is about, by character trigrams.

    Trigrams match across word forms and identifier fragments ("getfqdn" against "FQDN" and
    "gethostbyaddr"), which plain word overlap misses. Per key term: the share of its
    trigrams found in the output; the result averages the terms, best half weighted double.
    """
    if not output.strip():
        return 0.0
    return _relevance(_terms(task), _trigrams(output))


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


def _novelty(task: str, words: Sequence[str]) -> float:
    content = {w.lower() for w in words if len(w) > 3}
    content -= _INSTRUCTION | _META
    if not content:
        return 0.0
    given = {w.lower() for w in _WORD.findall(task)}
    return len(content - given) / len(content)


def novelty(task: str, output: str) -> float:
    """Share of the output's content words that its task did not already say, in [0, 1].

    An answer brings something: names, facts, steps. One that only says the task back, in
    the words of a promise or a plan, brings nothing.
    """
    return _novelty(task, _WORD.findall(output))


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
    """Whether the output ends where a text ends, not in the middle of a sentence."""
    stripped = output.rstrip()
    return stripped[-1:] in ".!?)\"'`]}>:" or stripped.endswith("```")


def _completeness(words: Sequence[str], ended: bool, novel: float, topic: float) -> float:
    distinct = {w.lower() for w in words}
    if not distinct:
        return 0.0
    length = min(1.0, math.log1p(len(distinct)) / math.log1p(60))
    ending = 1.0 if ended else 0.45
    # Saying the task back covers none of it: under a third of new content words, less.
    new = min(1.0, 0.2 + 0.8 * novel / 0.3)
    return length * ending * new * (0.25 + 0.75 * topic)


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
    words = _WORD.findall(output)
    return _completeness(words, finished(output), _novelty(task, words), on_topic(task, output))


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
    topic = _saturated(_relevance(terms, present))
    return _accuracy(_contradiction(terms, output), topic, present, dependencies)


class ScoringPass:
    """One scoring pass over outputs (a workflow's, or the lines of one file).

    Every output of a pass is measured against a few texts it shares with the others (the
    request, its task); their key terms are worked out once and kept here. The pass is
    created by whoever scores and dropped with it, so no text outlives the workflow (or the
    file) it came from.
    """

    def __init__(self) -> None:
        self._known: dict[str, _Terms] = {}

    def _terms_of(self, text: str) -> _Terms:
        terms = self._known.get(text)
        if terms is None:
            terms = self._known[text] = _terms(text)
        return terms

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
        # Each signal once: several dimensions share it.
        words = _WORD.findall(output)
        novel = _novelty(task, words)
        if _is_refusal(output, words) or (_opens_like_deferral(output) and novel < 0.35):
            return Dimensions(0.05, 0.1, efficiency, reliability, 0.1)
        terms = self._terms_of(task)
        present = _trigrams(output)
        topic = _saturated(_relevance(terms, present))
        contradicted = _contradiction(terms, output)
        ended = finished(output)
        framed = topic
        if request and request != task:
            framed = 0.7 * topic + 0.3 * _saturated(_relevance(self._terms_of(request), present))
        return Dimensions(
            completeness=_completeness(words, ended, novel, topic),
            accuracy=_accuracy(contradicted, topic, present, dependencies),
            efficiency=efficiency,
            reliability=reliability,
            coherence=_coherence(framed, _repetition(output, words), contradicted, ended),
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
