"""LocalTaskRunner: agent tasks run in this process, on the event loop."""

from __future__ import annotations

from typing import Literal, cast

from automatos.llm.base import LLMProvider, Message
from automatos.runners.base import AgentOutput, AgentTask

__all__ = ["LocalTaskRunner"]

Role = Literal["system", "user", "assistant"]


class LocalTaskRunner:
    """Runs each task as one call to ``llm``; concurrency is the orchestrator's to bound."""

    def __init__(self, llm: LLMProvider) -> None:
        self.llm = llm

    async def run(self, task: AgentTask) -> AgentOutput:
        """Call the agent's model with the task's messages."""
        agent = task.agent
        done = await self.llm.complete(
            [Message(cast(Role, m.role), m.content) for m in task.messages],
            model=agent.model,
            temperature=agent.temperature,
            max_tokens=agent.max_tokens,
            timeout_s=task.timeout_s,
        )
        return AgentOutput.model_construct(
            text=done.text,
            model=done.model,
            tokens_in=done.tokens_in,
            tokens_out=done.tokens_out,
            cost_usd=done.cost_usd,
            latency_s=done.latency_s,
        )

    async def aclose(self) -> None:
        """Nothing to release: the provider belongs to the engine."""
