"""Two processes learning about the same agent at once lose no update (SQLite, PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
import sys
import textwrap

from automatos import AgentSpec
from automatos.store import OVERALL
from tests.store.conftest import StoreTarget

UPDATES = 25

CHILD = textwrap.dedent(
    """
    import asyncio, json, sys, time
    from automatos.domain.agent import AgentMetrics
    from automatos.settings import StoreSettings
    from automatos.store import OVERALL
    from automatos.store.sql import SqlStore

    def one_more(known):
        seen = known.get("busy", {}).get(OVERALL, AgentMetrics()).total_executions
        time.sleep(0.002)  # between reading and writing: where another process would step in
        return {"busy": {OVERALL: AgentMetrics(total_executions=seen + 1)}}

    async def main():
        target = json.loads(sys.argv[1])
        settings = StoreSettings.model_validate(target["settings"])
        store = await SqlStore.open(settings, **target["options"])
        print("ready", flush=True)
        sys.stdin.readline()
        for _ in range(int(sys.argv[2])):
            await store.update_metrics(one_more)
        await store.aclose()

    asyncio.run(main())
    """
)


async def test_two_processes_learning_at_once_lose_no_update(store_target: StoreTarget) -> None:
    store = await store_target.open()
    try:
        await store.save_agent(AgentSpec(name="busy"))
        children = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                CHILD,
                json.dumps(store_target.as_json()),
                str(UPDATES),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            for _ in range(2)
        ]
        for child in children:  # both connected before either begins
            assert child.stdout is not None
            assert await asyncio.wait_for(child.stdout.readline(), 30) == b"ready\n"
        outcomes = await asyncio.wait_for(
            asyncio.gather(*(child.communicate(b"go\n") for child in children)), 120
        )
        for child, (_, err) in zip(children, outcomes, strict=True):
            assert child.returncode == 0, err.decode()
        metrics = await store.agent_metrics()
        assert metrics["busy"][OVERALL].total_executions == 2 * UPDATES
    finally:
        await store.aclose()
