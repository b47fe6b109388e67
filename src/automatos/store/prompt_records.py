"""The prompt registry in SQL: each slug's versions, the active one, A/B tests and outcomes.

:class:`PromptRecords` is the half of :class:`~automatos.store.sql.SqlStore` that implements
:class:`~automatos.prompts.base.PromptStore`, scoped to the store's workspace.

Every change to a slug (a new version, an activation, a test started or ended) runs in one
transaction that holds the slug's lock, so that two processes cannot both take the next
version number or both start a test: on SQLite the database's write lock, taken when the
transaction begins (``BEGIN IMMEDIATE``: a deferred transaction that reads first could not
upgrade to writing once another process had written); on PostgreSQL the slug's row of
``prompt_active`` (``SELECT ... FOR UPDATE``). A partial unique index keeps one running test
per slug whatever a bug in that check might let through.

A slug is seeded (version 1, the code's text, active) the first time anything reads or
changes it; seeding ignores rows another process inserted first, so concurrent seeders agree.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeAlias, get_args

from pydantic import ValidationError
from sqlalchemy import (
    CompoundSelect,
    DateTime,
    Executable,
    Float,
    Integer,
    Row,
    String,
    Table,
    Text,
    and_,
    cast,
    func,
    insert,
    null,
    select,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from automatos.errors import PromptError
from automatos.prompts.base import AbOutcome, AbStatus, AbTest, PromptState, PromptVersion
from automatos.prompts.catalog import CATALOG, check_template
from automatos.settings import PromptSettings
from automatos.store.failures import typed
from automatos.store.group import Group
from automatos.store.tables import ab_outcomes, ab_tests, prompt_active, prompt_versions

__all__ = ["MAX_NOTE_CHARS", "MAX_TEMPLATE_CHARS", "PromptRecords"]

MAX_TEMPLATE_CHARS = 100_000
"""The longest template the registry stores: a stage's prompt is sent with every call."""
MAX_NOTE_CHARS = 1_000
"""The longest note on a version."""

_AnyRow: TypeAlias = Row[*tuple[Any, ...]]

_ENDED: frozenset[str] = frozenset(get_args(AbStatus)) - {"running"}
_TEST_FIELDS = {"ab_share": "share", "ab_min_per_arm": "min_per_arm", "ab_looks": "looks"}


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(moment: datetime | None) -> datetime | None:
    """``moment`` in UTC: SQLite gives back the naive UTC time it was given."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def _known(slug: str) -> None:
    if slug not in CATALOG:
        raise PromptError(f"unknown prompt slug {slug!r}; the slugs are {', '.join(CATALOG)}")


def _insert_ignoring(dialect: str, table: Table, keys: Sequence[str]) -> Executable:
    """An insert that leaves the row already there under the unique ``keys`` (executed with
    a list of rows)."""
    insert_into = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert_into(table).on_conflict_do_nothing(index_elements=list(keys))


_MAX_ID = 2**31 - 1
"""Ids are 32-bit integers in both databases: a larger one names no test (and would be an
overflow error of the driver, not the user's mistake it is)."""


def _check_test_id(test_id: int, workspace: str) -> None:
    if not 1 <= test_id <= _MAX_ID:
        raise PromptError(f"no A/B test {test_id} in workspace {workspace!r}")


def _check_test_shape(slug: str, share: float, min_per_arm: int, looks: int) -> None:
    """Refuse a share, minimum or number of looks outside the bounds the settings allow."""
    try:
        PromptSettings(ab_share=share, ab_min_per_arm=min_per_arm, ab_looks=looks)
    except ValidationError as exc:
        problems = "; ".join(
            f"{_TEST_FIELDS.get(str(e['loc'][0]), e['loc'][0])} "
            f"{e['msg'].removeprefix('Input ')} (got {e['input']!r})"
            for e in exc.errors()
        )
        raise PromptError(f"cannot start an A/B test of {slug!r}: {problems}") from None


def _version(row: _AnyRow, *, active: bool) -> PromptVersion:
    return PromptVersion(
        slug=row.slug,
        version=row.version,
        text=row.text,
        note=row.note,
        created_at=_aware(row.created_at),
        active=active,
    )


def _test(row: Mapping[Any, Any]) -> AbTest:
    return AbTest(
        id=row["id"],
        slug=row["slug"],
        control_version=row["control_version"],
        candidate_version=row["candidate_version"],
        share=row["share"],
        min_per_arm=row["min_per_arm"],
        looks=row["looks"],
        status=row["status"],
        decision=row["decision"],
        started_at=_aware(row["started_at"]),
        ended_at=_aware(row["ended_at"]),
    )


class PromptRecords:
    """:class:`~automatos.prompts.base.PromptStore` on the store's engine and workspace."""

    engine: AsyncEngine
    workspace: str
    _prompt_reads: Group[None, Sequence[_AnyRow]]
    """Reads of the registry's state, made with :meth:`_read_prompt_rows`."""

    @typed
    async def prompt_state(self, defaults: Mapping[str, str]) -> PromptState:
        """The active version of each slug of ``defaults``, the running tests and their
        candidates.

        One statement when every slug is seeded (the path of every workflow but a store's
        first); otherwise one transaction that seeds the missing slugs and reads again.
        """
        state = _state(await self._prompt_reads(None), defaults)
        missing = {s: t for s, t in defaults.items() if s not in state.active}
        if not missing:
            return state
        async with self.engine.begin() as conn:
            await self._seed(conn, missing)
            rows = (await conn.execute(self._state_query)).all()
        return _state(rows, defaults)

    async def _read_prompt_rows(self, callers: list[None]) -> list[Sequence[_AnyRow]]:
        """The rows of :attr:`_state_query`, one read for the callers that asked while the
        one before ran (see :class:`~automatos.store.group.Group`)."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(self._state_query)).all()
        return [rows] * len(callers)

    @functools.cached_property
    def _state_query(self) -> CompoundSelect[*tuple[Any, ...]]:
        """The running tests with their candidates, then the active versions with a null
        test: one statement, so one consistent snapshot on both databases (built once per
        store: the workspace does not change)."""
        v, a, t = prompt_versions.c, prompt_active.c, ab_tests.c
        shown = (v.slug, v.version, v.text, v.note, v.created_at)
        tests = (
            select(
                t.id,
                t.control_version,
                t.candidate_version,
                t.share,
                t.min_per_arm,
                t.looks,
                t.status,
                t.decision,
                t.started_at,
                t.ended_at,
                *shown,
            )
            .join_from(
                ab_tests,
                prompt_versions,
                and_(
                    v.workspace_id == t.workspace_id,
                    v.slug == t.slug,
                    v.version == t.candidate_version,
                ),
            )
            .where(t.workspace_id == self.workspace, t.status == "running")
        )
        # The tests' columns come first: a union's result takes its types from there.
        no_test = (Integer, Integer, Integer, Float, Integer, Integer, String, Text)
        actives = (
            select(
                *(cast(null(), kind) for kind in no_test),
                cast(null(), DateTime(timezone=True)),
                cast(null(), DateTime(timezone=True)),
                *shown,
            )
            .join_from(
                prompt_active,
                prompt_versions,
                and_(v.workspace_id == a.workspace_id, v.slug == a.slug, v.version == a.version),
            )
            .where(a.workspace_id == self.workspace)
        )
        return union_all(tests, actives)

    async def _seed(self, conn: AsyncConnection, texts: Mapping[str, str]) -> None:
        """Make ``texts`` version 1 and active of the slugs that have no version yet.

        In the order of the slugs, versions before active rows: two transactions seeding at
        once (on PostgreSQL, the second waits for the first's rows) then wait in one order,
        never for each other.
        """
        if not texts:
            return
        texts = dict(sorted(texts.items()))
        dialect, now = self.engine.dialect.name, _now()
        await conn.execute(
            _insert_ignoring(dialect, prompt_versions, ["workspace_id", "slug", "version"]),
            [
                {
                    "workspace_id": self.workspace,
                    "slug": slug,
                    "version": 1,
                    "text": text,
                    "note": "built-in",
                    "created_at": now,
                }
                for slug, text in texts.items()
            ],
        )
        await conn.execute(
            _insert_ignoring(dialect, prompt_active, ["workspace_id", "slug"]),
            [
                {"workspace_id": self.workspace, "slug": slug, "version": 1, "updated_at": now}
                for slug in texts
            ],
        )

    @contextlib.asynccontextmanager
    async def _writing(self) -> AsyncIterator[AsyncConnection]:
        """A transaction that holds SQLite's write lock from its start."""
        async with self.engine.begin() as conn:
            if self.engine.dialect.name == "sqlite":
                await conn.exec_driver_sql("BEGIN IMMEDIATE")
            yield conn

    async def _lock(self, conn: AsyncConnection, slug: str) -> int:
        """Seed ``slug`` from the catalog if it has no version, lock it until the transaction
        ends, and return its active version."""
        await self._seed(conn, {slug: CATALOG[slug].text})
        a = prompt_active.c
        active = await conn.scalar(
            select(a.version)
            .where(a.workspace_id == self.workspace, a.slug == slug)
            .with_for_update()  # SQLite renders no FOR UPDATE: its write lock is held already
        )
        assert active is not None  # seeded above, in this transaction
        return int(active)

    async def _check_version(self, conn: AsyncConnection, slug: str, version: int) -> None:
        v = prompt_versions.c
        last = await conn.scalar(
            select(func.max(v.version)).where(v.workspace_id == self.workspace, v.slug == slug)
        )
        if not 1 <= version <= (last or 0):
            raise PromptError(f"{slug!r} has no version {version}; its versions are 1 to {last}")

    async def _running(self, conn: AsyncConnection, slug: str) -> AbTest | None:
        t = ab_tests.c
        row = (
            (
                await conn.execute(
                    select(ab_tests).where(
                        t.workspace_id == self.workspace, t.slug == slug, t.status == "running"
                    )
                )
            )
            .mappings()
            .first()
        )
        return _test(row) if row is not None else None

    @typed
    async def prompt_versions(self, slug: str) -> list[PromptVersion]:
        """Every version of ``slug``, oldest first (empty if it was never seeded).

        Raises:
            PromptError: ``slug`` is not one of the catalog's.
        """
        _known(slug)
        v, a = prompt_versions.c, prompt_active.c
        query = (
            select(v.slug, v.version, v.text, v.note, v.created_at, a.version.label("active"))
            .outerjoin(
                prompt_active,
                and_(a.workspace_id == v.workspace_id, a.slug == v.slug, a.version == v.version),
            )
            .where(v.workspace_id == self.workspace, v.slug == slug)
            .order_by(v.version)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_version(row, active=row.active is not None) for row in rows]

    @typed
    async def add_prompt(self, slug: str, text: str, note: str = "") -> PromptVersion:
        """Store ``text`` as the next version of ``slug`` (not active); a slug never seeded
        gets the catalog's text as version 1 first.

        Raises:
            PromptError: an unknown slug, a template its stage cannot fill (see
                :func:`~automatos.prompts.catalog.check_template`), a text over
                :data:`MAX_TEMPLATE_CHARS` or a note over :data:`MAX_NOTE_CHARS`.
        """
        if len(text) > MAX_TEMPLATE_CHARS:
            raise PromptError(
                f"the template for {slug!r} has {len(text):,} characters; the most the "
                f"registry keeps is {MAX_TEMPLATE_CHARS:,}"
            )
        check_template(slug, text)
        if len(note) > MAX_NOTE_CHARS:
            raise PromptError(
                f"the note has {len(note):,} characters; the most a version keeps is "
                f"{MAX_NOTE_CHARS:,}"
            )
        v = prompt_versions.c
        async with self._writing() as conn:
            await self._lock(conn, slug)
            last = await conn.scalar(
                select(func.max(v.version)).where(v.workspace_id == self.workspace, v.slug == slug)
            )
            added = PromptVersion(
                slug=slug, version=int(last or 0) + 1, text=text, note=note, created_at=_now()
            )
            await conn.execute(
                insert(prompt_versions).values(
                    workspace_id=self.workspace, **added.model_dump(exclude={"active"})
                )
            )
        return added

    @typed
    async def activate_prompt(self, slug: str, version: int) -> None:
        """Make ``version`` the active one of ``slug`` (nothing changes if it is already).

        Raises:
            PromptError: an unknown slug, no such version, or a running A/B test of the slug
                (its control arm is the active version: the test ends first).
        """
        _known(slug)
        async with self._writing() as conn:
            active = await self._lock(conn, slug)
            await self._check_version(conn, slug, version)
            if version == active:
                return
            running = await self._running(conn, slug)
            if running is not None:
                raise PromptError(
                    f"{slug!r} has a running A/B test ({running.id}) whose control is its "
                    f"active version {active}: end it first (automatos prompts ab stop "
                    f"{running.id})"
                )
            a = prompt_active.c
            await conn.execute(
                update(prompt_active)
                .where(a.workspace_id == self.workspace, a.slug == slug)
                .values(version=version, updated_at=_now())
            )

    @typed
    async def start_ab(
        self, slug: str, candidate: int, share: float, min_per_arm: int, looks: int
    ) -> AbTest:
        """Start testing version ``candidate`` of ``slug`` against its active version.

        Raises:
            PromptError: an unknown slug or version, the candidate is the active version,
                the slug already has a running test, or a share, minimum or number of
                looks outside the bounds of the ``prompts`` settings.
        """
        _known(slug)
        why = CATALOG[slug].untestable
        if why:
            raise PromptError(
                f"an A/B test of {slug!r} cannot be decided by stage 7's Q ({why}); its "
                "versions can be activated, not A/B tested"
            )
        _check_test_shape(slug, share, min_per_arm, looks)
        async with self._writing() as conn:
            active = await self._lock(conn, slug)
            await self._check_version(conn, slug, candidate)
            if candidate == active:
                raise PromptError(
                    f"version {candidate} of {slug!r} is its active version: an A/B test "
                    "compares another version with it"
                )
            running = await self._running(conn, slug)
            if running is not None:
                raise PromptError(
                    f"{slug!r} already has a running A/B test ({running.id}: version "
                    f"{running.candidate_version} against {running.control_version}); a "
                    f"slug has one at a time (automatos prompts ab stop {running.id})"
                )
            row: dict[str, Any] = {
                "workspace_id": self.workspace,
                "slug": slug,
                "control_version": active,
                "candidate_version": candidate,
                "share": share,
                "min_per_arm": min_per_arm,
                "looks": looks,
                "status": "running",
                "decision": "",
                "started_at": _now(),
                "ended_at": None,
            }
            done = await conn.execute(insert(ab_tests).values(row))
            (test_id,) = done.inserted_primary_key or (None,)
        return _test({**row, "id": test_id})

    @typed
    async def ab_tests(self, slug: str | None = None) -> list[AbTest]:
        """Tests, newest first (of one slug, if given).

        Raises:
            PromptError: ``slug`` is not one of the catalog's.
        """
        t = ab_tests.c
        query = select(ab_tests).where(t.workspace_id == self.workspace).order_by(t.id.desc())
        if slug is not None:
            _known(slug)
            query = query.where(t.slug == slug)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [_test(row) for row in rows]

    @typed
    async def record_outcomes(self, outcomes: Sequence[AbOutcome]) -> None:
        """Keep each outcome once (a second for the same test and workflow is ignored),
        also for a test that has ended meanwhile.

        Raises:
            PromptError: an outcome names a test the workspace does not have.
        """
        if not outcomes:
            return
        ids = {o.test_id for o in outcomes}
        for test_id in ids:
            _check_test_id(test_id, self.workspace)
        t = ab_tests.c
        async with self._writing() as conn:
            # The tests' rows stay locked until the outcomes are written, and the time is
            # taken under the lock: outcomes of one test are ordered as they were committed,
            # so a look already judged never gains an earlier outcome.
            known = set(
                await conn.scalars(
                    select(t.id)
                    .where(t.workspace_id == self.workspace, t.id.in_(ids))
                    .order_by(t.id)
                    .with_for_update()
                )
            )
            now = _now()
            if unknown := ids - known:
                raise PromptError(
                    f"no A/B test {', '.join(map(str, sorted(unknown)))} in workspace "
                    f"{self.workspace!r}: its outcomes were not recorded"
                )
            await conn.execute(
                _insert_ignoring(self.engine.dialect.name, ab_outcomes, ["test_id", "workflow_id"]),
                [o.model_dump() | {"recorded_at": now} for o in outcomes],
            )

    @typed
    async def ab_outcomes(self, test_id: int) -> list[AbOutcome]:
        """The outcomes recorded for a test, oldest first.

        Raises:
            PromptError: the workspace has no test ``test_id``.
        """
        _check_test_id(test_id, self.workspace)
        t, o = ab_tests.c, ab_outcomes.c
        query = (
            select(t.id, o.workflow_id, o.arm, o.quality, o.success, o.tokens, o.latency_s)
            .outerjoin(ab_outcomes, o.test_id == t.id)
            .where(t.id == test_id, t.workspace_id == self.workspace)
            .order_by(o.recorded_at, o.workflow_id)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        if not rows:
            raise PromptError(f"no A/B test {test_id} in workspace {self.workspace!r}")
        return [
            AbOutcome(
                test_id=row.id,
                workflow_id=row.workflow_id,
                arm=row.arm,
                quality=row.quality,
                success=row.success,
                tokens=row.tokens,
                latency_s=row.latency_s,
            )
            for row in rows
            if row.workflow_id is not None  # the outer join's row of a test without any
        ]

    @typed
    async def end_ab(
        self, test_id: int, status: AbStatus, decision: str, *, activate: bool = False
    ) -> AbTest:
        """End a running test with its verdict; with ``activate`` (and only with the status
        ``activated``, which says the candidate is now active) the candidate becomes the
        active version in the same transaction.

        Raises:
            PromptError: no such test, it has already ended, a status that does not end a
                test, or ``activate`` and ``status`` that disagree.
        """
        if status not in _ENDED:
            raise PromptError(
                f"{status!r} does not end an A/B test; it ends as one of "
                f"{', '.join(sorted(_ENDED))}"
            )
        if activate != (status == "activated"):
            raise PromptError(
                "an A/B test ends 'activated' exactly when its candidate is activated "
                f"(status {status!r}, activate={activate})"
            )
        _check_test_id(test_id, self.workspace)
        t = ab_tests.c
        async with self._writing() as conn:
            slug = await conn.scalar(
                select(t.slug).where(t.id == test_id, t.workspace_id == self.workspace)
            )
            if slug is None:
                raise PromptError(f"no A/B test {test_id} in workspace {self.workspace!r}")
            await self._lock(conn, slug)
            # Read again under the slug's lock: another process may have ended it meanwhile.
            row = (await conn.execute(select(ab_tests).where(t.id == test_id))).mappings().one()
            if row["status"] != "running":
                raise PromptError(
                    f"A/B test {test_id} of {slug!r} has already ended ({row['status']}"
                    + (f": {row['decision']}" if row["decision"] else "")
                    + ")"
                )
            ended = dict(row) | {"status": status, "decision": decision, "ended_at": _now()}
            await conn.execute(
                update(ab_tests)
                .where(t.id == test_id)
                .values(status=status, decision=decision, ended_at=ended["ended_at"])
            )
            if activate:
                a = prompt_active.c
                await conn.execute(
                    update(prompt_active)
                    .where(a.workspace_id == self.workspace, a.slug == slug)
                    .values(version=row["candidate_version"], updated_at=ended["ended_at"])
                )
        return _test(ended)


def _state(rows: Sequence[_AnyRow], defaults: Mapping[str, str]) -> PromptState:
    """The registry's state from :meth:`PromptRecords._state_query`'s rows."""
    active: dict[str, PromptVersion] = {}
    tests: list[AbTest] = []
    candidates: dict[int, PromptVersion] = {}
    for row in rows:
        if row.id is None:
            if row.slug in defaults:
                active[row.slug] = _version(row, active=True)
            continue
        tests.append(_test(row._mapping))
        candidates[row.id] = _version(row, active=False)
    tests.sort(key=lambda test: test.id, reverse=True)
    return PromptState(active=active, tests=tests, candidates=candidates)
