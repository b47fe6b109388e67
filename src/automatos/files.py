"""Reading the files users hand the engine (recipes, plans, agents, records, labelled sets).

What a user hands in is read within bounds: a size limit, UTF-8, and a nesting limit on its
JSON or YAML, which the parsers would otherwise meet as a ``RecursionError``.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any

from automatos.errors import InvalidRequestError

if TYPE_CHECKING:
    import yaml

__all__ = ["MAX_NESTING", "check_utf8", "parse_data", "read_user_bytes", "read_user_file"]

MAX_NESTING = 32
"""Deepest nesting of lists and mappings in a user's JSON or YAML; a recipe needs four levels
(the recipe, its subtasks, a subtask, its dependencies)."""


def read_user_bytes(path: str | Path, max_bytes: int, *, setting: str | None = None) -> bytes:
    """The bytes of ``path``; ``setting`` names the setting behind ``max_bytes``, if any.

    At most ``max_bytes + 1`` bytes are read, whatever the file claims to be: ``/dev/zero``,
    a named pipe or a shell's ``<(command)`` has no size to check beforehand, and is refused
    as soon as it gives more than ``max_bytes``.

    Raises:
        InvalidRequestError: the file is missing, unreadable or larger than ``max_bytes``;
            the message names the file and the problem.
    """
    path = Path(path)
    try:
        with path.open("rb") as file:
            info = os.fstat(file.fileno())
            regular = stat.S_ISREG(info.st_mode)
            too_large = regular and info.st_size > max_bytes
            data = b"" if too_large else file.read(max_bytes + 1)
    except OSError as exc:
        raise InvalidRequestError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if too_large or len(data) > max_bytes:
        size = f"{info.st_size} bytes" if too_large else f"more than {max_bytes} bytes"
        where = f" (setting {setting})" if setting else ""
        raise InvalidRequestError(f"{path} is {size}; the limit is {max_bytes}{where}")
    return data


def read_user_file(path: str | Path, max_bytes: int, *, setting: str | None = None) -> str:
    """The UTF-8 text of ``path`` (newlines as ``\\n``), read as :func:`read_user_bytes`.

    Raises:
        InvalidRequestError: the file is missing, unreadable, larger than ``max_bytes`` or not
            UTF-8; the message names the file and the problem.
    """
    data = read_user_bytes(path, max_bytes, setting=setting)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRequestError(f"{path} is not UTF-8 text") from exc
    # as a file opened as text reads it: "\r\n" and "\r" end lines too
    return text.replace("\r\n", "\n").replace("\r", "\n")


def check_utf8(text: str, source: str) -> str:
    """``text`` as it is, if it came from UTF-8 bytes.

    Standard input and the command line reach Python with undecodable bytes kept as lone
    surrogates ("surrogateescape"), which nothing downstream can store or encode.

    Raises:
        InvalidRequestError: naming ``source`` and where the first such byte is.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        byte = ord(text[exc.start]) - 0xDC00 if 0xDC80 <= ord(text[exc.start]) <= 0xDCFF else None
        what = (
            f"byte 0x{byte:02x}" if byte is not None else f"code point U+{ord(text[exc.start]):04X}"
        )
        raise InvalidRequestError(
            f"{source} is not UTF-8 text ({what} at character {exc.start})"
        ) from None
    return text


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
        raise InvalidRequestError(
            f"{source} is not valid JSON or YAML: {_yaml_problem(exc)}"
        ) from exc
    if _deeper_than(data, max_depth):
        raise too_deep
    return data


def _yaml_problem(exc: Exception) -> str:
    """A YAML error on one line: what is wrong and where (PyYAML draws it over several)."""
    problem = getattr(exc, "problem", None)
    mark = getattr(exc, "problem_mark", None)
    if problem and mark is not None:
        return f"{problem} (line {mark.line + 1}, column {mark.column + 1})"
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


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
    """Whether lists and mappings nest deeper than ``max_depth`` (iteratively: no recursion).

    A node reached again (YAML aliases share nodes: ten lists of ten references each would
    be ten billion paths) is walked again only when reached deeper than before.
    """
    deepest: dict[int, int] = {}
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
        if deepest.get(id(node), 0) >= depth:
            continue
        deepest[id(node)] = depth
        stack.extend((child, depth + 1) for child in children)
    return False
