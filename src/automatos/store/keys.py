"""API keys as the store gives them back: what a key is, never what it opens with.

An :class:`ApiKey` holds neither the secret nor its hash: a record can be listed, logged or
sent to a client without giving anyone a way in. The secret exists once, in the return value
of :meth:`~automatos.store.key_records.KeyRecords.create_key`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from automatos.errors import InvalidRequestError

__all__ = ["MAX_KEY_NAME_CHARS", "SECRET_PREFIX", "ApiKey", "check_workspace"]

SECRET_PREFIX = "atm_"
"""How every secret starts: a key found in a log or a repository says what it is."""
MAX_KEY_NAME_CHARS = 200
"""The longest name of a key (what it is for: ``ci``, ``dashboard``)."""

_WORKSPACE = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def check_workspace(workspace: str) -> str:
    """``workspace`` if it is a workspace name: 1 to 64 letters, digits, ``_``, ``.``, ``-``.

    Raises:
        InvalidRequestError: it is not.
    """
    if not _WORKSPACE.fullmatch(workspace):
        raise InvalidRequestError(
            f"{workspace[:80]!r} is not a workspace name: 1 to 64 letters, digits, '_', '.' or '-'"
        )
    return workspace


@dataclass(frozen=True)
class ApiKey:
    """One API key of a workspace, without its secret."""

    id: str
    """The key's public id: what ``keys revoke`` and logs name."""
    workspace: str
    """The only workspace a request with this key can see."""
    name: str
    """What the key is for, given at creation."""
    prefix: str
    """The first characters of the secret, so that a person can tell their keys apart."""
    created_at: datetime
    revoked_at: datetime | None
    """When it was revoked; a revoked key opens nothing."""
    last_used_at: datetime | None
    """When it last authenticated a request, to the minute (it is not written more often)."""

    @property
    def revoked(self) -> bool:
        """Whether the key has been revoked."""
        return self.revoked_at is not None
