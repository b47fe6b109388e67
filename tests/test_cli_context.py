"""The lines ``run`` and ``runs show`` print of stage 3's records."""

from __future__ import annotations

from automatos.cli.context import context_lines
from automatos.domain.context import ContextDrop, ContextItem, SubtaskContext


def _records() -> dict[str, dict[str, object]]:
    item = ContextItem(
        id="kb:1",
        kind="chunk",
        title="docs/guide.md > Retries",
        source="docs/guide.md",
        text="…",
        tokens=64,
        relevance=0.8412,
        value=0.8,
    )
    drop = ContextDrop(id="kb:2", title="docs/guide.md > Colours", step="mmr", reason="twin")
    records = [
        SubtaskContext(
            subtask_id="facts",
            retrieved=True,
            budget=200,
            tokens=64,
            candidates=9,
            items=(item,),
            dropped_by={"relevance": 7, "mmr": 1},
            dropped=(drop,),
        ),
        SubtaskContext(subtask_id="a", retrieved=False, reason="requires_context is false"),
        SubtaskContext(subtask_id="b", retrieved=False, reason="requires_context is false"),
        SubtaskContext(subtask_id="c", retrieved=True, candidates=3, reason="nothing relevant"),
    ]
    return {r.subtask_id: r.model_dump(mode="json") for r in records}


def test_chosen_items_counts_and_reasons_one_line_each() -> None:
    lines = context_lines(_records())
    assert lines == [
        "context of facts: 1 of 9 item(s), 64/200 tokens; dropped by relevance 7, mmr 1",
        "  [1] docs/guide.md > Retries (cos 0.84, 64 tokens)",
        "context of c: 0 of 3 item(s), 0/0 tokens (nothing relevant)",
        "no context for a, b: requires_context is false",
    ]


def test_runs_show_lists_the_drops_too() -> None:
    lines = context_lines(_records(), drops=True)
    assert "  dropped by mmr: docs/guide.md > Colours: twin" in lines
    assert context_lines(None) == [] == context_lines({})
