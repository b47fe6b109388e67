"""What an A/B test of a prompt decides, and how many runs it takes (issue 12).

Simulated experiments through the real registry (a SQLite store) and the real decision rule
(:mod:`automatos.prompts.ab`), with the test's defaults (``PromptSettings``: a share of 0.2
for the candidate, looks at 30, 60, 90 and 120 counted outcomes per arm, Pocock's level
0.0182 at each). Two scenarios: the candidate prompt yields Q higher by 0.1, and no
difference. Two models of how Q varies from run to run; power depends on the spread:

- ``measured`` (the headline figures): Q drawn from the heuristic scorer's scores of the 238
  good answers of ``tests/data/quality.jsonl``, moved to a mean of 0.7 (plus 0.1 for the
  candidate). Its spread (sd 0.157) and shape are those of real scores: most near the top,
  a long tail below (skew -1.9). On Q this skewed, Welch's test of all the control's
  outcomes against the candidate's four times fewer activates a useless candidate about 6%
  of the time (part 3): the reason the rule compares equal samples at each look.
- ``normal``: Q ~ clip(N(0.7 + effect, 0.16), 0, 1), sd 0.16 as measured, without the skew
  (``--sigma`` to change it). Clipping at 1 leaves an effect of about 0.093.

1. End to end (the measured model): a stated number of experiments per scenario through
   ``Engine.run``, each workflow a full Organ pipeline on a SQLite store with a scripted
   provider whose answer to the candidate executor prompt (a version told apart by one
   sentence) is better by the effect, scored by a custom scorer that reads the drawn Q back.
   The engine chooses each workflow's arm (stage 3b) and records its outcome with
   ``record_run``, which ends the test when the rule decides; the experiment runs workflows
   until it does.
2. In bulk: the figures, over at least 200 experiments per scenario and model, through the
   same store (``start_ab``, ``record_outcomes``, ``ab_outcomes``, ``evaluate``, ``end_ab``),
   the arms from ``arm_of``, recorded 100 workflows at a time: a full workflow costs ~20 ms,
   and 1,200 experiments of up to ~700 workflows would take hours. A look is judged on the
   outcomes up to the one that completed it, so the verdict does not depend on how outcomes
   are batched.
3. The rule against the one first designed (Welch's test of every outcome at each look, the
   control's four times as many as the candidate's), on the same simulated tests without a
   difference, in memory (the rules alone, 2,000 tests per model):
   ``false_activation_rate_by_rule``.

Targets: false activations <= 0.05 with no difference; power >= 0.8 for an effect of 0.1 at
the defaults (``n_per_arm_at_power``: the look by which it is reached, in outcomes per arm).
``runs_to_decision_p50`` counts the workflows (both arms) a test took to decide, with the
effect; without it, most tests run to the last look. The last line of output is one JSON
object.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from automatos import Engine, Level, Settings, WorkflowRequest, aio
from automatos.domain.plan import Subtask
from automatos.llm.base import Message
from automatos.phases.evaluate.labelled import read_labelled, score_lines
from automatos.phases.evaluate.scorers import HeuristicScorer
from automatos.prompts.ab import Decision, evaluate, scored_quality
from automatos.prompts.base import AbOutcome, AbStatus, AbTest, PromptStore
from automatos.prompts.catalog import CATALOG
from automatos.prompts.resolve import arm_of
from automatos.prompts.stats import pocock_level, welch
from automatos.settings import PlanLimits, PromptSettings, StoreSettings
from automatos.store.sql import SqlStore
from automatos.testing import Rule, ScriptedLLM

EFFECT = 0.1
BASE_Q = 0.7
SIGMA = 0.16
SLUG = "executor"
MARK = "Answer the step completely."
"""The sentence that tells the candidate executor prompt apart (for the scripted model)."""
QUALITY_SET = Path(__file__).parent.parent / "tests" / "data" / "quality.jsonl"
CHUNK = 100
"""Workflows recorded between evaluations in bulk."""
DEFAULTS = {slug: spec.text for slug, spec in CATALOG.items()}
SETTINGS = PromptSettings()
ENDS: dict[Decision, AbStatus] = {
    "activate": "activated",
    "reject": "rejected",
    "inconclusive": "inconclusive",
}


@dataclass(frozen=True)
class Model:
    """How good a workflow's answer is: a draw around 0.7, plus ``effect`` with the candidate
    prompt. From ``pool`` (scores moved to a mean of 0.7) if given, else N(0.7, ``sigma``);
    clipped to [0, 1]."""

    name: str
    effect: float
    sigma: float = SIGMA
    pool: tuple[float, ...] = ()

    def draw(self, rng: random.Random, candidate: bool) -> float:
        """One workflow's Q."""
        base = rng.choice(self.pool) if self.pool else rng.gauss(BASE_Q, self.sigma)
        return min(1.0, max(0.0, base + (self.effect if candidate else 0.0)))


async def measured_pool() -> tuple[float, ...]:
    """The heuristic scorer's scores of the labelled set's good answers, moved to mean 0.7."""
    good = [line for line in read_labelled(QUALITY_SET) if line.label == 1]
    scores = (await score_lines(good, HeuristicScorer())).scores
    shift = BASE_Q - statistics.fmean(scores)
    return tuple(s + shift for s in scores)


@dataclass(frozen=True)
class Experiment:
    """How one A/B test ended."""

    decision: Decision
    look: int
    runs: int
    """Workflows the test took to decide."""


async def _new_test(store: PromptStore, n: int) -> AbTest:
    """A test of a new candidate version against version 1 (made active again)."""
    await store.activate_prompt(SLUG, 1)
    candidate = await store.add_prompt(SLUG, f"{CATALOG[SLUG].text}\n\n{MARK} (variant {n})")
    return await store.start_ab(
        SLUG, candidate.version, SETTINGS.ab_share, SETTINGS.ab_min_per_arm, SETTINGS.ab_looks
    )


async def bulk(store: SqlStore, experiments: int, model: Model, seed: int) -> list[Experiment]:
    """``experiments`` tests through the store and the rule, outcomes drawn from ``model``."""
    rng = random.Random(seed)
    done = []
    for e in range(experiments):
        test = await _new_test(store, e)
        i = 0
        while True:
            batch = []
            for _ in range(CHUNK):
                workflow_id = f"s{seed}-e{e}-w{i:05d}"
                arm = arm_of(test.id, workflow_id, test.share)
                quality = model.draw(rng, arm == "candidate")
                batch.append(
                    AbOutcome(
                        test_id=test.id,
                        workflow_id=workflow_id,
                        arm=arm,
                        quality=quality,
                        success=True,
                        tokens=1000,
                        latency_s=1.0,
                    )
                )
                i += 1
            await store.record_outcomes(batch)
            verdict = evaluate(test, await store.ab_outcomes(test.id))
            if verdict.decision != "continue":
                status = ENDS[verdict.decision]
                await store.end_ab(test.id, status, verdict.reason, activate=status == "activated")
                done.append(Experiment(verdict.decision, verdict.look, verdict.runs))
                break
    return done


class _ReadQ:
    """The scorer: reads back the Q the scripted model drew for its answer."""

    async def score(self, request: str, subtask: Subtask, output: str) -> float:
        return float(output.rsplit("[q=", 1)[1].rstrip("]"))


def _scripted(rng: random.Random, model: Model) -> ScriptedLLM:
    """A model that plans one step and answers it as well as ``model`` draws (the Q in the
    answer, for :class:`_ReadQ`)."""
    plan = json.dumps(
        {"subtasks": [{"id": "answer", "description": "Answer the question", "depends_on": []}]}
    )

    def execute(messages: Sequence[Message]) -> str:
        q = model.draw(rng, MARK in messages[-1].content)
        return f"Water boils at 100 degrees Celsius at sea level. [q={q:.6f}]"

    return ScriptedLLM(
        rules=[
            Rule(r"^Request:", plan),
            Rule(r"^Subtasks:", json.dumps({"assignments": []})),
            Rule(r"Your step", execute),
        ],
        default="Water boils at 100 degrees Celsius at sea level.",
        record=False,
    )


async def end_to_end(
    data_dir: Path, experiments: int, model: Model, seed: int
) -> tuple[list[Experiment], float]:
    """``experiments`` tests, each run by the engine until its rule decides; and the mean
    milliseconds per workflow."""
    rng = random.Random(seed)
    settings = Settings(store=StoreSettings(data_dir=data_dir), plan=PlanLimits(level=Level.ORGAN))
    done: list[Experiment] = []
    workflows, started = 0, time.perf_counter()
    async with Engine(settings, llm=_scripted(rng, model), scorer=_ReadQ()) as engine:
        store = await engine.open_store()
        assert isinstance(store, PromptStore)
        await store.prompt_state(DEFAULTS)
        for e in range(experiments):
            test = await _new_test(store, e)
            while True:
                request = WorkflowRequest(
                    text="At what temperature does water boil?",
                    workflow_id=f"s{seed}-e{e}-w{workflows:05d}",
                )
                result = await engine.run(request)
                workflows += 1
                use = result.prompts[SLUG]
                assert use.test_id == test.id, use
                (ended,) = [t for t in await store.ab_tests(SLUG) if t.id == test.id]
                if ended.status != "running":
                    break
            verdict = evaluate(ended, await store.ab_outcomes(test.id))
            assert ENDS.get(verdict.decision) == ended.status, (verdict, ended)
            assert ended.decision == verdict.reason
            done.append(Experiment(verdict.decision, verdict.look, verdict.runs))
    return done, (time.perf_counter() - started) / workflows * 1000


def _share(results: Sequence[Experiment], decision: Decision) -> float:
    return sum(r.decision == decision for r in results) / len(results)


def _by_look(results: Sequence[Experiment], decision: Decision) -> list[float]:
    """The share of experiments that reached ``decision`` by each look."""
    return [
        round(sum(r.decision == decision and r.look <= k for r in results) / len(results), 4)
        for k in range(1, SETTINGS.ab_looks + 1)
    ]


def _welch_on_every_outcome(test: AbTest, runs: Sequence[AbOutcome]) -> Decision:
    """The rule as first designed, for comparison: Welch's test of every counted outcome of
    both arms at each look (the control's four times as many as the candidate's)."""
    q: dict[str, list[float]] = {"control": [], "candidate": []}
    look, boundary = 0, pocock_level(test.looks)
    for outcome in runs:
        value = scored_quality(outcome)
        if value is None:
            continue
        q[outcome.arm].append(value)
        if look < test.looks and min(map(len, q.values())) >= test.min_per_arm * (look + 1):
            look += 1
            result = welch(q["control"], q["candidate"])
            if result is not None and result.p_value < boundary:
                return "activate" if result.effect > 0 else "reject"
    return "inconclusive" if look == test.looks else "continue"


def compare_rules(model: Model, experiments: int, seed: int) -> dict[str, float]:
    """False activations of the rule and of Welch's test of every outcome, on the same
    simulated tests without a difference (in memory: the rules alone)."""
    rng = random.Random(seed)
    activated: Counter[str] = Counter()
    for e in range(experiments):
        test = AbTest(
            id=e + 1, slug=SLUG, control_version=1, candidate_version=2,
            share=SETTINGS.ab_share, min_per_arm=SETTINGS.ab_min_per_arm,
            looks=SETTINGS.ab_looks, status="running", started_at=datetime.now(UTC),
        )  # fmt: skip
        runs = []
        for i in range(int(SETTINGS.ab_min_per_arm * SETTINGS.ab_looks / test.share * 1.4)):
            workflow_id = f"c{seed}-e{e}-w{i:05d}"
            arm = arm_of(test.id, workflow_id, test.share)
            runs.append(
                AbOutcome(
                    test_id=test.id,
                    workflow_id=workflow_id,
                    arm=arm,
                    quality=model.draw(rng, arm == "candidate"),
                    success=True,
                    tokens=1,
                    latency_s=1.0,
                )
            )
        activated["equal_samples"] += evaluate(test, runs).decision == "activate"
        activated["every_outcome"] += _welch_on_every_outcome(test, runs) == "activate"
    return {rule: round(n / experiments, 4) for rule, n in sorted(activated.items())}


def _describe(name: str, results: Sequence[Experiment]) -> str:
    counts = Counter(r.decision for r in results)
    runs = statistics.median(r.runs for r in results)
    return f"{name:<28} {len(results):4d} experiments  {dict(counts)}  runs p50 {runs:g}"


def _figures(with_effect: Sequence[Experiment], without: Sequence[Experiment]) -> dict[str, object]:
    power_by_look = _by_look(with_effect, "activate")
    at_power = next((k + 1 for k, power in enumerate(power_by_look) if power >= 0.8), None)
    return {
        "power_at_0_1": round(_share(with_effect, "activate"), 4),
        "false_activation_rate": round(_share(without, "activate"), 4),
        "runs_to_decision_p50": statistics.median(r.runs for r in with_effect),
        "power_by_look": power_by_look,
        "n_per_arm_at_power": at_power * SETTINGS.ab_min_per_arm if at_power else None,
        "false_activations_by_look": _by_look(without, "activate"),
        "false_rejection_rate": round(_share(without, "reject"), 4),
        "wrong_rejection_rate_at_0_1": round(_share(with_effect, "reject"), 4),
        "runs_to_decision_p50_no_difference": statistics.median(r.runs for r in without),
    }


async def main(
    experiments: int, e2e: int, compared: int, seed: int, sigma: float
) -> dict[str, object]:
    """Run both parts and summarise."""
    started = time.perf_counter()
    pool = await measured_pool()
    print(
        f"share {SETTINGS.ab_share}, looks at {SETTINGS.ab_min_per_arm} x 1..{SETTINGS.ab_looks}"
        f" outcomes per arm; measured Q: sd {statistics.pstdev(pool):.3f} over {len(pool)} "
        f"scores; normal Q: sd {sigma}"
    )
    models = {
        "measured": (Model("measured", EFFECT, pool=pool), Model("measured", 0.0, pool=pool)),
        "normal": (Model("normal", EFFECT, sigma), Model("normal", 0.0, sigma)),
    }
    e2e_results: dict[str, list[Experiment]] = {}
    e2e_ms: list[float] = []
    for model in models["measured"] if e2e else ():
        name = "effect" if model.effect else "none"
        with tempfile.TemporaryDirectory() as tmp:
            results, ms = await end_to_end(Path(tmp), e2e, model, seed)
        e2e_results[name] = results
        e2e_ms.append(ms)
        print(_describe(f"end to end, {name}", results) + f"  {ms:.1f} ms per workflow")
    e2e_s = time.perf_counter() - started
    figures: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        store = await SqlStore.open(StoreSettings(data_dir=Path(tmp)))
        try:
            await store.prompt_state(DEFAULTS)
            for m, (name, (effect, none)) in enumerate(models.items()):
                with_effect = await bulk(store, experiments, effect, seed + 2 * m + 1)
                print(_describe(f"bulk, {name}, effect 0.1", with_effect))
                without = await bulk(store, experiments, none, seed + 2 * m + 2)
                print(_describe(f"bulk, {name}, no difference", without))
                figures[name] = _figures(with_effect, without)
                figures[name]["false_activation_rate_by_rule"] = compare_rules(
                    none, compared, seed + 2 * m + 11
                )
                print(f"  {name}: {json.dumps(figures[name])}")
        finally:
            await store.aclose()
    return {
        **figures["measured"],
        "experiments_per_scenario": experiments,
        "experiments_compared": compared,
        "normal": {"sigma": sigma, **figures["normal"]},
        "share": SETTINGS.ab_share,
        "min_per_arm": SETTINGS.ab_min_per_arm,
        "looks": SETTINGS.ab_looks,
        "end_to_end": {
            name: {
                "experiments": len(results),
                "decisions": dict(Counter(r.decision for r in results)),
                "runs": [r.runs for r in results],
            }
            for name, results in e2e_results.items()
        },
        "end_to_end_ms_per_workflow": round(statistics.fmean(e2e_ms), 2) if e2e_ms else None,
        "end_to_end_s": round(e2e_s, 1),
        "runtime_s": round(time.perf_counter() - started, 1),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", type=int, default=500, help="bulk, per scenario and model")
    parser.add_argument("--e2e", type=int, default=2, help="end to end, per scenario")
    parser.add_argument(
        "--compare",
        type=int,
        default=2000,
        help="tests without a difference, per model, "
        "on which the rule is compared with Welch's test of every outcome",
    )
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--sigma", type=float, default=SIGMA, help="spread of Q across runs")
    parser.add_argument(
        "--quick", action="store_true", help="200 bulk, 1 end-to-end and 500 compared experiments"
    )
    args = parser.parse_args()
    if args.quick:
        args.experiments, args.e2e, args.compare = 200, 1, 500
    print(
        json.dumps(aio.run(main(args.experiments, args.e2e, args.compare, args.seed, args.sigma)))
    )
