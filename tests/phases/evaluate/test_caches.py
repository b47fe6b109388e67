"""Issue 10, item 7: no output of a workflow stays in module state after it is scored."""

from __future__ import annotations

import functools
import sys
from collections.abc import Iterator
from typing import Any

from automatos import Engine
from automatos.phases.evaluate import heuristics
from automatos.phases.evaluate.labelled import Labelled, score_lines
from automatos.phases.evaluate.scorers import HeuristicScorer
from automatos.testing import ScriptedLLM
from tests.conftest import fast_settings, step_of
from tests.phases.evaluate.test_assess import GOOD, REQUEST

_CACHE = type(functools.lru_cache(maxsize=None)(lambda: None))


def module_caches() -> Iterator[tuple[str, Any]]:
    """Every ``functools`` cache held at module level anywhere in the package."""
    for name, module in list(sys.modules.items()):
        if name == "automatos" or name.startswith("automatos."):
            for attr, value in list(vars(module).items()):
                if isinstance(value, _CACHE):
                    yield f"{name}.{attr}", value


def outputs(tag: str) -> ScriptedLLM:
    return ScriptedLLM(default=lambda m: f"{GOOD.get(step_of(m), 'out')} ({tag} marker)")


async def test_a_workflows_outputs_stay_in_no_module_level_cache() -> None:
    # a first run warms whatever may be cached legitimately (settings, prices, models)
    await Engine(fast_settings(), llm=outputs("first")).run(REQUEST)
    before = {name: cache.cache_info() for name, cache in module_caches()}
    # a new entry is a miss: a cache keyed on anything else than this run's texts would hit
    result = await Engine(fast_settings(), llm=outputs("second")).run(
        REQUEST.model_copy(update={"workflow_id": "second"})
    )
    assert result.quality is not None and result.quality.method == "heuristic"
    grown = {
        name: (before[name], cache.cache_info())
        for name, cache in module_caches()
        if name in before and cache.cache_info().misses != before[name].misses
    }
    assert grown == {}, "module-level caches took the second workflow's texts"


def test_the_heuristics_keep_nothing_in_module_state() -> None:
    assert [name for name, _ in module_caches() if name.startswith(heuristics.__name__)] == []


async def test_a_scoring_pass_over_a_file_leaves_no_module_level_cache_behind() -> None:
    lines = [
        Labelled(task=f"Explain topic {i} of the file.", output=f"Topic {i} is explained here.")
        for i in range(5)
    ]
    before = {name: cache.cache_info().misses for name, cache in module_caches()}
    report = await score_lines(lines, HeuristicScorer())
    assert len(report.scores) == 5
    after = {name: cache.cache_info().misses for name, cache in module_caches()}
    assert after == before


def test_one_scoring_pass_keeps_what_its_outputs_share_and_no_more() -> None:
    scoring = heuristics.ScoringPass()
    request = "Compare PostgreSQL and SQLite for a small web application."
    for sid, text in GOOD.items():
        dims = scoring.dimensions(f"Summarise {sid}.", text, request=request)
        # the same figures as scoring each output on its own
        assert dims == heuristics.heuristic_dimensions(f"Summarise {sid}.", text, request=request)
    # it holds the texts every output is measured against (the request, the tasks), not outputs
    held = set(vars(scoring)["_known"])
    assert held == {request, *(f"Summarise {sid}." for sid in GOOD)}
