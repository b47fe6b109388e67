"""Real worker processes and a real Redis for the queued runner's tests."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from automatos import Settings
from automatos.settings import (
    ExecutionSettings,
    PlanLimits,
    QualitySettings,
    RunnerSettings,
    StoreSettings,
)

REDIS_URL = "redis://127.0.0.1:6379/0"
ROOT = Path(__file__).resolve().parents[2]
AUTOMATOS = str(Path(sys.executable).with_name("automatos"))


def redis_up(url: str = REDIS_URL) -> bool:
    """Whether a Redis answers at ``url``."""
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=1)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def queued_settings(
    queue: str,
    n: int = 50,
    redis_url: str = REDIS_URL,
    *,
    max_attempts: int = 3,
    redis_timeout_s: float = 2.0,
) -> Settings:
    """Settings of an orchestrator that sends its tasks to ``queue``; scoring off."""
    return Settings(
        plan=PlanLimits(max_subtasks=n, max_fanout=n, max_depth=n),
        execution=ExecutionSettings(
            max_concurrency=n, retry_backoff_s=0.01, subtask_timeout_s=60, max_attempts=max_attempts
        ),
        store=StoreSettings(enabled=False),
        quality=QualitySettings(enabled=False),
        runner=RunnerSettings(
            kind="queued",
            queue=queue,
            redis_url=redis_url,
            claim_after_s=1.0,
            redis_timeout_s=redis_timeout_s,
        ),
    )


@dataclass
class Workers:
    """Worker processes of one queue, started and stopped by a test."""

    queue: str
    tmp: Path
    redis_url: str = REDIS_URL
    env: dict[str, str] = field(default_factory=dict)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)

    @property
    def calls(self) -> Path:
        """The file every step call of these workers is logged to (one subtask id a line)."""
        return self.tmp / "calls.txt"

    @property
    def spans(self) -> Path:
        return self.tmp / "spans.txt"

    def start(
        self, concurrency: int = 100, grace: float = 30.0, **env: str
    ) -> subprocess.Popen[bytes]:
        """One more worker; it is ready when it has said so."""
        log = self.tmp / f"worker-{len(self.logs)}.log"
        environ = {k: v for k, v in os.environ.items() if not k.startswith("AUTOMATOS_")}
        environ.update(
            {
                "AUTOMATOS_RUNNER__CLAIM_AFTER_S": "1",
                "AUTOMATOS_RUNNER__REDIS_TIMEOUT_S": "2",
                "WORKER_TEST_CALLS": str(self.calls),
                "WORKER_TEST_SPANS": str(self.spans),
                "PYTHONPATH": str(ROOT),
                **self.env,
                **env,
            }
        )
        command = [AUTOMATOS, "worker", "--queue", self.queue, "--redis-url", self.redis_url]
        command += ["--concurrency", str(concurrency), "--grace", str(grace)]
        command += ["--provider", "tests.runners.worker_models:scripted"]
        with log.open("wb") as out:
            process = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, env=environ, cwd=ROOT
            )
        self.processes.append(process)
        self.logs.append(log)
        deadline = time.monotonic() + 60
        while b"job(s) at once" not in log.read_bytes():
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the worker did not start:\n{log.read_text()}")
            time.sleep(0.05)
        return process

    def log(self, index: int) -> str:
        return self.logs[index].read_text()

    def called(self) -> list[str]:
        """Subtask ids of every step call so far, in order."""
        return self.calls.read_text().split() if self.calls.exists() else []

    def most_at_once(self) -> int:
        """The most step calls that ran at the same moment."""
        points: list[tuple[float, int]] = []
        for line in self.spans.read_text().splitlines():
            _, start, end = line.split()
            points += [(float(start), 1), (float(end), -1)]
        running = most = 0
        for _, step in sorted(points, key=lambda p: (p[0], p[1])):
            running += step
            most = max(most, running)
        return most

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def delete_queue(queue: str, url: str = REDIS_URL) -> None:
    """Remove every key of ``queue``."""
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=1)
    try:
        keys = list(client.scan_iter(match=f"{queue}:*", count=1000))
        if keys:
            client.delete(*keys)
    except redis.RedisError:
        pass
    finally:
        client.close()


@pytest.fixture
def queue() -> Iterator[str]:
    """A queue name of this test's own, its keys deleted afterwards."""
    if not redis_up():
        pytest.fail(f"Redis is not reachable at {REDIS_URL} (.ci/run starts it)")
    name = f"test-{uuid.uuid4().hex[:10]}"
    yield name
    delete_queue(name)


@pytest.fixture
def workers(queue: str, tmp_path: Path) -> Iterator[Workers]:
    found = Workers(queue, tmp_path)
    try:
        yield found
    finally:
        found.stop_all()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class OwnRedis:
    """A redis-server of the test's own (it may be restarted), keeping nothing on disk."""

    port: int
    directory: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary is not None
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not redis_up(self.url):
            assert time.monotonic() < deadline, "the test's redis-server did not start"
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (Debian's redis-server package)")
    server = OwnRedis(free_port(), tmp_path)
    server.start()
    try:
        yield server
    finally:
        with contextlib.suppress(Exception):
            server.stop()
