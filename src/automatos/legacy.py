"""Import of the seed system's workflow records onto the phase/stage structure.

The seed stored ``WorkflowExecution.input_data`` as JSON keyed by its nine stage names. Each
known key becomes a stage entry with its phase and number (its data kept whole); keys that
are not stage names are kept under ``extra.legacy_unknown``, so nothing is lost.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from automatos.errors import InvalidRequestError
from automatos.files import parse_data, read_user_file
from automatos.llm.structured import describe_fields

__all__ = ["LEGACY_STAGES", "ImportedRun", "LegacyRecord", "convert", "read_legacy"]

LEGACY_STAGES: dict[str, tuple[str, int, str]] = {
    "task_decomposition": ("plan", 1, "decompose"),
    "agent_selection": ("plan", 2, "select_agents"),
    "context_engineering": ("prepare", 3, "context"),
    "agent_execution": ("execute", 4, "execute"),
    "result_aggregation": ("evaluate", 5, "aggregate"),
    "learning_update": ("learn", 6, "learn"),
    "quality_assessment": ("evaluate", 7, "assess"),
    "memory_storage": ("learn", 8, "memory"),
    "response_generation": ("learn", 9, "respond"),
}
_STATUS = {"completed": "succeeded", "success": "succeeded", "error": "failed"}
_REQUEST_KEYS = ("request", "user_request", "task", "query", "prompt")
_MAX_BYTES = 200_000_000
_ANSWER_KEYS = ("response", "final_response", "final_answer", "output", "answer")


class LegacyRecord(BaseModel):
    """One seed ``WorkflowExecution`` row, as exported."""

    model_config = ConfigDict(extra="allow")

    id: str = Field(min_length=1, max_length=64)
    status: str = "completed"
    input_data: dict[str, Any]
    created_at: datetime | None = None
    completed_at: datetime | None = None


class ImportedRun(BaseModel):
    """A legacy record mapped onto the new structure, ready to store."""

    id: str
    request: str
    status: str
    stages: list[dict[str, Any]]
    final_answer: str | None
    extra: dict[str, Any]
    started_at: datetime | None
    finished_at: datetime | None


def _first_text(data: Any, keys: tuple[str, ...]) -> str | None:
    if isinstance(data, str) and data.strip():
        return data
    if isinstance(data, dict):
        for key in keys:
            value = data.get(key)
            if isinstance(value, str) and value.strip():
                return value
    return None


def convert(record: LegacyRecord) -> ImportedRun:
    """Map one record; unknown keys (of ``input_data`` and of the row) are kept in ``extra``."""
    data = record.input_data
    stages = [
        {"phase": phase, "number": number, "stage": stage, "legacy_key": key, "data": data[key]}
        for key, (phase, number, stage) in sorted(LEGACY_STAGES.items(), key=lambda i: i[1][1])
        if key in data
    ]
    unknown = {k: v for k, v in data.items() if k not in LEGACY_STAGES}
    request = _first_text(record.model_extra or {}, _REQUEST_KEYS) or _first_text(
        data, _REQUEST_KEYS
    )
    if request is None:
        request = _first_text(data.get("task_decomposition"), _REQUEST_KEYS) or "(legacy record)"
    return ImportedRun(
        id=record.id,
        request=request,
        status=_STATUS.get(record.status.lower(), record.status.lower()),
        stages=stages,
        final_answer=_first_text(data.get("response_generation"), _ANSWER_KEYS),
        extra={
            "legacy": True,
            "legacy_status": record.status,
            "legacy_unknown": unknown,
            "legacy_row": record.model_extra or {},
        },
        started_at=record.created_at,
        finished_at=record.completed_at,
    )


def read_legacy(path: str | Path) -> list[ImportedRun]:
    """Records from a JSON file (one object, a list, or JSON lines), converted.

    Raises:
        InvalidRequestError: the file is unreadable, not JSON, or a record is malformed
            (its position named).
    """
    path = Path(path)
    text = read_user_file(path, _MAX_BYTES)
    try:
        data: Any = parse_data(text, source=str(path), json_only=True)
    except InvalidRequestError as whole:
        if not isinstance(whole.__cause__, json.JSONDecodeError):
            raise  # parsed, but nested too deep
        try:
            data = [
                parse_data(line, source=f"{path} line {i}", json_only=True)
                for i, line in enumerate(text.splitlines(), 1)
                if line.strip()
            ]
        except InvalidRequestError as exc:
            raise InvalidRequestError(f"{path} is neither JSON nor JSON lines: {exc}") from exc
    records = data if isinstance(data, list) else [data]
    runs = []
    for i, item in enumerate(records):
        try:
            runs.append(convert(LegacyRecord.model_validate(item)))
        except ValidationError as exc:
            raise InvalidRequestError(
                f"{path}: record {i + 1} is not a legacy execution: {describe_fields(exc)}"
            ) from exc
    return runs
