"""Tools that misbehave the ways plugins do: a sync call that never returns, ``sys.exit``
(argparse in a tool), a ``KeyboardInterrupt`` of its own, a plugin ``Tool`` that returns a
flood. Each is one failed (or cut) tool call; the engine, its threads and its process go on."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Mapping
from typing import Any

from automatos.domain.agent import AgentSpec
from automatos.domain.plan import SubtaskSpec
from automatos.graph import build_plan
from automatos.llm.base import Message, ToolSpec
from automatos.phases.execute.tool_loop import Toolbox, run_tool_loop
from automatos.runners.base import AgentTask, ToolLimits
from automatos.testing import ScriptedLLM, tool_call
from automatos.tools import FunctionTool, Redactor, ToolRegistry
from automatos.tools.function import MAX_RESULT_CHARS

RELEASE = threading.Event()


def stuck(seconds: float) -> str:
    """Waits far longer than any timeout.

    Args:
        seconds: how long.
    """
    RELEASE.wait(seconds)
    return "late"


def exits(code: int) -> str:
    """Calls sys.exit, as a command-line parser inside a tool does.

    Args:
        code: the exit status.
    """
    sys.exit(code)


async def interrupts(text: str) -> str:
    """Raises KeyboardInterrupt of its own.

    Args:
        text: anything.
    """
    raise KeyboardInterrupt(text)


class Flood:
    """A plugin Tool that ignores any bound on what it returns."""

    spec = ToolSpec("flood", "Returns a great deal.", {"type": "object", "properties": {}})

    async def call(self, arguments: Mapping[str, Any]) -> str:
        return "x" * (MAX_RESULT_CHARS * 50)


class Custom(BaseException):
    """A BaseException of a library's own (pytest's Exit, gevent's GreenletExit...)."""


async def raises_its_own(text: str) -> str:
    """Raises a BaseException that is neither Exception nor a program's exit.

    Args:
        text: anything.
    """
    raise Custom(text)


STUBBORN_ENDED = threading.Event()  # set on the loop's thread; the tests' loops differ


async def stubborn(seconds: float) -> str:
    """Ignores its cancellation, as a careless plugin's retry loop does.

    Args:
        seconds: how long it goes on.
    """
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        try:
            await asyncio.sleep(until - time.monotonic())
        except asyncio.CancelledError:
            continue
    STUBBORN_ENDED.set()
    return "late"


class ExitingPlugin:
    """A plugin Tool (not a FunctionTool: nothing of the engine's around it) that exits."""

    spec = ToolSpec("exiting", "Exits.", {"type": "object", "properties": {}})

    async def call(self, arguments: Mapping[str, Any]) -> str:
        raise SystemExit(3)


TOOLS = ToolRegistry(
    [FunctionTool.from_function(f) for f in (stuck, exits, interrupts, raises_its_own, stubborn)]
    + [Flood(), ExitingPlugin()]
)


def _task(tool: str) -> AgentTask:
    plan = build_plan([SubtaskSpec(id="a", description="work")])
    agent = AgentSpec(name="w", model="m", tools=(tool,))
    messages = (Message("system", "s"), Message("user", "Your step (a): work"))
    return AgentTask("wf", plan.by_id["a"], 1, agent, messages, 30.0)


def _box(tool: str, timeout_s: float = 5.0) -> Toolbox:
    return Toolbox(TOOLS.allowed([tool]), ToolLimits(2, timeout_s), Redactor())


async def test_hung_sync_tools_do_not_take_the_engines_threads() -> None:
    loop = asyncio.get_running_loop()
    for _ in range(12):  # more than the default executor's threads on a small machine
        llm = ScriptedLLM(replies=[tool_call("stuck", {"seconds": 60}), "Gave up."])
        done = await run_tool_loop(llm, _task("stuck"), _box("stuck", timeout_s=0.05))
        assert [u.outcome for u in done.tool_uses] == ["timeout"]
    started = time.perf_counter()
    assert await asyncio.wait_for(loop.run_in_executor(None, lambda: 42), 2) == 42
    assert time.perf_counter() - started < 1  # the loop's own pool is free
    RELEASE.set()


def test_a_hung_sync_tool_does_not_keep_the_process_from_exiting() -> None:
    script = textwrap.dedent(
        """
        import asyncio, threading
        from automatos.tools import FunctionTool

        def forever(x: int) -> int:
            '''Never returns.

            Args:
                x: anything.
            '''
            threading.Event().wait()
            return x

        async def main():
            tool = FunctionTool.from_function(forever)
            try:
                async with asyncio.timeout(0.1):
                    await tool.call({"x": 1})
            except TimeoutError:
                print("timed out")

        asyncio.run(main())
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "timed out"


async def test_sys_exit_and_keyboard_interrupt_in_a_tool_fail_the_call_only() -> None:
    cases = (
        ("exits", {"code": 2}),
        ("interrupts", {"text": "stop"}),
        ("raises_its_own", {"text": "mine"}),
        ("exiting", {}),
    )
    for tool, args in cases:
        llm = ScriptedLLM(replies=[tool_call(tool, args), "It failed; done."])
        done = await run_tool_loop(llm, _task(tool), _box(tool))
        (use,) = done.tool_uses
        assert use.outcome == "failed", use
        assert done.text == "It failed; done."


async def test_a_plugin_tools_flood_is_cut_before_the_model_sees_it() -> None:
    llm = ScriptedLLM(replies=[tool_call("flood", {}), "Read it."])
    done = await run_tool_loop(llm, _task("flood"), _box("flood"))
    assert done.tool_uses[0].outcome == "ok"
    (result,) = [m for m in llm.calls[1].messages if m.role == "tool"]
    assert len(result.content) < MAX_RESULT_CHARS + 200
    assert "truncated" in result.content


async def test_a_tool_that_ignores_its_cancellation_is_given_up_on_at_its_timeout() -> None:
    STUBBORN_ENDED.clear()
    llm = ScriptedLLM(replies=[tool_call("stubborn", {"seconds": 1.0}), "Gave up on it."])
    started = time.perf_counter()
    done = await asyncio.wait_for(
        run_tool_loop(llm, _task("stubborn"), _box("stubborn", timeout_s=0.1)), 5
    )
    assert time.perf_counter() - started < 0.8  # not the second it insists on
    assert [u.outcome for u in done.tool_uses] == ["timeout"]
    assert done.text == "Gave up on it."
    assert not STUBBORN_ENDED.is_set()
    await _ended()  # it ends on its own, kept alive till then


async def test_an_attempt_stopped_meanwhile_does_not_wait_for_a_stubborn_tool() -> None:
    STUBBORN_ENDED.clear()
    llm = ScriptedLLM(replies=[tool_call("stubborn", {"seconds": 1.0}), "never"])
    loop = run_tool_loop(llm, _task("stubborn"), _box("stubborn", timeout_s=30))
    started = time.perf_counter()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(0.1):  # the attempt's timeout
            await loop
    assert time.perf_counter() - started < 0.8
    await _ended()


async def _ended() -> None:
    async with asyncio.timeout(5):
        while not STUBBORN_ENDED.is_set():  # noqa: ASYNC110 - a thread-safe flag
            await asyncio.sleep(0.01)


def huge() -> str:
    """Returns five million characters."""
    return "Z" * 5_000_000


async def test_a_long_result_is_cut_once_and_its_note_says_its_real_length() -> None:
    box = Toolbox(ToolRegistry([FunctionTool.from_function(huge)]), ToolLimits(2, 5), Redactor())
    llm = ScriptedLLM(replies=[tool_call("huge", {}), "Read it."])
    await run_tool_loop(llm, _task("huge"), box)
    (result,) = [m for m in llm.calls[1].messages if m.role == "tool"]
    assert result.content.count("[truncated") == 1
    assert result.content.endswith(
        f"[truncated: the result has 5000000 characters; the first {MAX_RESULT_CHARS} are shown]"
    )
