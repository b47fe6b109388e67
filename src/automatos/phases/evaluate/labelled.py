"""Scoring a file of ``{"task": ..., "output": ...}`` lines, and how well scores separate labels.

Each line is scored as a one-subtask answer to its task, within its ``request`` when it has
one (a step of a larger request), else within the task itself. Lines may carry ``label``
(1 good, 0 bad): the report then gives the AUC, the means of each label and the range of
scores.
"""

from __future__ import annotations

from pathlib import Path
from statistics import fmean

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from automatos.domain.plan import GraphMetadata, Subtask
from automatos.errors import InvalidRequestError
from automatos.files import parse_data, read_user_file
from automatos.llm.structured import describe_fields
from automatos.phases.evaluate.quality import auc
from automatos.scoring import Scorer

__all__ = ["EvalReport", "Labelled", "read_labelled", "score_lines"]

_MAX_BYTES = 50_000_000


class Labelled(BaseModel):
    """One line of an evaluation file."""

    model_config = ConfigDict(extra="allow")

    task: str = Field(min_length=1)
    output: str
    request: str | None = Field(default=None, min_length=1)
    """The request the task is a step of; unset, the task is the whole request."""
    label: int | None = Field(default=None, ge=0, le=1)


class EvalReport(BaseModel):
    """Scores of a file, and their separation of the labels when there are labels."""

    scores: list[float]
    auc: float | None = None
    good_mean: float | None = None
    bad_mean: float | None = None
    min: float
    max: float


def read_labelled(path: str | Path) -> list[Labelled]:
    """The lines of a JSONL file; a malformed line is named by its number."""
    text = read_user_file(path, _MAX_BYTES)
    lines = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        data = parse_data(raw, source=f"{path}:{number}", json_only=True)
        try:
            lines.append(Labelled.model_validate(data))
        except ValidationError as exc:
            raise InvalidRequestError(f"{path}:{number}: {describe_fields(exc)}") from exc
    if not lines:
        raise InvalidRequestError(f"{path} has no lines to score")
    return lines


def _subtask(task: str) -> Subtask:
    graph = GraphMetadata(0, 1, (), (), 0.0, 0.0, True)
    return Subtask("task", task, (), False, 2, "", None, graph)


async def score_lines(lines: list[Labelled], scorer: Scorer) -> EvalReport:
    """Score every line with ``scorer``."""
    scores = [
        await scorer.score(line.request or line.task, _subtask(line.task), line.output)
        for line in lines
    ]
    report = EvalReport(scores=scores, min=min(scores), max=max(scores))
    labelled = [(line.label, s) for line, s in zip(lines, scores, strict=True)]
    good = [s for label, s in labelled if label == 1]
    bad = [s for label, s in labelled if label == 0]
    if good and bad:
        pairs = [(label, s) for label, s in labelled if label is not None]
        report.auc = auc([int(label) for label, _ in pairs], [s for _, s in pairs])
        report.good_mean, report.bad_mean = fmean(good), fmean(bad)
    return report
