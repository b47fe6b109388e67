"""The shape of every error answer, as the OpenAPI schema states it.

Each 4xx and 5xx answer is ``{"detail": ..., "error": ...}``: ``detail`` says what is wrong in
words, or, for a request that does not match the schema, lists the wrong fields (FastAPI's
validation errors); ``error`` names the typed error (:mod:`automatos.errors`) when one caused
it. Stated once for the whole app, so that a client (and the schema fuzzer) can rely on it.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

__all__ = ["ERRORS", "Problem", "invalid_request"]


class Problem(BaseModel):
    """An error answer."""

    detail: str | list[dict[str, Any]] = Field(
        description="What is wrong, in words; or each wrong field of a request that does not "
        "validate, with its location (`loc`) and problem (`msg`)."
    )
    error: str | None = Field(
        default=None, description="The class of the typed error behind it, if any."
    )


ERRORS: dict[int | str, dict[str, Any]] = {
    "4XX": {"model": Problem, "description": "The request cannot be served as it is."},
    422: {"model": Problem, "description": "The request is not valid: `detail` says why."},
    503: {"model": Problem, "description": "The store or the model is unavailable."},
}
"""The error answers every operation documents (``FastAPI(responses=...)``)."""


class _AsciiJSON(JSONResponse):
    """JSON with every non-ASCII character escaped: a lone surrogate (``"\\ud800"`` is valid
    JSON, and Python reads it into a string that UTF-8 cannot encode) stays escaped instead
    of failing the answer with a 500."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, allow_nan=False).encode("ascii")


async def invalid_request(_: Request, exc: Exception) -> JSONResponse:
    """422 for a request that does not match the schema: each wrong field with its location,
    problem and type, not its input (FastAPI echoes it, which fails on a NaN or a lone
    surrogate, and sends a 10 kB header back to whoever sent it)."""
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    shown = [{k: v for k, v in error.items() if k in _SHOWN} for error in errors]
    return _AsciiJSON({"detail": jsonable_encoder(shown)}, status_code=422)


_SHOWN = frozenset({"type", "loc", "msg"})
