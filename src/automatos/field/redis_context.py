"""The shared context in Redis: one hash per workflow, so that every process sees its findings.

With the queued runner a workflow's agents run on other processes, and a workflow may be
resumed by another orchestrator: its findings live in Redis, under one hash per workflow
(its key is the queue's, :meth:`~automatos.runners.keys.QueueKeys.shared`)::

    {prefix}:shared:{workflow_id}
        count  -> the last id handed out (the number of findings)
        1      -> {"id":1,"kind":"fact","text":...}   (a Finding's JSON)
        2      -> ...

``add`` is one Lua script (:data:`ADD_SCRIPT`): it takes the next id with ``HINCRBY`` on
``count``, stores the finding under it and renews the hash's TTL, atomically, so that adds
from any number of processes get dense ids from 1 with no gap and no duplicate, and a reader
never sees a ``count`` ahead of its entries. ``findings(after=n)`` reads ``count`` and then
only the entries ``n+1..count`` (``HMGET``), never the whole hash.

Opening a context writes nothing: a :class:`RedisSharedContext` built on the id of a
workflow that already has findings attaches to its hash and reads them; its next ``add``
continues the numbering. A resumed workflow does not trust what the hash holds (findings of
subtasks whose results were lost, which run again): it resets the hash to the findings its
record kept (:meth:`RedisSharedContext.reset`, one Lua script: :data:`RESET_SCRIPT`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from typing import TypeVar, cast

import redis.asyncio as aioredis
from pydantic import ValidationError
from redis.exceptions import RedisError, ResponseError

from automatos.domain.collaboration import Finding
from automatos.errors import CorruptFindingError, SharedContextError, describe_exception
from automatos.field.base import FindingKind
from automatos.runners.keys import QueueKeys

__all__ = [
    "ADD_SCRIPT",
    "COUNT_FIELD",
    "RESET_SCRIPT",
    "CorruptFindingError",
    "RedisSharedContext",
    "SharedContextError",
]

COUNT_FIELD = "count"
"""The field of the hash that holds the last id handed out (ids are the other fields)."""

READ_BATCH = 500
"""Entries read per ``HMGET``: a long catch-up is several short commands, each bounded."""

ADD_SCRIPT = """
local id = redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
redis.call('HSET', KEYS[1], tostring(id), '{"id":' .. id .. ',' .. string.sub(ARGV[2], 2))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return id
"""
"""Takes the next id, stores the finding under it and renews the TTL, in one step.

KEYS[1] is the hash; ARGV: the count field, the finding's JSON without its id (an object,
so the id is spliced in after its ``{``), the TTL in milliseconds."""

RESET_SCRIPT = """
redis.call('DEL', KEYS[1])
if ARGV[2] ~= '0' then
  for i = 4, #ARGV, 2 do
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  end
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return tonumber(ARGV[2])
"""
"""Replaces the hash by the findings given, in one step: a reader sees the old findings or
the new ones, never a mix.

KEYS[1] is the hash; ARGV: the count field, the count, the TTL in milliseconds, then each
finding's id and JSON. With none, the hash is only deleted."""

_T = TypeVar("_T")


class RedisSharedContext:
    """A :class:`~automatos.field.base.SharedContext` in a Redis hash (see the module).

    Every Redis command is bounded by ``io_timeout_s`` and its failures are raised as
    :class:`SharedContextError`. The client is the caller's (the runner's): :meth:`aclose`
    refuses further findings but closes no connection, and deletes nothing (what was shared
    stays readable until the TTL, counted from the last write, runs out).

    Args:
        redis: a client of the Redis that holds the context (responses decoded or not).
        workflow_id: the workflow whose findings these are.
        prefix: the prefix of the keys (the queue's, ``runner.queue``).
        ttl_s: how long the hash lives after its last write (``runner.shared_ttl_s``).
        io_timeout_s: longest one Redis command may take (``runner.redis_timeout_s``).
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        workflow_id: str,
        *,
        prefix: str,
        ttl_s: float,
        io_timeout_s: float,
    ) -> None:
        if not workflow_id or not prefix:
            raise ValueError("a shared context in Redis needs a workflow id and a key prefix")
        if ttl_s <= 0 or io_timeout_s <= 0:
            raise ValueError(f"ttl_s ({ttl_s}) and io_timeout_s ({io_timeout_s}) must be > 0")
        self._redis = redis
        self.key = QueueKeys(prefix).shared(workflow_id)
        """The hash that holds the findings."""
        self._ttl_ms = max(1, round(ttl_s * 1000))
        self._io_timeout_s = io_timeout_s
        self._add_script = redis.register_script(ADD_SCRIPT)
        self._reset_script = redis.register_script(RESET_SCRIPT)
        self._closed = False

    async def add(
        self,
        kind: FindingKind,
        text: str,
        subtask_id: str,
        agent: str,
        contradicts: tuple[int, ...] = (),
    ) -> Finding:
        """Share one finding; it gets the next id of the hash (from 1), and the hash's TTL
        starts again.

        Raises:
            RuntimeError: the context was closed (a bug of its caller, as in-process).
            SharedContextError: Redis failed or did not answer in time. The finding may
                have been stored all the same when the answer was lost: a later
                :meth:`findings` shows it.
        """
        if self._closed:
            raise RuntimeError(
                f"the shared context is closed: the finding of subtask {subtask_id!r} by "
                f"{agent!r} came after the workflow's execution ended"
            )
        draft = Finding(
            id=0, kind=kind, text=text, subtask_id=subtask_id, agent=agent, contradicts=contradicts
        )
        body = draft.model_dump_json(exclude={"id"})
        new_id = await self._call(
            "add a finding",
            self._add_script(keys=[self.key], args=[COUNT_FIELD, body, self._ttl_ms]),
        )
        return draft.model_copy(update={"id": int(new_id)})

    async def reset(self, findings: Sequence[Finding]) -> None:
        """Make the context hold exactly ``findings`` (numbered 1, 2, … in order, as they
        keep their ids), whatever it held: atomically, in one Lua script. The next ``add``
        goes on from the last of them.

        Raises:
            ValueError: the findings are not numbered 1, 2, … in order.
            RuntimeError: the context was closed.
            SharedContextError: Redis failed or did not answer in time (the hash is as it
                was, or already reset when only the answer was lost).
        """
        if [f.id for f in findings] != list(range(1, len(findings) + 1)):
            raise ValueError(
                "the findings a shared context is reset to must be numbered 1, 2, … in order, "
                f"not {[f.id for f in findings]}"
            )
        if self._closed:
            raise RuntimeError("the shared context is closed: it cannot be reset")
        entries: list[str | int] = []
        for finding in findings:
            entries += [finding.id, finding.model_dump_json()]
        await self._call(
            "reset the findings",
            self._reset_script(
                keys=[self.key], args=[COUNT_FIELD, len(findings), self._ttl_ms, *entries]
            ),
        )

    async def findings(self, after: int = 0) -> list[Finding]:
        """The findings whose id is over ``after``, oldest first: one ``HGET`` of the count,
        then ``HMGET`` of the ids after ``after`` only.

        Raises:
            SharedContextError: Redis failed or did not answer in time.
            CorruptFindingError: an entry is not the finding its id says.
        """
        raw_count = await self._call(
            "read the count",
            cast("Awaitable[bytes | str | None]", self._redis.hget(self.key, COUNT_FIELD)),
        )
        count = self._count(raw_count)
        found: list[Finding] = []
        for start in range(max(after, 0) + 1, count + 1, READ_BATCH):
            ids = list(range(start, min(start + READ_BATCH, count + 1)))
            values = await self._call(
                "read findings",
                cast(
                    "Awaitable[list[bytes | str | None]]",
                    self._redis.hmget(self.key, [str(i) for i in ids]),
                ),
            )
            found.extend(self._decode(ids, values))
        return found

    async def aclose(self) -> None:
        """Refuse further findings; idempotent. Nothing is deleted, no connection closed."""
        self._closed = True

    @property
    def closed(self) -> bool:
        """Whether :meth:`aclose` was called."""
        return self._closed

    async def _call(self, doing: str, command: Awaitable[_T]) -> _T:
        """``command``, bounded by the I/O timeout, its failures as :class:`SharedContextError`."""
        try:
            async with asyncio.timeout(self._io_timeout_s):
                return await command
        except TimeoutError:
            raise SharedContextError(
                f"could not {doing} in the shared context {self.key!r}: Redis did not answer "
                f"within {self._io_timeout_s:g} s",
                key=self.key,
            ) from None
        except ResponseError as exc:  # Redis refused the command: the key holds something else
            raise SharedContextError(
                f"could not {doing} in the shared context {self.key!r}: Redis refused it: "
                f"{describe_exception(exc)}",
                key=self.key,
                transient=False,
            ) from exc
        except (RedisError, OSError) as exc:
            raise SharedContextError(
                f"could not {doing} in the shared context {self.key!r}: {describe_exception(exc)}",
                key=self.key,
            ) from exc

    def _count(self, raw: bytes | str | None) -> int:
        if raw is None:
            return 0  # no finding yet (or the hash expired)
        try:
            count = int(raw)
        except ValueError:
            count = -1
        if count < 0:
            raise SharedContextError(
                f"the shared context {self.key!r} holds {raw!r} as its count of findings, not "
                "a number",
                key=self.key,
                transient=False,
            )
        return count

    def _decode(self, ids: Sequence[int], values: Sequence[bytes | str | None]) -> list[Finding]:
        if len(values) != len(ids):
            raise SharedContextError(
                f"Redis answered {len(values)} entries for {len(ids)} ids of the shared "
                f"context {self.key!r}",
                key=self.key,
            )
        found: list[Finding] = []
        for finding_id, value in zip(ids, values, strict=True):
            if value is None:
                raise CorruptFindingError(
                    self.key, finding_id, "its entry is missing (the count is ahead of it)"
                )
            try:
                finding = Finding.model_validate_json(value)
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(part) for part in first["loc"]) or "the entry"
                raise CorruptFindingError(
                    self.key, finding_id, f"not the JSON of a finding: {where}: {first['msg']}"
                ) from exc
            if finding.id != finding_id:
                raise CorruptFindingError(
                    self.key, finding_id, f"the entry is numbered {finding.id}"
                )
            found.append(finding)
        return found
