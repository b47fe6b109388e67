"""``automatos eval``: score a labelled file of outputs, heuristically or with the judge."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from automatos.cli.output import EXIT_NO_MODEL, fail, load_settings, warn

if TYPE_CHECKING:
    from automatos.scoring import Scorer
    from automatos.settings import Settings

__all__ = ["eval_file"]


def eval_file(
    file: Annotated[
        Path,
        typer.Argument(
            help='JSONL of {"task": ..., "output": ...} lines (optional "request": the request '
            'a task is a step of, "label": 1 or 0).'
        ),
    ],
    judge: Annotated[
        bool, typer.Option("--judge", help="Score with the LLM judge instead of heuristics.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="End with the summary as one JSON object.")
    ] = False,
) -> None:
    """Score each line's output; with labels (1 good, 0 bad), report the AUC and mean gap."""
    from automatos import aio
    from automatos.errors import AutomatosError, ConfigurationError
    from automatos.phases.evaluate.labelled import read_labelled, score_lines

    settings = load_settings()
    try:
        lines = read_labelled(file)
    except AutomatosError as exc:
        raise fail(exc) from None
    try:
        scorer = _scorer(settings, judge=judge)
    except ConfigurationError as exc:
        raise fail(exc, EXIT_NO_MODEL) from None
    try:
        report = aio.run(score_lines(lines, scorer))
    except AutomatosError as exc:
        raise fail(exc) from None
    for score in report.scores:
        typer.echo(f"{score:.3f}")
    if as_json:
        summary = report.model_dump(exclude={"scores"})
        keys = ("auc", "good_mean", "bad_mean", "min", "max")
        typer.echo(json.dumps({k: summary[k] for k in keys}))
    elif report.auc is not None:
        gap = (report.good_mean or 0.0) - (report.bad_mean or 0.0)
        typer.echo(
            f"AUC {report.auc:.3f}; good mean {report.good_mean:.3f}, bad mean "
            f"{report.bad_mean:.3f} (gap {gap:.3f}); range {report.min:.3f}-{report.max:.3f}",
            err=True,
        )
    _warn_of_fallbacks(scorer, len(lines))


def _scorer(settings: Settings, *, judge: bool) -> Scorer:
    """The heuristic scorer, or the LLM judge of the configured model, with the settings'
    weights (``quality.weights``).

    Raises:
        ConfigurationError: the judge is asked for and no model is configured.
    """
    from automatos.phases.evaluate.scorers import HeuristicScorer, LLMJudgeScorer

    weights = settings.quality.weights
    if not judge:
        return HeuristicScorer(weights)
    from automatos.llm.factory import build_provider, wrap_provider

    llm = wrap_provider(build_provider(settings.llm), settings.llm)
    return LLMJudgeScorer(llm, weights=weights)


def _warn_of_fallbacks(scorer: Scorer, lines: int) -> None:
    """Say on standard error how many lines the judge failed on: their scores are the
    heuristic ones, which would otherwise pass for the judge's."""
    from automatos.phases.evaluate.scorers import LLMJudgeScorer

    if isinstance(scorer, LLMJudgeScorer) and scorer.fallbacks:
        warn(
            f"the judge failed on {scorer.fallbacks} of {lines} lines; heuristic scores used "
            f"(last: {' '.join(str(scorer.last_error).split())})"
        )
