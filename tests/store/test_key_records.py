"""API keys in the store (created, listed, revoked, checked) on SQLite and PostgreSQL, and the
0006 migration that makes their table."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.exc import IntegrityError

from automatos.errors import InvalidRequestError
from automatos.store.database import create_engine, database_url
from automatos.store.keys import ApiKey
from automatos.store.sql import SqlStore
from automatos.store.tables import api_keys, workspaces
from tests.store.conftest import StoreTarget, alembic, differences, table_names


async def test_a_created_key_authenticates_and_is_listed(store: SqlStore) -> None:
    before = datetime.now(UTC)
    key, secret = await store.create_key("team-a", "ci")
    assert secret.startswith("atm_") and len(secret) == 4 + 43
    assert key.workspace == "team-a" and key.name == "ci"
    assert key.prefix == secret[:12]
    assert before <= key.created_at <= datetime.now(UTC)
    assert key.revoked_at is None and key.last_used_at is None and not key.revoked
    assert len(key.id) == 16

    found = await store.authenticate(secret)
    assert found is not None
    assert (found.id, found.workspace, found.name, found.prefix) == (
        key.id,
        "team-a",
        "ci",
        key.prefix,
    )
    assert found.last_used_at is not None

    (listed,) = await store.keys("team-a")
    assert listed.id == key.id and listed.last_used_at is not None
    assert listed.created_at == key.created_at
    assert await store.keys() == [listed]


async def test_a_record_never_holds_the_secret_or_its_hash() -> None:
    fields = {f.name for f in dataclasses.fields(ApiKey)}
    assert fields == {
        "id",
        "workspace",
        "name",
        "prefix",
        "created_at",
        "revoked_at",
        "last_used_at",
    }


async def test_the_secret_is_never_stored(store: SqlStore) -> None:
    secrets = [(await store.create_key(w, "k"))[1] for w in ("a", "b", "a")]
    async with store.engine.connect() as conn:
        rows = (await conn.execute(select(api_keys))).mappings().all()
    assert len(rows) == 3
    stored = [str(value) for row in rows for value in row.values()]
    for secret in secrets:
        # Neither the secret, nor what follows the prefix shown in lists, is anywhere.
        assert not any(secret in value or secret[12:] in value for value in stored)
    assert sorted(row["hash"] for row in rows) == sorted(
        hashlib.sha256(s.encode()).hexdigest() for s in secrets
    )
    assert {row["prefix"] for row in rows} == {s[:12] for s in secrets}


async def test_a_revoked_key_is_refused(store: SqlStore) -> None:
    key, secret = await store.create_key("w", "old")
    kept, kept_secret = await store.create_key("w", "kept")
    revoked = await store.revoke_key(key.id)
    assert revoked is not None and revoked.id == key.id and revoked.revoked
    assert await store.authenticate(secret) is None
    assert await store.authenticate(kept_secret) is not None  # the other key still opens
    # Revoking again changes nothing: the first revocation's time stays.
    again = await store.revoke_key(key.id)
    assert again is not None and again.revoked_at == revoked.revoked_at
    listed = {k.id: k for k in await store.keys("w")}
    assert listed[key.id].revoked and not listed[kept.id].revoked


async def test_revoking_an_unknown_key_gives_none(store: SqlStore) -> None:
    await store.create_key("w")
    assert await store.revoke_key("0123456789abcdef") is None
    assert await store.revoke_key("x" * 10_000) is None
    assert await store.revoke_key("") is None


@pytest.mark.parametrize(
    "wrong",
    [
        "",
        "atm_",
        "atm_" + "A" * 43,  # well formed, but no key's
        "ATM_" + "A" * 43,
        "atm_" + "A" * 10_000,  # over long
        "atm_" + "é" * 43,  # not ASCII
        "atm_\ud800" + "A" * 42,  # not even encodable
        "Bearer atm_" + "A" * 43,
    ],
)
async def test_a_wrong_secret_is_refused(store: SqlStore, wrong: str) -> None:
    await store.create_key("w")
    assert await store.authenticate(wrong) is None


async def test_a_secret_one_character_off_is_refused(store: SqlStore) -> None:
    _, secret = await store.create_key("w")
    last = "B" if secret[-1] != "B" else "C"
    assert await store.authenticate(secret[:-1] + last) is None
    assert await store.authenticate(secret[:-1]) is None
    assert await store.authenticate(secret + "A") is None
    assert await store.authenticate(secret[:12]) is None
    assert await store.authenticate(secret) is not None


async def test_each_workspace_has_its_own_keys(store: SqlStore) -> None:
    a, secret_a = await store.create_key("alpha", "one")
    b, secret_b = await store.create_key("beta.team_2", "two")
    assert [k.id for k in await store.keys("alpha")] == [a.id]
    assert [k.id for k in await store.keys("beta.team_2")] == [b.id]
    assert {k.id for k in await store.keys()} == {a.id, b.id}
    assert await store.keys("gamma") == []
    found_a, found_b = await store.authenticate(secret_a), await store.authenticate(secret_b)
    assert found_a is not None and found_a.workspace == "alpha"
    assert found_b is not None and found_b.workspace == "beta.team_2"
    # Each workspace now exists, next to the store's own.
    async with store.engine.connect() as conn:
        names = set(await conn.scalars(select(workspaces.c.id)))
    assert names == {"default", "alpha", "beta.team_2"}


@pytest.mark.parametrize("workspace", ["", "a b", "a/b", "x" * 65, "é", "a\nb"])
async def test_a_bad_workspace_name_is_refused(store: SqlStore, workspace: str) -> None:
    with pytest.raises(InvalidRequestError, match="is not a workspace name"):
        await store.create_key(workspace)
    with pytest.raises(InvalidRequestError, match="is not a workspace name"):
        await store.keys(workspace)
    assert await store.keys() == []


async def test_a_name_over_200_characters_is_refused(store: SqlStore) -> None:
    await store.create_key("w", "x" * 200)
    with pytest.raises(InvalidRequestError, match="the most it may have is 200"):
        await store.create_key("w", "x" * 201)
    assert len(await store.keys()) == 1


async def test_last_used_is_written_at_most_once_a_minute(store: SqlStore) -> None:
    key, secret = await store.create_key("w")
    first = await store.authenticate(secret)
    second = await store.authenticate(secret)
    assert first is not None and second is not None
    assert first.last_used_at is not None
    (listed,) = await store.keys()
    assert listed.last_used_at == second.last_used_at
    assert abs(listed.last_used_at - first.last_used_at) < timedelta(milliseconds=1)

    long_ago = datetime.now(UTC) - timedelta(minutes=2)
    async with store.engine.begin() as conn:
        await conn.execute(
            update(api_keys).where(api_keys.c.id == key.id).values(last_used_at=long_ago)
        )
    third = await store.authenticate(secret)
    assert third is not None and third.last_used_at is not None
    assert third.last_used_at > long_ago + timedelta(minutes=1)
    (listed,) = await store.keys()
    assert listed.last_used_at is not None
    assert abs(listed.last_used_at - third.last_used_at) < timedelta(milliseconds=1)


async def test_concurrent_creates_in_a_new_workspace_all_succeed(
    store_target: StoreTarget,
) -> None:
    """Two stores (two engines, as two server processes) make 20 keys at once for a
    workspace neither has seen: each key is made once, and the workspace once."""
    first, second = await store_target.open(), await store_target.open()
    try:
        made = await asyncio.gather(
            *(s.create_key("fresh", f"k{i}") for i in range(10) for s in (first, second))
        )
        assert len({key.id for key, _ in made}) == 20
        assert len({secret for _, secret in made}) == 20
        assert {k.id for k in await first.keys("fresh")} == {key.id for key, _ in made}
        found = await asyncio.gather(*(second.authenticate(secret) for _, secret in made))
        assert [k.id if k else None for k in found] == [key.id for key, _ in made]
    finally:
        await first.aclose()
        await second.aclose()


async def test_the_0006_migration_makes_the_table_of_the_metadata(
    store_target: StoreTarget,
) -> None:
    engine = create_engine(database_url(store_target.settings), **store_target.options)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(alembic, "upgrade", "0005")
            assert "api_keys" not in await conn.run_sync(table_names)
            await conn.run_sync(alembic, "upgrade", "0006")
            assert "api_keys" in await conn.run_sync(table_names)
            assert await conn.run_sync(differences, {"api_keys"}) == []
            await conn.run_sync(alembic, "downgrade", "0005")
            assert "api_keys" not in await conn.run_sync(table_names)
            assert "kb_documents" in await conn.run_sync(table_names)
    finally:
        await engine.dispose()
    store = await store_target.open()  # upgrades again
    try:
        _, secret = await store.create_key("w")
        assert await store.authenticate(secret) is not None
    finally:
        await store.aclose()


async def test_the_hash_is_unique(store: SqlStore) -> None:
    """Two rows cannot share a hash, whatever a bug upstream might try."""
    key, _ = await store.create_key("w")
    async with store.engine.connect() as conn:
        digest = await conn.scalar(select(api_keys.c.hash).where(api_keys.c.id == key.id))
    with pytest.raises(IntegrityError):
        async with store.engine.begin() as conn:
            await conn.execute(
                api_keys.insert().values(
                    id="other",
                    workspace_id="w",
                    name="",
                    prefix="atm_x",
                    hash=digest,
                    created_at=datetime.now(UTC),
                )
            )
    async with store.engine.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM api_keys")) == 1
