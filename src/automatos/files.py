"""Reading the files users hand the engine (recipes, plans, agents, records, labelled sets).

What a user hands in is read within bounds: a size limit, UTF-8, and a nesting limit on its
JSON or YAML, which the parsers would otherwise meet as a ``RecursionError``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from automatos.errors import InvalidRequestError

if TYPE_CHECKING:
    import yaml

__all__ = ["MAX_NESTING", "parse_data", "read_user_file"]

MAX_NESTING = 32
"""Deepest nesting of lists and mappings in a user's JSON or YAML; a recipe needs four levels
(the recipe, its subtasks, a subtask, its dependencies)."""


def read_user_file(path: str | Path, max_bytes: int, *, setting: str | None = None) -> str:
    """The UTF-8 text of ``path``; ``setting`` names the setting behind ``max_bytes``, if any.

    Raises:
        InvalidRequestError: the file is missing, unreadable, larger than ``max_bytes`` or not
            UTF-8; the message names the file and the problem.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            where = f" (setting {setting})" if setting else ""
            raise InvalidRequestError(f"{path} is {size} bytes; the limit is {max_bytes}{where}")
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidRequestError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise InvalidRequestError(f"{path} is not UTF-8 text") from exc


def parse_data(
    text: str, *, source: str, json_only: bool = False, max_depth: int = MAX_NESTING
) -> Any:
    """The JSON or YAML document in ``text``, nested at most ``max_depth`` levels.

    Text that starts with ``{`` is parsed as JSON (whose errors read better than YAML's for
    it), other text as YAML, unless ``json_only``.

    Raises:
        InvalidRequestError: the text does not parse, or is nested deeper; the message names
            ``source``.
    """
    import yaml  # here: reading a labelled JSONL file needs no YAML

    too_deep = InvalidRequestError(
        f"{source} is nested more than {max_depth} levels deep (lists and mappings inside "
        "each other)"
    )
    try:
        if json_only or text.lstrip().startswith("{"):
            data = json.loads(text)
        else:
            # A SafeLoader, bounded: scalars sit one level below the deepest list or mapping.
            data = yaml.load(text, Loader=_bounded_loader(max_depth + 1))
    except (RecursionError, _TooDeepError):
        raise too_deep from None
    except json.JSONDecodeError as exc:
        kind = "JSON" if json_only else "JSON or YAML"
        raise InvalidRequestError(f"{source} is not valid {kind}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise InvalidRequestError(f"{source} is not valid JSON or YAML: {exc}") from exc
    if _deeper_than(data, max_depth):
        raise too_deep
    return data


class _TooDeepError(Exception):
    """Raised inside the YAML composer; turned into InvalidRequestError by parse_data."""


def _bounded_loader(max_depth: int) -> type[yaml.SafeLoader]:
    """A safe YAML loader that stops at ``max_depth`` nodes deep, before recursion runs out."""
    import yaml

    class BoundedLoader(yaml.SafeLoader):
        depth = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            self.depth += 1
            try:
                if self.depth > max_depth:
                    raise _TooDeepError
                return super().compose_node(parent, index)
            finally:
                self.depth -= 1

    return BoundedLoader


def _deeper_than(data: Any, max_depth: int) -> bool:
    """Whether lists and mappings nest deeper than ``max_depth`` (iteratively: no recursion)."""
    stack = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children = list(node.values())
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > max_depth:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False
