"""How well the heuristic scorer separates good answers from bad ones.

The labelled set (``tests/data/quality.jsonl``, built by ``tests/data/make_quality_set.py``)
has three parts. From the documentation that ships with Python: 120 tasks, each with its good
answer and eight bad ones: off-topic, truncated, repetitive, contradicting the question,
empty, a refusal, an answer to a different subtask, and a deferral (the task said back as a
promise). Short questions with short right answers computed by Python ("391", "Not Found").
And what the embedded model wrote through the engine, labelled by reading it: right
answers, answers on another subject, restatements of the task, wrong results of a sum (and,
unlabelled, answers wrong or thin on the subject, shown by kind, outside the AUC).

Targets: AUC >= 0.85, good mean >= 0.75, bad mean <= 0.45, scores spanning at least
0.3-0.95; every kind of bad answer below the quality gate on average, every kind of good
answer above it. Per kind: the mean, the share at or above the gate, and for bad kinds the
AUC against all good answers. ``auc_docs`` is the AUC over the documentation part alone (the
set as it was before the other parts). The last line of output is one JSON object.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path
from statistics import fmean

from automatos import aio
from automatos.phases.evaluate.labelled import read_labelled, score_lines
from automatos.phases.evaluate.quality import auc
from automatos.phases.evaluate.scorers import HeuristicScorer
from automatos.settings import QualitySettings

DATA = Path(__file__).parent.parent / "tests" / "data" / "quality.jsonl"
DOCS_KINDS = frozenset(
    "good off_topic truncated repetitive contradicting empty refusal other_subtask deferral".split()
)
"""The kinds of the documentation part."""


def main(path: Path) -> dict[str, object]:
    """Score the set and summarise."""
    gate = QualitySettings().gate
    lines = read_labelled(path)
    report = aio.run(score_lines(lines, HeuristicScorer()))
    by_kind: dict[str, list[float]] = defaultdict(list)
    labels: dict[str, int | None] = {}
    docs: list[tuple[int, float]] = []
    for line, score in zip(lines, report.scores, strict=True):
        kind = str((line.model_extra or {}).get("kind", line.label))
        by_kind[kind].append(score)
        labels[kind] = line.label
        if kind in DOCS_KINDS and line.label is not None:
            docs.append((line.label, score))
    good = [s for kind, scores in by_kind.items() if labels[kind] == 1 for s in scores]
    kinds: dict[str, dict[str, object]] = {}
    for kind, scores in sorted(by_kind.items()):
        figures: dict[str, object] = {
            "n": len(scores),
            "mean": round(fmean(scores), 3),
            "at_gate": round(sum(s >= gate for s in scores) / len(scores), 3),
        }
        if labels[kind] != 1:
            both = [1] * len(good) + [0] * len(scores)
            figures["auc_against_good"] = round(auc(both, good + scores), 3)
        if labels[kind] is None:
            figures["label"] = None
        kinds[kind] = figures
    print(json.dumps({"by_kind": kinds, "gate": gate, "lines": len(lines)}))
    return {
        "auc": round(report.auc or 0.0, 3),
        "auc_docs": round(auc([label for label, _ in docs], [s for _, s in docs]), 3),
        "good_mean": round(report.good_mean or 0.0, 3),
        "bad_mean": round(report.bad_mean or 0.0, 3),
        "min": round(report.min, 3),
        "max": round(report.max, 3),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("file", nargs="?", type=Path, default=DATA)
    args = parser.parse_args()
    print(json.dumps(main(args.file)))
