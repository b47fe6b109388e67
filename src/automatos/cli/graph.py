"""``automatos graph``: check a plan or recipe file and print its analysis."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from automatos.cli.output import fail, load_settings

if TYPE_CHECKING:
    from automatos.domain.plan import Plan
    from automatos.settings import PlanLimits

__all__ = ["graph", "load_plan"]


def graph(
    plan_file: Annotated[
        Path, typer.Argument(help="A plan or recipe file (JSON or YAML) with 'subtasks'.")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print the analysis as JSON.")] = False,
) -> None:
    """Check a plan and print its analysis: layers, critical path, per-subtask metadata."""
    from automatos.errors import AutomatosError

    settings = load_settings()
    try:
        plan = load_plan(plan_file, settings.plan)
    except AutomatosError as exc:
        raise fail(exc) from None
    if as_json:
        data: dict[str, Any] = json.loads(plan.model_dump_json())
        typer.echo(json.dumps(data, indent=2))
        return
    _print_plan(plan)


def load_plan(path: Path, limits: PlanLimits) -> Plan:
    """The checked plan of a file: a bare plan (as a decomposer writes it) or a recipe.

    Raises:
        InvalidRequestError: the file cannot be read or is not a recipe.
        PlanError: the plan cannot be run (a cycle, a limit, a bad subtask).
    """
    from automatos.files import read_user_file
    from automatos.graph import build_plan
    from automatos.recipe import MAX_RECIPE_BYTES, parse_recipe

    text = read_user_file(path, MAX_RECIPE_BYTES)
    stripped = text.lstrip()
    if stripped.startswith("[") or (stripped.startswith("{") and '"request"' not in text):
        return _bare_plan(
            path, text, limits.model_copy(update={"max_plan_chars": MAX_RECIPE_BYTES})
        )
    recipe = parse_recipe(text, source=str(path), request="(plan file)", limits=limits)
    return build_plan(recipe.subtasks or (), limits)


def _bare_plan(path: Path, text: str, limits: PlanLimits) -> Plan:
    """A bare plan, read like a decomposer's answer; its errors name the file, on one line."""
    from pydantic import ValidationError

    from automatos.errors import PlanParseError
    from automatos.llm.structured import describe_fields
    from automatos.phases.plan.decompose import parse_plan

    try:
        return parse_plan(text, limits)
    except PlanParseError as exc:
        cause = exc.__cause__
        problem = (
            f"the plan is not valid: {describe_fields(cause)}"
            if isinstance(cause, ValidationError)
            else str(exc)
        )
        raise PlanParseError(f"{path}: {problem}") from cause


def _print_plan(plan: Plan) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    # Subtask ids are the user's: as Text, "[/bold]" is an id, not rich markup.
    out = Console()
    out.print(f"[bold]{len(plan.subtasks)} subtasks in {len(plan.layers)} layers[/]")
    for i, layer in enumerate(plan.layers):
        out.print(Text(f"  layer {i}: {', '.join(layer)}"), highlight=False)
    path = " -> ".join(plan.critical_path)
    out.print(Text(f"critical path (cost {plan.critical_path_cost:g}): {path}"), highlight=False)
    table = Table("subtask", "layer", "depth", "depends on", "needed by", "slack", "critical")
    for s in plan.subtasks:
        g = s.graph
        table.add_row(
            Text(s.id),
            str(g.layer),
            str(g.depth),
            Text(", ".join(g.predecessors)),
            Text(", ".join(g.successors)),
            f"{g.slack:g}",
            "yes" if g.on_critical_path else "",
        )
    out.print(table)
