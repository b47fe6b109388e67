"""Recipes: requests that bring their own subtasks (and agents), from YAML or JSON files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from automatos.domain.request import WorkflowRequest
from automatos.errors import InvalidRequestError
from automatos.files import read_user_file
from automatos.llm.structured import describe_error

__all__ = ["MAX_RECIPE_BYTES", "load_recipe", "parse_recipe"]

MAX_RECIPE_BYTES = 10_000_000


def load_recipe(path: str | Path, request: str | None = None) -> WorkflowRequest:
    """Read a recipe file (``.yaml``, ``.yml`` or ``.json``).

    The file holds ``request`` (the text; ``request`` here overrides it), ``subtasks`` and
    optionally ``agents``. Its subtasks pass the same graph checks as a decomposed plan when
    the workflow runs.

    Raises:
        InvalidRequestError: the file is missing, too large, unparsable or of the wrong shape.
    """
    text = read_user_file(path, MAX_RECIPE_BYTES)
    return parse_recipe(text, source=str(path), request=request)


def parse_recipe(
    text: str, *, source: str = "recipe", request: str | None = None
) -> WorkflowRequest:
    """Parse recipe text, JSON or YAML (JSON is YAML, but its errors read better as JSON)."""
    try:
        data: Any = json.loads(text) if text.lstrip().startswith("{") else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise InvalidRequestError(f"{source} is not valid JSON or YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidRequestError(f"{source} must be a mapping with 'request' and 'subtasks'")
    if request is not None:
        data["request"] = request
    if "subtasks" not in data:
        raise InvalidRequestError(f"{source} has no 'subtasks'")
    if not isinstance(data.get("request"), str) or not data["request"].strip():
        raise InvalidRequestError(
            f"{source} needs 'request': the text of what the subtasks are for, which every "
            "subtask's prompt quotes"
        )
    data["text"] = data.pop("request")
    try:
        return WorkflowRequest.model_validate(data)
    except ValidationError as exc:
        raise InvalidRequestError(f"{source} is not a valid recipe: {describe_error(exc)}") from exc
