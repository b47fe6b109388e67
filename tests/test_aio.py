"""Running the engine's coroutines from synchronous code: the program ends, whatever a
plugin's task left behind does."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import time

from automatos import aio


def test_the_result_comes_back_and_well_behaved_tasks_left_are_cancelled() -> None:
    cancelled: list[str] = []

    async def main() -> int:
        async def background() -> None:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                cancelled.append("background")
                raise

        asyncio.get_running_loop().create_task(background())
        await asyncio.sleep(0)
        return 42

    assert aio.run(main()) == 42
    assert cancelled == ["background"]


def test_a_task_that_ignores_its_cancellation_does_not_keep_the_program_from_ending() -> None:
    script = textwrap.dedent(
        """
        import asyncio
        from automatos import aio
        from automatos.abandoned import abandon

        async def stubborn():
            while True:
                try:
                    await asyncio.sleep(3600)
                except asyncio.CancelledError:
                    pass  # a careless plugin's retry loop

        async def main():
            abandon(asyncio.get_running_loop().create_task(stubborn(), name="stubborn"))
            await asyncio.sleep(0)
            return "the result"

        print(aio.run(main()), flush=True)
        """
    )
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "the result"
    assert time.monotonic() - started < aio.EXIT_GRACE_S + 10
    assert "1 task(s) did not end within 2 s of being cancelled (stubborn)" in done.stderr
    assert "Task was destroyed but it is pending" not in done.stderr
