"""How well the heuristic scorer separates good answers from bad ones.

The labelled set (``tests/data/quality.jsonl``, built by ``tests/data/make_quality_set.py``
from the documentation that ships with Python) has 120 tasks, each with its good answer and
eight bad ones: off-topic, truncated, repetitive, contradicting the question, empty, a
refusal, an answer to a different subtask, and a deferral (the task said back as a
promise). Targets: AUC >= 0.85, good mean >= 0.75, bad mean <= 0.45, scores spanning at
least 0.3-0.95. The last line of output is one JSON object.
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

DATA = Path(__file__).parent.parent / "tests" / "data" / "quality.jsonl"


def main(path: Path) -> dict[str, object]:
    """Score the set and summarise."""
    lines = read_labelled(path)
    report = aio.run(score_lines(lines, HeuristicScorer()))
    by_kind: dict[str, list[float]] = defaultdict(list)
    for line, score in zip(lines, report.scores, strict=True):
        by_kind[str((line.model_extra or {}).get("kind", line.label))].append(score)
    good = by_kind.get("good", [])
    kinds = {
        kind: {
            "mean": round(fmean(scores), 3),
            "auc_against_good": round(auc([1] * len(good) + [0] * len(scores), good + scores), 3),
        }
        for kind, scores in sorted(by_kind.items())
        if kind != "good"
    }
    print(json.dumps({"by_kind": kinds, "lines": len(lines)}))
    return {
        "auc": round(report.auc or 0.0, 3),
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
