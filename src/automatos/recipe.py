"""Recipes: requests that bring their own subtasks (and agents), from YAML or JSON files."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from automatos.domain.request import WorkflowRequest
from automatos.errors import InvalidRequestError
from automatos.files import parse_data, read_user_file
from automatos.llm.structured import describe_fields
from automatos.settings import PlanLimits

__all__ = ["MAX_RECIPE_BYTES", "load_recipe", "parse_recipe"]

MAX_RECIPE_BYTES = 10_000_000


def load_recipe(
    path: str | Path, request: str | None = None, *, limits: PlanLimits | None = None
) -> WorkflowRequest:
    """Read a recipe file (``.yaml``, ``.yml`` or ``.json``).

    The file holds ``request`` (the text; ``request`` here overrides it), ``subtasks`` and
    optionally ``agents``. Its subtasks pass the same graph checks as a decomposed plan when
    the workflow runs; its request obeys ``limits.max_request_chars`` (default limits unless
    given), as a typed request does.

    Raises:
        InvalidRequestError: the file is missing, too large, nested too deeply, unparsable
            or of the wrong shape; the message names the file and the field.
    """
    text = read_user_file(path, MAX_RECIPE_BYTES)
    return parse_recipe(text, source=str(path), request=request, limits=limits)


def parse_recipe(
    text: str,
    *,
    source: str = "recipe",
    request: str | None = None,
    limits: PlanLimits | None = None,
) -> WorkflowRequest:
    """Parse recipe text, JSON or YAML (JSON is YAML, but its errors read better as JSON).

    Raises:
        InvalidRequestError: as :func:`load_recipe`.
    """
    data = parse_data(text, source=source)
    if not isinstance(data, dict):
        raise InvalidRequestError(f"{source} must be a mapping with 'request' and 'subtasks'")
    if request is not None:
        data["request"] = request
    if "subtasks" not in data:
        raise InvalidRequestError(f"{source} has no 'subtasks'")
    if data["subtasks"] is None:
        # Without subtasks the engine would ask the model for a plan: not what a recipe is for.
        raise InvalidRequestError(
            f"{source}: 'subtasks' is empty (null); list the subtasks, or run the request "
            "without a recipe to have it planned"
        )
    if not isinstance(data.get("request"), str) or not data["request"].strip():
        raise InvalidRequestError(
            f"{source} needs 'request': the text of what the subtasks are for, which every "
            "subtask's prompt quotes"
        )
    limit = (limits or PlanLimits()).max_request_chars
    if len(data["request"]) > limit:
        raise InvalidRequestError(
            f"{source}: 'request' is {len(data['request'])} characters long; the limit is "
            f"{limit} (setting plan.max_request_chars)"
        )
    data["text"] = data.pop("request")
    try:
        return WorkflowRequest.model_validate(data)
    except InvalidRequestError as exc:
        raise InvalidRequestError(f"{source}: 'request': {exc}") from exc
    except ValidationError as exc:
        raise InvalidRequestError(
            f"{source} is not a valid recipe: {describe_fields(exc)}"
        ) from exc
