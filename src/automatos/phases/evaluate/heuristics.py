"""Quality dimensions computed from what an agent actually wrote (no model needed).

Each function looks at the output itself, against the task it answers and, when given, the
request and the outputs it depended on. They return values in [0, 1]. The heuristics are
deliberately generic (lengths, endings, repetition, character-level relevance, novelty,
refusal, deferral and contradiction cues) so that they hold for outputs they were not tuned
on.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

__all__ = [
    "Dimensions",
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


@lru_cache(maxsize=512)
def key_terms(task: str) -> tuple[str, ...]:
    """The task's own subject words (identifier parts included), instruction words dropped."""
    terms = []
    for raw in _IDENT.findall(task):
        word = raw.lower()
        if len(word) > 1 and word not in _INSTRUCTION:
            terms.append(word)
    return tuple(dict.fromkeys(terms))


# The dimensions share signals (relevance, contradiction, repetition) of the same output;
# a small cache computes each once per output instead of once per dimension.
@lru_cache(maxsize=512)
def relevance(task: str, output: str) -> float:
    """How much of the task's subject the output is about, by character trigrams.

    Trigrams match across word forms and identifier fragments ("getfqdn" against "FQDN" and
    "gethostbyaddr"), which plain word overlap misses. Per key term: the share of its
    trigrams found in the output; the result averages the terms, best half weighted double.
    """
    terms = key_terms(task)
    if not terms or not output.strip():
        return 0.0
    present = _trigrams(output)
    shares = []
    for term in terms:
        grams = _trigrams(term)
        inner = [g for g in grams if g.strip() == g] or list(grams)
        shares.append(sum(1 for g in inner if g in present) / len(inner))
    shares.sort(reverse=True)
    best = shares[: max(1, len(shares) // 2)]
    return min(1.0, (2 * sum(best) + sum(shares)) / (2 * len(best) + len(shares)))


def on_topic(task: str, output: str) -> float:
    """Relevance that saturates: an answer need not repeat every word of its task to be on
    it, so relevance of 0.6 and above counts fully."""
    return min(1.0, relevance(task, output) / 0.6)


@lru_cache(maxsize=512)
def repetition(output: str) -> float:
    """Share of the text that repeats itself: 0 for none, near 1 for a loop.

    Measured on word 4-grams and on whole sentences; the larger wins.
    """
    words = [w.lower() for w in _WORD.findall(output)]
    if len(words) < 8:
        return 0.0
    grams = [tuple(words[i : i + 4]) for i in range(len(words) - 3)]
    gram_rep = 1 - len(set(grams)) / len(grams)
    sentences = [s.strip().lower() for s in _SENTENCE.split(output) if s.strip()]
    sent_rep = 1 - len(set(sentences)) / len(sentences) if len(sentences) > 1 else 0.0
    return max(gram_rep, sent_rep)


@lru_cache(maxsize=512)
def novelty(task: str, output: str) -> float:
    """Share of the output's content words that its task did not already say, in [0, 1].

    An answer brings something: names, facts, steps. One that only says the task back, in
    the words of a promise or a plan, brings nothing.
    """
    words = {w.lower() for w in _WORD.findall(output) if len(w) > 3}
    words -= _INSTRUCTION | _META
    if not words:
        return 0.0
    given = {w.lower() for w in _WORD.findall(task)}
    return len(words - given) / len(words)


def is_deferral(task: str, output: str) -> bool:
    """Whether the output promises or plans the task instead of doing it."""
    return bool(_DEFERRAL.match(output.strip())) and novelty(task, output) < 0.35


def is_refusal(output: str) -> bool:
    """Whether the output declines the task instead of doing it."""
    head = output.strip()[:300]
    return bool(_REFUSAL.search(head)) and len(_WORD.findall(output)) < 80


@lru_cache(maxsize=512)
def contradiction(task: str, output: str) -> float:
    """Cues that the output denies its own subject, in [0, 1].

    Strong phrases ("does not exist", "there is no such", "the opposite is true") count
    fully; negations inside sentences that name the subject count a little.
    """
    strong = len(_CONTRADICTION.findall(output))
    terms = [t for t in key_terms(task) if len(t) > 3]
    weak = 0
    for sentence in _SENTENCE.split(output):
        low = sentence.lower()
        if any(t in low for t in terms):
            weak += len(_NEGATION.findall(sentence))
    return min(1.0, 0.6 * strong + 0.1 * weak)


def finished(output: str) -> bool:
    """Whether the output ends where a text ends, not in the middle of a sentence."""
    stripped = output.rstrip()
    return stripped[-1:] in ".!?)\"'`]}>:" or stripped.endswith("```")


def completeness(task: str, output: str) -> float:
    """Does the output cover the task: enough substance, a finished ending, its subject?

    Substance is counted in distinct words, up to about 60 (an answer shorter than a couple
    of sentences rarely covers a task, and repeating itself adds nothing); an output cut off
    mid-sentence loses most of its credit; an output about something else covers little.
    """
    distinct = {w.lower() for w in _WORD.findall(output)}
    if not distinct:
        return 0.0
    length = min(1.0, math.log1p(len(distinct)) / math.log1p(60))
    ending = 1.0 if finished(output) else 0.45
    # Saying the task back covers none of it: under a third of new content words, less.
    new = min(1.0, 0.2 + 0.8 * novelty(task, output) / 0.3)
    return length * ending * new * (0.25 + 0.75 * on_topic(task, output))


def coherence(task: str, output: str, request: str = "") -> float:
    """Structure, repetition and relevance to the task (and to the request, when given)."""
    if not output.strip():
        return 0.0
    rel = on_topic(task, output)
    if request and request != task:
        rel = 0.7 * rel + 0.3 * on_topic(request, output)
    fresh = 1.0 - repetition(output)
    consistent = 1.0 - 0.5 * contradiction(task, output)
    ending = 1.0 if finished(output) else 0.8
    return max(0.0, min(1.0, fresh**2 * (0.35 + 0.65 * rel) * consistent * ending))


def accuracy(task: str, output: str, dependencies: Sequence[str] = ()) -> float:
    """Consistency with the task and with the outputs depended on; contradictions cost.

    An output about something else than its task is not consistent with it either: half the
    credit depends on relevance.
    """
    if not output.strip():
        return 0.0
    base = (1.0 - contradiction(task, output)) ** 2 * (0.5 + 0.5 * on_topic(task, output))
    if dependencies:
        # Building on what earlier steps found shows as shared vocabulary.
        support = max(_cosine(_trigrams(d), _trigrams(output)) for d in dependencies)
        base *= 0.75 + 0.25 * min(1.0, support / 0.5)
    return max(0.0, base)


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
    own has neither, and Q is then taken over the other three."""
    if not output.strip():
        return Dimensions(0.0, 0.0, efficiency, reliability, 0.0)
    refused = is_refusal(output) or is_deferral(task, output)
    return Dimensions(
        completeness=0.05 if refused else completeness(task, output),
        accuracy=0.1 if refused else accuracy(task, output, dependencies),
        efficiency=efficiency,
        reliability=reliability,
        coherence=0.1 if refused else coherence(task, output, request),
    )
