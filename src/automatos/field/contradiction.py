"""Whether a new finding contradicts earlier ones: a word-level heuristic, no model call.

The rule. Each finding (fact or decision; questions claim nothing and are never compared)
is read as three things: its *content words* (lower-cased, crudely stemmed, without stop
words, negations and numbers), its *polarity* (an odd number of negations — not, no, never,
none, nothing, neither, nor, cannot, without, any "n't" — makes it negative) and the *numbers*
it states (``14``, ``1,000``, ``3.5``, ``14th``, ``20%``, compared as values). Two findings
are about the same thing when they share at least :data:`MIN_SHARED` content words and
their content words overlap by at least :data:`MIN_OVERLAP` (Jaccard: shared over all).
Two findings about the same thing contradict each other when their polarity differs, or
when both state numbers and the numbers differ. So "the launch date moved to 14 March"
contradicts "the launch date is 21 March" and "the launch date has not moved", but neither
"the venue is booked" nor "the launch date moved" (no number: an elaboration, not a
disagreement).

Its limits, which a reader of a ``contradicts`` mark should know:

- It does not understand meaning. Paraphrases ("postponed" against "moved later"),
  antonyms ("increased" against "decreased", "available" against "unavailable") and
  contradictions spread over several findings are missed.
- Numbers are compared as bare values, without their units or what they count: "revenue
  grew 5% in 2023" is marked as contradicting "revenue grew 8% in 2024" (different years,
  no disagreement), and "2 km" as contradicting "2000 m".
- Polarity is a parity of negation words: "not impossible" reads as negative, and a
  negation in a subordinate clause flips the whole finding.
- Stemming is a suffix cut for English; other languages get exact word matches only.

- It compares a new finding with at most :data:`MAX_CANDIDATES` earlier ones: the most
  recent that share one of its rarest content words. Among many findings about one topic,
  a contradiction of an old one can be missed; and a finding names at most
  :data:`MAX_MARKS` of those it contradicts, the most recent.

A ``contradicts`` mark is therefore a prompt to look, quoted to later agents as such, not a
verdict. The check is bounded: an inverted index over content words finds the candidates
through the new finding's rarest words (a finding that overlaps it enough must share one of
them: the prefix filter of set-similarity joins), and at most :data:`MAX_CANDIDATES` of them
are compared, whatever the number of findings. Checking one finding costs time linear in its
own length plus ``MAX_CANDIDATES`` times the number of words probed (a few), never a pass
over every finding; adding one costs its words.
"""

from __future__ import annotations

import heapq
import math
import re
from collections import defaultdict
from dataclasses import dataclass

from automatos.field.base import FindingKind

__all__ = [
    "MAX_CANDIDATES",
    "MAX_MARKS",
    "MIN_OVERLAP",
    "MIN_SHARED",
    "Claim",
    "ContradictionIndex",
    "claim_of",
    "contradicts",
]

MIN_OVERLAP = 0.6
"""Jaccard overlap of content words from which two findings are about the same thing."""
MIN_SHARED = 2
"""Content words two findings must share at least (short findings overlap by chance)."""
MAX_CANDIDATES = 200
"""Earlier findings one new finding is compared with at most: the most recent candidates."""
MAX_MARKS = 5
"""Ids a finding's ``contradicts`` keeps at most: the most recent it contradicts."""

_TOKEN = re.compile(r"[^\W_]+(?:['’.,][^\W_]+)*")
_NUMBER = re.compile(r"(\d+(?:[.,]\d+)*)(?:st|nd|rd|th|%|k)?")
_NEGATIONS = frozenset(
    "not no never none nothing nobody nowhere neither nor cannot without".split()
)
_STOP = frozenset(
    """a an the and or but if then than so as of to in on at by for from with into onto over
    under about after before between through during up down out off again further once here
    there when where why how all any both each few more most other some such only own same
    too very just also now still yet already is are was were be been being am do does did
    doing has have had having will would shall should can could may might must it its it's
    this that these those which who whom whose what i me my we our us you your he him his she
    her they them their there's that's let lets per via vs etc e.g i.e""".split()
)


@dataclass(frozen=True, slots=True)
class Claim:
    """What the heuristic reads in one finding."""

    words: frozenset[str]
    """Content words, stemmed."""
    negative: bool
    numbers: frozenset[float]


def claim_of(text: str) -> Claim:
    """The content words, polarity and numbers of ``text`` (see the module's rule)."""
    words: set[str] = set()
    numbers: set[float] = set()
    negations = 0
    for token in _TOKEN.findall(text.lower()):
        token = token.replace("’", "'")
        number = _NUMBER.fullmatch(token)
        if number is not None:
            value = _value(number.group(1))
            if value is not None:
                numbers.add(value)
                continue
        if token in _NEGATIONS or token.endswith("n't"):
            negations += 1
        elif token not in _STOP:
            words.add(_stem(token))
    return Claim(frozenset(words), negations % 2 == 1, frozenset(numbers))


def _value(digits: str) -> float | None:
    # "1,000" is a thousand, "3,5" (a decimal comma) three and a half, "3.5" too.
    if "," in digits and "." not in digits and re.fullmatch(r"\d{1,3}(?:,\d{3})+", digits) is None:
        digits = digits.replace(",", ".")
    try:
        return float(digits.replace(",", ""))
    except ValueError:  # "1.2.3", a version: a word, not a number
        return None


def _stem(word: str) -> str:
    if word.endswith("'s"):
        word = word[:-2]
    if len(word) > 5 and word.endswith("ing"):
        word = word[:-3]
    elif len(word) > 4 and word.endswith(("ed", "es")):
        word = word[:-2]
    elif len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        word = word[:-1]
    if len(word) > 3 and word.endswith("e"):
        word = word[:-1]
    return word


def contradicts(new: Claim, old: Claim) -> bool:
    """Whether two claims are about the same thing and disagree (the module's rule)."""
    shared = len(new.words & old.words)
    return _disagree(new, old, shared)


def _disagree(new: Claim, old: Claim, shared: int) -> bool:
    if shared < MIN_SHARED:
        return False
    if shared / (len(new.words) + len(old.words) - shared) < MIN_OVERLAP:
        return False
    if new.negative != old.negative:
        return True
    return bool(new.numbers) and bool(old.numbers) and new.numbers != old.numbers


class ContradictionIndex:
    """The findings seen so far, indexed by content word, to check new ones against."""

    def __init__(self) -> None:
        self._claims: dict[int, Claim] = {}
        self._postings: defaultdict[str, list[int]] = defaultdict(list)

    def check(self, kind: FindingKind, text: str) -> tuple[int, ...]:
        """Ids of the indexed findings that a finding of ``kind`` saying ``text`` contradicts,
        in order: at most :data:`MAX_MARKS`, the most recent, found among at most
        :data:`MAX_CANDIDATES` (none for a question)."""
        if kind == "question":
            return ()
        return self._check(claim_of(text))

    def _check(self, claim: Claim) -> tuple[int, ...]:
        words = claim.words
        # Jaccard >= MIN_OVERLAP needs at least MIN_OVERLAP * |words| shared words, so a
        # match shares one of any |words| - need + 1 of them: probe with the rarest.
        need = max(MIN_SHARED, math.ceil(MIN_OVERLAP * len(words) - 1e-9))
        if len(words) < need:
            return ()
        postings = self._postings
        probe = sorted(words, key=lambda w: len(postings.get(w, ())))[: len(words) - need + 1]
        claims = self._claims
        # Postings are in the order findings were added: the most recent are at their ends.
        recent = {fid for word in probe for fid in postings.get(word, ())[-MAX_CANDIDATES:]}
        candidates = heapq.nlargest(MAX_CANDIDATES, recent)
        found = [
            fid
            for fid in candidates
            if _disagree(claim, claims[fid], len(words & claims[fid].words))
        ]
        return tuple(sorted(found[:MAX_MARKS]))

    def add(self, fid: int, kind: FindingKind, text: str) -> None:
        """Index finding ``fid`` (questions are not indexed: they claim nothing)."""
        if kind == "question" or fid in self._claims:
            return
        claim = claim_of(text)
        self._claims[fid] = claim
        for word in claim.words:
            self._postings[word].append(fid)
