"""Whether an agent's answer has any substance: an empty answer is a failed attempt.

A model can "succeed" with nothing: an empty string, whitespace, or only its own control
tokens (``<eos>``, ``<|im_end|>``, ``[PAD]``, byte tokens, replacement characters) that a
server passed through. Counting those as succeeded would hand an empty result downstream and
teach the learning stage that the agent did well.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["answer_problem"]

# Special tokens of the common tokenizers, as servers leak them into text.
_SPECIAL = re.compile(
    r"<\|[^<>|\s]{1,40}\|>"  # <|endoftext|>, <|im_end|>, <|eot_id|>
    r"|</?s>"
    r"|<(?:pad|unk|eos|bos|mask|sep|cls|eot|end_of_turn|start_of_turn|end_of_text|"
    r"begin_of_text|endoftext|unused\d+|extra_id_\d+|0x[0-9a-f]{2})>"
    r"|\[(?:pad|unk|cls|sep|mask|eos|bos)\]",
    re.IGNORECASE,
)


def answer_problem(text: str) -> str | None:
    """What makes ``text`` a non-answer, or ``None`` if it says something.

    Substance is a letter, a digit or a symbol (an emoji, a math sign) outside special
    tokens; whitespace, invisible characters, replacement characters, punctuation alone and
    special tokens are not.
    """
    stripped = text.strip()
    if not stripped:
        return "the answer is empty" if not text else "the answer is only whitespace"
    if stripped[0].isalnum():  # the usual case, decided by its first character
        return None
    rest = _SPECIAL.sub(" ", stripped)
    for char in rest:
        if unicodedata.category(char)[0] in "LNS" and char != "\ufffd":
            return None
    return f"the answer is only stop tokens or garbage: {stripped[:60]!r}"
