"""The Redis keys of one queue, shared by its orchestrators and workers."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["GROUP", "RECONNECT_S", "QueueKeys", "is_connection_error", "safe_url", "text"]

GROUP = "workers"
"""The consumer group every worker of a queue reads jobs in."""

RECONNECT_S = (0.05, 2.0)
"""First and longest wait between attempts to reach a Redis that went away."""


@dataclass(frozen=True, slots=True)
class QueueKeys:
    """Where a queue named ``prefix`` keeps its jobs, answers and cancellations."""

    prefix: str

    @property
    def jobs(self) -> str:
        """The stream of jobs (one entry per attempt, field ``j``: the job's JSON)."""
        return f"{self.prefix}:jobs"

    @property
    def cancel(self) -> str:
        """The channel on which orchestrators name jobs they no longer want."""
        return f"{self.prefix}:cancel"

    @property
    def workers(self) -> str:
        """A sorted set of the queue's workers, each scored with when it was last alive."""
        return f"{self.prefix}:workers"

    def reply(self, runner_id: str) -> str:
        """The list one orchestrator's answers are pushed to."""
        return f"{self.prefix}:answers:{runner_id}"

    def shared(self, workflow_id: str) -> str:
        """The hash of one workflow's shared findings."""
        return f"{self.prefix}:shared:{workflow_id}"


def is_connection_error(exc: BaseException) -> bool:
    """Whether ``exc`` is Redis being out of reach (down, restarting, too slow), as opposed to
    Redis refusing a command."""
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    return isinstance(exc, RedisConnectionError | RedisTimeoutError | OSError | TimeoutError)


def safe_url(url: str) -> str:
    """The URL without its password."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    credentials, _, host = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user + ':***@' if user else '***@'}{host}"


def text(value: bytes | str) -> str:
    """A Redis reply (bytes) as text."""
    return value.decode() if isinstance(value, bytes) else value
