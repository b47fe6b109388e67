"""Whether a step needs retrieved context: the ``requires_context`` of plans no model wrote.

A model that plans freely sets ``requires_context`` itself (the decomposer's prompt asks for
it); a recipe's author sets it. The plans the engine makes from the request's own structure,
and the one step of the levels below Organ, get it from this rule, which errs toward
retrieving (a needless retrieval costs tokens; a missing one costs the answer):

- a step that only computes (``What is 12 * 14?``: numbers and operators, nothing to look up)
  needs none;
- a step that works on results before it (``compare the answers above``, ``group them by
  district``, ``turn the list into a table``) needs none: its dependencies' outputs reach it
  anyway;
- any other step (a question, a subject to describe, explain or research, a poem about one)
  needs context: where the knowledge base has nothing on it, the relevance cut drops all.
"""

from __future__ import annotations

import re

from automatos.phases.plan.lexicon import (
    AGGREGATE_VERBS,
    DETERMINERS,
    PREPOSITIONS,
    PRONOUNS,
    RESULT_NOUNS,
    WH_WORDS,
    verb_of,
)

__all__ = ["needs_context"]

_WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")
_ARITHMETIC = re.compile(r"\d\s*(?:[-+*/×÷^%]|\*\*|%\s*of)\s*[-(]?\d")
_COMPUTE_WORDS = frozenset(
    "what is whats what's calculate compute how much many equals equal of the result times "
    "plus minus divided multiplied by sum product square root percent percentage and give "
    "me tell answer please value to in".split()
)
_TRANSFORM_VERBS = frozenset(
    "turn format rewrite reword rephrase shorten condense convert summarise summarize "
    "tabulate translate polish edit proofread fix improve simplify expand restructure "
    "reformat paraphrase sort order".split()
)
_BACK_REFERENCES = frozenset({"above", "previous", "earlier", "preceding", "prior"})


def needs_context(description: str, has_dependencies: bool = False) -> bool:
    """Whether the step ``description`` needs context retrieved for it (see the module).

    ``has_dependencies``: whether the step depends on other steps, whose outputs it gets.
    """
    words = [w.casefold() for w in _WORD.findall(description)]
    if _only_computes(description, words):
        return False
    return not (has_dependencies and _works_on_results(words))


def _only_computes(description: str, words: list[str]) -> bool:
    """Arithmetic with no subject of its own: every word is a word of asking or computing."""
    return bool(_ARITHMETIC.search(description)) and all(w in _COMPUTE_WORDS for w in words)


def _works_on_results(words: list[str]) -> bool:
    """A step whose verb works on what came before, or that names an earlier result."""
    if any(w in _BACK_REFERENCES for w in words):
        return True
    first = _first_verb(words)
    if first is None:
        return False
    if first in AGGREGATE_VERBS or first in _TRANSFORM_VERBS:
        return True
    # "write a summary of them", "make a table of the results": a verb whose object is an
    # earlier result rather than a subject of its own.
    return any(w in PRONOUNS or w in RESULT_NOUNS for w in words[1:]) and not _asks(words)


def _first_verb(words: list[str]) -> str | None:
    for index, word in enumerate(words[:3]):
        base = verb_of(word, words[index + 1] if index + 1 < len(words) else "")
        if base is not None:
            return base
        if word in _TRANSFORM_VERBS:
            return word
        if word not in DETERMINERS and word not in PREPOSITIONS and word != "please":
            return None
    return None


def _asks(words: list[str]) -> bool:
    return bool(words) and words[0] in WH_WORDS
