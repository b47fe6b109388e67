"""A body over the cap is refused before it is read; a key past its rate waits."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from automatos.server.limits import RateLimiter
from automatos.settings import ServerSettings
from tests.server.conftest import serving


async def test_a_large_body_is_refused_with_413(tmp_path: Path) -> None:
    limits = ServerSettings(max_body_bytes=1_000, burst=100, rate_per_s=100)
    async with (
        serving(tmp_path, anonymous=True, server=limits) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as client,
    ):
        big = {"request": "Describe SQLite " + "x" * 2_000}
        answer = await client.post("/v1/workflows", json=big)
        assert answer.status_code == 413 and "server.max_body_bytes" in answer.json()["detail"]

        # No Content-Length: the body is counted as it comes, and refused once past the cap
        # (a raw client, since a real one may still be sending when the answer comes).
        host, port = url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(
            b"POST /v1/workflows HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        chunk = b'{"request": "' + b"y" * 1_500
        writer.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 10)
        writer.close()
        assert b" 413 " in status_line
        small = await client.post("/v1/workflows", json={"request": "Describe SQLite"})
        assert small.status_code == 202


async def test_a_key_past_its_rate_gets_429_with_retry_after(tmp_path: Path) -> None:
    limits = ServerSettings(burst=3, rate_per_s=0.5)
    async with (
        serving(tmp_path, anonymous=True, server=limits) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as client,
    ):
        codes = [(await client.get("/v1/workflows")).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        refused = await client.get("/v1/workflows")
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
        assert (await client.get("/healthz")).status_code == 200  # not rate limited


def test_the_bucket_refills_at_its_rate() -> None:
    limiter = RateLimiter(rate=1_000.0, burst=2)
    assert limiter.wait_s("a") == 0 and limiter.wait_s("a") == 0
    assert limiter.wait_s("a") > 0 and limiter.wait_s("b") == 0  # keys are apart
    assert RateLimiter.retry_after(0.01) == "1" and RateLimiter.retry_after(2.2) == "3"
