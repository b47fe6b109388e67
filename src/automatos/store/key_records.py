"""API keys in SQL: created with their secret shown once, listed, revoked, and checked.

:class:`KeyRecords` is the half of :class:`~automatos.store.sql.SqlStore` that keeps the keys
of every workspace of the database: unlike the rest of the store it is not scoped to the
store's own workspace, since a key names the workspace it opens.

Only the sha256 of a secret is kept (and its first characters, to tell keys apart): a copy of
the database lets nobody in. A secret is 32 random bytes, so a plain hash is enough; a slow
password hash would only slow every request. A lookup goes by the hash's unique index, and
the hash found is compared with the one computed in constant time.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import re
import secrets
from datetime import timedelta
from typing import Any, TypeAlias

from sqlalchemy import Row, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from automatos.errors import InvalidRequestError
from automatos.store import kb_records
from automatos.store.failures import typed
from automatos.store.keys import MAX_KEY_NAME_CHARS, SECRET_PREFIX, ApiKey, check_workspace
from automatos.store.tables import api_keys, workspaces

__all__ = ["KeyRecords"]

PREFIX_CHARS = 12
"""How much of a secret is kept in the clear: ``atm_`` and 8 of its random characters
(48 bits, too few to guess the other 200 from, enough to tell keys apart)."""
TOUCH_EVERY = timedelta(minutes=1)
"""``last_used_at`` is written at most this often: a busy key does not write on every
request."""

_SECRET = re.compile(re.escape(SECRET_PREFIX) + r"[A-Za-z0-9_-]{16,100}")
"""What a secret may look like; anything else is refused before the database is asked."""
_MAX_ID_CHARS = 32

_AnyRow: TypeAlias = Row[*tuple[Any, ...]]


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def _key(row: _AnyRow) -> ApiKey:
    created = kb_records.aware(row.created_at)
    assert created is not None  # NOT NULL
    return ApiKey(
        id=row.id,
        workspace=row.workspace_id,
        name=row.name,
        prefix=row.prefix,
        created_at=created,
        revoked_at=kb_records.aware(row.revoked_at),
        last_used_at=kb_records.aware(row.last_used_at),
    )


_SHOWN = (
    api_keys.c.id,
    api_keys.c.workspace_id,
    api_keys.c.name,
    api_keys.c.prefix,
    api_keys.c.created_at,
    api_keys.c.revoked_at,
    api_keys.c.last_used_at,
)
"""Every column but the hash: what a record is read from."""


class KeyRecords:
    """API keys of every workspace of the store's database."""

    engine: AsyncEngine

    @typed
    async def create_key(self, workspace: str, name: str = "") -> tuple[ApiKey, str]:
        """A new key of ``workspace`` (made if the database does not have it yet), and its
        secret: the only time the secret is given, since only its hash is kept.

        Raises:
            InvalidRequestError: ``workspace`` is not a workspace name, or ``name`` is longer
                than :data:`~automatos.store.keys.MAX_KEY_NAME_CHARS`.
        """
        check_workspace(workspace)
        if len(name) > MAX_KEY_NAME_CHARS:
            raise InvalidRequestError(
                f"the key's name has {len(name):,} characters; the most it may have is "
                f"{MAX_KEY_NAME_CHARS}"
            )
        secret = SECRET_PREFIX + secrets.token_urlsafe(32)
        key = ApiKey(
            id=secrets.token_hex(8),
            workspace=workspace,
            name=name,
            prefix=secret[:PREFIX_CHARS],
            created_at=kb_records.now(),
            revoked_at=None,
            last_used_at=None,
        )
        insert_into = (
            postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert
        )
        async with self.engine.begin() as conn:
            # In the same transaction: the key never names a workspace that is not there, and
            # two creates for a new workspace both find it (the second waits for the first).
            await conn.execute(
                insert_into(workspaces)
                .values(id=workspace, name=workspace, created_at=key.created_at)
                .on_conflict_do_nothing(index_elements=["id"])
            )
            await conn.execute(
                insert(api_keys).values(
                    id=key.id,
                    workspace_id=workspace,
                    name=name,
                    prefix=key.prefix,
                    hash=_digest(secret),
                    created_at=key.created_at,
                )
            )
        return key, secret

    @typed
    async def keys(self, workspace: str | None = None) -> list[ApiKey]:
        """The keys of ``workspace`` (of every workspace if ``None``), oldest first, the
        revoked ones too.

        Raises:
            InvalidRequestError: ``workspace`` is not a workspace name.
        """
        query = select(*_SHOWN).order_by(api_keys.c.created_at, api_keys.c.id)
        if workspace is not None:
            query = query.where(api_keys.c.workspace_id == check_workspace(workspace))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_key(row) for row in rows]

    @typed
    async def revoke_key(self, key_id: str) -> ApiKey | None:
        """Revoke a key: it opens nothing from now on. Revoking it again changes nothing (its
        first revocation's time stays); ``None`` if there is no key ``key_id``."""
        if len(key_id) > _MAX_ID_CHARS:
            return None
        k = api_keys.c
        async with self.engine.begin() as conn:
            await conn.execute(
                update(api_keys)
                .where(k.id == key_id, k.revoked_at.is_(None))
                .values(revoked_at=kb_records.now())
            )
            row = (await conn.execute(select(*_SHOWN).where(k.id == key_id))).one_or_none()
        return None if row is None else _key(row)

    @typed
    async def authenticate(self, secret: str) -> ApiKey | None:
        """The key whose secret is ``secret``, if it is not revoked; ``None`` for anything
        else (an unknown, revoked, malformed or over-long secret), without saying which.

        Marks the key used now, unless it was marked less than
        :data:`TOUCH_EVERY` ago: most requests only read.
        """
        if not isinstance(secret, str) or not _SECRET.fullmatch(secret):
            return None
        digest = _digest(secret)
        k = api_keys.c
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(select(*_SHOWN, k.hash.label("digest")).where(k.hash == digest))
            ).first()
        if row is None or not hmac.compare_digest(row.digest, digest) or row.revoked_at is not None:
            return None
        key = _key(row)
        now = kb_records.now()
        if key.last_used_at is not None and now - key.last_used_at < TOUCH_EVERY:
            return key
        async with self.engine.begin() as conn:
            # Conditional, so that of two requests at once only one writes.
            await conn.execute(
                update(api_keys)
                .where(
                    k.id == key.id,
                    or_(k.last_used_at.is_(None), k.last_used_at < now - TOUCH_EVERY),
                )
                .values(last_used_at=now)
            )
        return dataclasses.replace(key, last_used_at=now)
