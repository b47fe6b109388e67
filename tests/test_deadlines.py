import asyncio

import pytest

from automatos.deadlines import DeadlineQueue


async def test_a_late_task_is_cancelled_and_told_so() -> None:
    queue = DeadlineQueue(0.05)

    async def slow() -> bool:
        queue.arm("slow")
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            return queue.disarm("slow")
        return False

    assert await asyncio.wait_for(slow(), 2) is True


async def test_a_prompt_task_is_left_alone() -> None:
    queue = DeadlineQueue(1.0)

    async def quick(i: int) -> str:
        queue.arm(i)
        await asyncio.sleep(0.001)
        assert queue.disarm(i) is False
        return "done"

    assert await asyncio.gather(*(quick(i) for i in range(50))) == ["done"] * 50


async def test_deadlines_fire_in_order_for_many_tasks() -> None:
    queue = DeadlineQueue(0.05)
    expired: list[int] = []

    async def waits(i: int, seconds: float) -> None:
        queue.arm(i)
        try:
            await asyncio.sleep(seconds)
        except asyncio.CancelledError:
            if queue.disarm(i):
                expired.append(i)
                return
            raise
        queue.disarm(i)

    await asyncio.gather(*(waits(i, 0.5 if i % 2 else 0.0) for i in range(10)))
    assert sorted(expired) == [1, 3, 5, 7, 9]


async def test_an_outside_cancel_is_not_taken_for_a_timeout() -> None:
    queue = DeadlineQueue(10)
    seen: list[bool] = []

    async def victim() -> None:
        queue.arm("v")
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            seen.append(queue.disarm("v"))
            raise

    task = asyncio.create_task(victim())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert seen == [False]
