"""Keeping secrets out of the events and logs of tool calls.

A model hands tools whatever it was given, and tools hand back whatever they read: an API key
pasted in a request, a password in a configuration file. What is recorded of a tool call goes
through a :class:`Redactor` first, which replaces with ``[REDACTED]``:

- what looks like a secret wherever it is: API keys of the known shapes (OpenAI and
  Anthropic ``sk-…``, AWS ``AKIA…``, GitHub ``ghp_…``, Slack, Google, Stripe, Hugging Face,
  this engine's own ``atm_…``), ``Bearer`` tokens, JWTs, PEM private keys, the password of a
  URL (``postgres://user:PASSWORD@host``);
- the value of a field whose name says it is secret (``password``, ``api_key``, ``token``,
  ``secret``, ``authorization``... and the names configured), in a JSON object as in
  ``key=value`` or ``key: value`` text.

Every pattern is linear in the text's length (no unbounded backtracking), so a tool's long
output costs its size to redact (about 0.3 ms a kilobyte), and a short string two passes of
compiled patterns (about 10 µs).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["DEFAULT_SECRET_NAMES", "REDACTED", "Redactor"]

REDACTED = "[REDACTED]"

DEFAULT_SECRET_NAMES = (
    "password",
    "passwd",
    "passphrase",
    "secret",
    "secrets",
    "token",
    "api_key",
    "access_key",
    "private_key",
    "secret_key",
    "client_secret",
    "authorization",
    "auth",
    "credential",
    "credentials",
    "cookie",
    "session_id",
)
"""Field names whose values are always redacted. A field is secret when these words appear
in its name, however it is written: ``db_password``, ``apiKey``, ``X-Api-Key``,
``GITHUB_TOKEN`` (but not ``max_tokens``, whose word is ``tokens``)."""

_SECRET_PREFIX = "atm_"
"""The prefix of this engine's API keys (:data:`automatos.store.keys.SECRET_PREFIX`), kept
here as text so that logging does not import the store."""

_MAX_DEPTH = 64
"""Deeper nesting than this in a JSON value is redacted whole rather than walked."""
_MAX_CACHED_KEYS = 4_096

_WORDS = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")

# Two passes, each one compiled pattern whose every branch starts with a literal, so that the
# regex engine skips ahead to the positions where one could start (Python's re is several
# times slower on branches that start with a look-behind or ignore case). What must be at a
# word's start checks the character before it with a look-behind placed after the literal.
# Repeats are bounded or of one class: one attempt per position, no backtracking across text.
_SHAPES = re.compile(
    "|".join(
        (
            r"(?P<pem>-----BEGIN[A-Z0-9 ]{0,40}PRIVATE KEY-----(?s:.*?)"
            r"(?:-----END[A-Z0-9 ]{0,40}PRIVATE KEY-----|\Z))",
            r"(?P<url>://(?P<url_user>[^/\s:@]{0,256}):[^/\s@]{1,256}(?=@))",
            r"sk-(?<![A-Za-z0-9_-]sk-)[A-Za-z0-9_-]{20,}",  # OpenAI, Anthropic (sk-ant-...)
            r"(?:AKIA|ASIA)(?<![A-Za-z0-9]....)[A-Z0-9]{16}(?![A-Za-z0-9])",  # AWS key ids
            r"gh[pousr]_(?<![A-Za-z0-9_]....)[A-Za-z0-9]{30,}",  # GitHub
            r"github_pat_(?<![A-Za-z0-9_]github_pat_)[A-Za-z0-9_]{20,}",
            r"xox[abposr]-(?<![A-Za-z0-9_].....)[A-Za-z0-9-]{10,}",  # Slack
            r"AIza(?<![A-Za-z0-9_]AIza)[0-9A-Za-z_-]{35}",  # Google
            r"[rs]k_(?:live|test)_(?<![A-Za-z0-9_]........)[A-Za-z0-9]{16,}",  # Stripe
            r"hf_(?<![A-Za-z0-9_]hf_)[A-Za-z0-9]{30,}",  # Hugging Face
            re.escape(_SECRET_PREFIX)
            + rf"(?<![A-Za-z0-9_]{re.escape(_SECRET_PREFIX)})[A-Za-z0-9_-]{{16,}}",
            r"eyJ(?<![A-Za-z0-9_-]eyJ)[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*",
        )
    )
)
"""Secrets by their shape, matched as they are written."""

# The second pass reads the text in lower case (names are matched whatever their case).
_BEARER = r"(?P<bearer>bearer[ \t]{1,16})[a-z0-9._~+/-]{16,}=*"
_KV_SEPARATOR = r"""(?P<kv_sep>["']?[ \t]{0,16}[:=][ \t]{0,16})"""
_KV_VALUE = (
    r"(?!\[redacted\])"  # what is redacted already stays as it is
    r"""(?P<kv_value>"(?:[^"\\\n]|\\.){0,4096}"|'[^'\n]{0,4096}'"""
    r"""|(?:(?:bearer|basic|token)[ \t]{1,16})?[^\s"',;&}\])]{1,4096})"""
)


def _words(name: str) -> tuple[str, ...]:
    """``"X-Api-Key"`` -> ``("x", "api", "key")``; ``"dbPassword"`` -> ``("db", "password")``."""
    return tuple(word.lower() for word in _WORDS.findall(name))


def _name_pattern(name: str) -> str:
    """A name as text may write it: its words with or without ``_``, ``-``, ``.`` between."""
    words = _words(name)
    return r"[_.-]?".join(re.escape(word) for word in words) if words else re.escape(name)


class Redactor:
    """Replaces secrets in text and JSON values with :data:`REDACTED`.

    Args:
        names: field names whose values are secret, on top of :data:`DEFAULT_SECRET_NAMES`
            (``tools.secret_names``). A name matches a field whose words include its words
            in order, whatever their case and separators: ``customer_ssn`` matches
            ``customerSsn`` and ``old_customer_ssn``.
    """

    def __init__(self, names: Iterable[str] = ()) -> None:
        extra = tuple(dict.fromkeys(name for name in names if _words(name)))
        self.names: tuple[str, ...] = DEFAULT_SECRET_NAMES + tuple(
            name for name in extra if name not in DEFAULT_SECRET_NAMES
        )
        self._secret_words = tuple(_words(name) for name in self.names)
        self._compact = {"".join(words) for words in self._secret_words}
        # longest first: "secret_key" before "secret", so that the separator follows the name
        alternatives = sorted({_name_pattern(name) for name in self.names}, key=len, reverse=True)
        named = rf"{_BEARER}|(?P<kv_name>{'|'.join(alternatives)}){_KV_SEPARATOR}{_KV_VALUE}"
        self._named = re.compile(named)
        self._named_any_case = re.compile(named, re.IGNORECASE)
        self._keys: dict[str, bool] = {}

    def is_secret_name(self, name: str) -> bool:
        """Whether a field named ``name`` holds a secret."""
        known = self._keys.get(name)
        if known is not None:
            return known
        words = _words(name)
        secret = "".join(words) in self._compact or any(
            _holds(words, secret_words) for secret_words in self._secret_words
        )
        if len(self._keys) >= _MAX_CACHED_KEYS:
            self._keys.clear()
        self._keys[name] = secret
        return secret

    def text(self, text: str) -> str:
        """``text`` with every secret it shows replaced."""
        if len(text) < 6:  # shorter than the shortest secret: "auth=x"
            return text
        text = _SHAPES.sub(_replace_shape, text)
        lower = text.lower()
        if len(lower) == len(text):  # one character for one: the positions are the text's
            matches = self._named.finditer(lower)
        else:  # a few characters lower to two ("İ"): matched where they are, ignoring case
            matches = self._named_any_case.finditer(text)
        parts: list[str] = []
        done = 0
        for match in matches:
            if match.group("bearer") is not None:
                kept = match.end("bearer")
                parts += (text[done:kept], REDACTED)
            else:
                kept = match.end("kv_sep")
                quote = text[kept] if text[kept] in "\"'" else ""
                parts += (text[done:kept], quote, REDACTED, quote)
            done = match.end()
        if not parts:
            return text
        parts.append(text[done:])
        return "".join(parts)

    def value(self, value: Any) -> Any:
        """A JSON-like value (dicts, lists, tuples, strings, numbers) with its secrets
        replaced: the value of a secret field whole (unless ``None`` or a bool), and the
        secrets in every string. Returns new containers; the value given is not changed."""
        return self._value(value, 0)

    def _value(self, value: Any, depth: int) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if depth >= _MAX_DEPTH and isinstance(value, Mapping | list | tuple):
            return REDACTED
        if isinstance(value, Mapping):
            return {
                key: REDACTED
                if isinstance(key, str)
                and self.is_secret_name(key)
                and value[key] is not None
                and not isinstance(value[key], bool)
                else self._value(value[key], depth + 1)
                for key in value
            }
        if isinstance(value, list | tuple):
            return [self._value(item, depth + 1) for item in value]
        return value

    def __repr__(self) -> str:
        return f"Redactor(names={self.names[len(DEFAULT_SECRET_NAMES) :]!r})"


def _holds(words: tuple[str, ...], part: tuple[str, ...]) -> bool:
    """Whether ``part`` appears in ``words``, in order and together."""
    size = len(part)
    return any(words[start : start + size] == part for start in range(len(words) - size + 1))


def _replace_shape(match: re.Match[str]) -> str:
    if match.group("url") is not None:
        return f"://{match.group('url_user')}:{REDACTED}"
    return REDACTED
