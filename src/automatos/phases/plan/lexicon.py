"""The words request analysis knows: work verbs, the words that lead a clause, and the words
that point back at another step's result.

Kept apart from the analysis so that adding a verb or a connective never touches the logic.
Everything is lower case; spelling variants map to one base form (British, as the engine's
own messages are).
"""

from __future__ import annotations

__all__ = [
    "AGGREGATE_VERBS",
    "AMBIGUOUS_VERBS",
    "AUXILIARIES",
    "CONSTRAINT_HEADS",
    "DETERMINERS",
    "DISTRIBUTIVE_VERBS",
    "GENERIC_OUTPUTS",
    "LEADERS",
    "OBJECT_SLOTS",
    "PREPOSITIONS",
    "PRONOUNS",
    "RESULT_NOUNS",
    "WH_WORDS",
    "Link",
    "verb_of",
]


def _set(words: str) -> frozenset[str]:
    return frozenset(words.split())


_VERBS = _set(
    "research compare analyse analyze build design write plan summarise summarize explain list "
    "describe find search create make draft review translate calculate compute estimate "
    "implement code program test debug fix refactor evaluate assess identify outline suggest "
    "recommend propose generate produce prepare collect gather group sort rank classify "
    "categorise categorize organise organize combine merge convert extract give tell show name "
    "define predict check verify investigate study document book choose pick select draw "
    "sketch solve prove answer rewrite edit proofread improve optimise optimize deploy install "
    "configure schedule map visualise visualize plot chart format count measure tabulate "
    "critique discuss brainstorm contrast cluster filter clean parse update add remove replace "
    "teach compose simplify shorten expand paraphrase rephrase restructure split tag label "
    "annotate score rate grade benchmark profile audit inspect scan prototype model forecast "
    "simulate validate detect diagnose troubleshoot resolve migrate port integrate automate "
    "prioritise prioritize decide determine derive tally quantify locate fetch scrape query "
    "compile assemble arrange craft invent illustrate narrate enumerate cite highlight justify "
    "argue defend criticise criticize pitch reply respond recap condense synthesise synthesize "
    "consolidate reconcile interpret examine explore survey sum train fine-tune finetune set "
    "look figure work break put point come send publish share buy contact invite notify "
    "remind ask hire submit apply cook bake print upload cover "
    "download email call post order register sign present report state match"
)
_SPELLING = {
    "analyze": "analyse",
    "summarize": "summarise",
    "categorize": "categorise",
    "organize": "organise",
    "optimize": "optimise",
    "visualize": "visualise",
    "prioritize": "prioritise",
    "criticize": "criticise",
    "synthesize": "synthesise",
    "finetune": "fine-tune",
}
# Heads that only make a work verb with their particle ("look up", "figure out").
_PHRASAL = {
    "set": ("up",),
    "look": ("up", "into"),
    "figure": ("out",),
    "work": ("out",),
    "break": ("down",),
    "put": ("together",),
    "point": ("out",),
    "come": ("up",),
    "sum": ("up",),
}


def verb_of(word: str, following: str = "") -> str | None:
    """The base form of ``word`` if it is a work verb (``following`` is the next word, for
    phrasal verbs), else ``None``."""
    if word not in _VERBS:
        return None
    particles = _PHRASAL.get(word)
    if particles is not None:
        return f"{word} {following}" if following in particles else None
    return _SPELLING.get(word, word)


AMBIGUOUS_VERBS = _set(
    "list plan design test map chart plot sort group book name answer study document draft "
    "code fix check review estimate outline show model profile score rate grade benchmark "
    "audit scan prototype forecast filter clean cluster tag label count measure format "
    "schedule query compile sketch order update report program rank pick split add sum "
    "search survey cite port point set look work break put come pitch reply respond recap "
    "train convert state email call post order sign print share contact cook apply present "
    "match cover"
)
"""Verbs that are as often nouns ("the test plan", "a book list"): in the middle of a
sentence they start a new clause only when an object follows them."""

DISTRIBUTIVE_VERBS = _set(
    "describe research summarise explain analyse review investigate evaluate assess define "
    "translate find calculate compute profile outline examine explore"
)
"""Verbs whose enumerated objects are separate pieces of work ("describe A, B and C")."""

AGGREGATE_VERBS = _set(
    "compare contrast rank combine merge group sort choose pick select recommend prioritise "
    "tabulate decide consolidate reconcile synthesise cluster match"
)
"""Verbs that work on several things at once: without an object of their own, they work on
the results before them."""

CONSTRAINT_HEADS = _set(
    "be keep avoid don't dont never always limit assume note remember ensure stick stay "
    "include mention focus aim prefer output return only no do use"
)
"""Heads of sentences that constrain the answer ("Be concise.", "Use Python.") rather than
ask for a deliverable."""

WH_WORDS = _set(
    "what who whom whose when where why which how what's whats who's whos where's wheres "
    "how's hows when's why's"
)
AUXILIARIES = _set(
    "is are was were do does did can could should would will shall may might must has have had "
    "am isn't aren't wasn't weren't doesn't don't didn't can't couldn't shouldn't won't"
)
DETERMINERS = _set(
    "the a an my our your their its his her these those this that some any all each every "
    "both one two three four five six seven eight nine ten several few many"
)
PREPOSITIONS = _set(
    "of about on for in with to from between among into at by like including via per over "
    "under within without across through regarding versus vs than as during after before "
    "against toward towards around near"
)
PRONOUNS = _set("me us them it him her you this that these those")
OBJECT_SLOTS = _set("use using from on with into of about to for in at by onto upon") | _VERBS
"""Words after which "it", "this" and "that" are objects, so they point at a result."""

RESULT_NOUNS = _set(
    "results result findings finding answers answer outputs output options list lists items "
    "above previous ones summary summaries draft drafts table tables outline outlines ideas "
    "data notes responses response recommendations suggestions candidates choices "
    "descriptions explanations profiles reports analyses comparisons steps"
)
"""Nouns that, after "the", name something an earlier step made ("the results")."""

GENERIC_OUTPUTS = _set(
    "report summary overview conclusion conclusions recommendation recommendations table chart "
    "graph slide slides presentation verdict decision answer ranking comparison synthesis "
    "article post blog essay email memo brief note notes write-up writeup paragraph "
    "short brief final detailed concise quick simple clear overall one-page single combined "
    "executive final list"
)
"""What a step makes when it has no topic of its own ("write a short report"): such a step
at the end works on what came before."""


class Link:
    """How a clause's leading connective ties it to what came before."""

    NONE = 0
    SEQUENCE = 1
    """"then", "after that": after the steps so far, using their results."""
    FINAL = 2
    """"finally", "lastly": the concluding step."""
    PARALLEL = 3
    """"also", "in addition": a separate deliverable."""


LEADERS: tuple[tuple[str, int], ...] = (
    (
        r"and then|then|next|after that|after this|afterwards|afterward|subsequently|"
        r"once (?:that is |that's |this is |it is |it's |you are |you're )?(?:done|finished)|"
        r"when (?:that is |that's |this is |you are |you're )?(?:done|finished)|"
        r"with (?:that|this|those|these|the results?)",
        Link.SEQUENCE,
    ),
    (
        r"and finally|finally|lastly|last of all|in the end|at the end|to finish|to conclude|"
        r"in conclusion|to wrap up|to wrap it up",
        Link.FINAL,
    ),
    (
        r"and also|also|additionally|in addition|as well|besides|separately|in parallel|"
        r"meanwhile|at the same time|independently|plus|furthermore|moreover",
        Link.PARALLEL,
    ),
    (
        r"and|but|so|now|first of all|first|firstly|second|secondly|third|thirdly|fourth|"
        r"fourthly|fifth|please|pls|plz|kindly|just|ok|okay|hey|hi|hello|"
        r"(?:can|could|would|will) (?:you|u)(?: please)?|"
        r"i (?:need|want|would like|'d like|d like|would love|'d love) (?:you |u )?to|"
        r"we (?:need|want|would like|'d like) (?:you )?to|"
        r"you (?:should|need to|must|have to|can)|"
        r"(?:make sure|be sure|don't forget|do not forget|remember) to|try to|"
        r"help me(?: to)?|help us(?: to)?|let's|let us|go ahead and|"
        r"your (?:task|job) is to|the (?:task|goal) is to|i need help to|"
        r"(?:step|part|task|item) \d{1,3}|\d{1,3}[.)]|\(\d{1,3}\)",
        Link.NONE,
    ),
)
"""Words that may lead a clause before its verb, with the link each one makes, as regular
expressions tried in this order."""
