"""Reading the files users hand the engine (recipes, plans, agents, records, labelled sets)."""

from __future__ import annotations

from pathlib import Path

from automatos.errors import InvalidRequestError

__all__ = ["read_user_file"]


def read_user_file(path: str | Path, max_bytes: int) -> str:
    """The UTF-8 text of ``path``.

    Raises:
        InvalidRequestError: the file is missing, unreadable, larger than ``max_bytes`` or not
            UTF-8; the message names the file and the problem.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise InvalidRequestError(f"{path} is {size} bytes; the limit is {max_bytes}")
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidRequestError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise InvalidRequestError(f"{path} is not UTF-8 text") from exc
