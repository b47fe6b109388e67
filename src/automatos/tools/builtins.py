"""The tools every engine can give its agents: a calculator, the current time, reading a
file under one directory, and searching the knowledge base. There is no shell tool.

Each refuses what a model should not get, or could use to stall the engine, with a message
that tells the model what to change: the calculator evaluates arithmetic from the syntax tree
(never ``eval``) within bounds on the expression's length and depth and on the numbers it
makes; ``read_file`` reads UTF-8 text under its root only, whatever ``..`` or symbolic links
the path holds, and at most ``max_bytes`` of it.
"""

from __future__ import annotations

import ast
import asyncio
import codecs
import math
import os
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field

from automatos.errors import ConfigurationError, ToolArgumentsError, ToolFailedError
from automatos.tools.function import FunctionTool
from automatos.tools.registry import ToolRegistry

if TYPE_CHECKING:
    from automatos.retrieval.base import KnowledgeStore, Vectors
    from automatos.retrieval.embedder import Embedder
    from automatos.retrieval.pool import ContextSource, Pool

__all__ = [
    "BUILTIN_NAMES",
    "MAX_EXPRESSION_CHARS",
    "MAX_PASSAGES",
    "MAX_READ_BYTES",
    "KnowledgeBase",
    "Passage",
    "builtin_tools",
    "calculator",
    "current_time",
    "default_registry",
    "read_file_tool",
    "search_knowledge_base_tool",
]

BUILTIN_NAMES = ("calculator", "current_time", "read_file", "search_knowledge_base")
"""The names the built-in tools are registered under."""

MAX_EXPRESSION_CHARS = 1_000
"""The longest expression the calculator reads."""
MAX_READ_BYTES = 100_000
"""The most bytes ``read_file`` reads of a file by default; a longer file is cut there."""
MAX_PASSAGES = 20
"""The most passages one knowledge-base search returns."""

_MAX_DEPTH = 60
"""The deepest expression tree the calculator walks (``-(-(-(…))))`` included)."""
_MAX_EXPONENT = 1_000
"""The largest integer exponent, in size: ``9 ** 9 ** 9`` would take minutes and megabytes."""
_MAX_INT_BITS = 4_000
"""The largest integer the calculator makes (about 1,200 digits)."""
_MAX_NDIGITS = 100
"""The most digits ``round`` may be asked to round to, either side of the point."""
_MAX_ZONE_CHARS = 64
_MAX_QUERY_CHARS = 2_000
_NOTE_CHARS = 200
"""Room left for ``read_file``'s truncation note in the tool's result."""


# --- calculator ---------------------------------------------------------------------------

Number = int | float


class _Refused(Exception):
    """The expression is not one the calculator evaluates: the model must rewrite it."""


class _Failed(Exception):
    """The expression is fine but its value cannot be computed (division by zero...)."""


def _round(value: Number, ndigits: Number | None = None) -> Number:
    if ndigits is None:
        return round(value)
    if not isinstance(ndigits, int) or abs(ndigits) > _MAX_NDIGITS:
        raise _Refused(f"round's second argument must be a whole number from -{_MAX_NDIGITS} "
                       f"to {_MAX_NDIGITS}")  # fmt: skip
    return round(value, ndigits)


def _log(value: Number, base: Number | None = None) -> float:
    return math.log(value) if base is None else math.log(value, base)


def _min(*values: Number) -> Number:
    return min(values)


def _max(*values: Number) -> Number:
    return max(values)


_FUNCTIONS: dict[str, tuple[Callable[..., Number], int, int]] = {
    # name: (function, fewest arguments, most arguments)
    "sqrt": (math.sqrt, 1, 1),
    "log": (_log, 1, 2),
    "log10": (math.log10, 1, 1),
    "exp": (math.exp, 1, 1),
    "sin": (math.sin, 1, 1),
    "cos": (math.cos, 1, 1),
    "tan": (math.tan, 1, 1),
    "abs": (abs, 1, 1),
    "round": (_round, 1, 2),
    "min": (_min, 1, 50),
    "max": (_max, 1, 50),
    "floor": (math.floor, 1, 1),
    "ceil": (math.ceil, 1, 1),
}
_CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e}
_OPERATORS: dict[type[ast.operator], Callable[[Number, Number], Number]] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.FloorDiv: lambda a, b: a // b,
    ast.Mod: lambda a, b: a % b,
}
_WHAT_IS_ALLOWED = (
    "use numbers, + - * / // % **, parentheses, the functions "
    + ", ".join(_FUNCTIONS)
    + " and the constants pi and e"
)
_NOT_ALLOWED: dict[type[ast.AST], str] = {
    ast.Attribute: "attribute access (a.b)",
    ast.Subscript: "indexing (a[b])",
    ast.Compare: "comparisons",
    ast.BoolOp: "and/or",
    ast.Lambda: "lambda",
    ast.IfExp: "if/else",
    ast.NamedExpr: "assignment (:=)",
    ast.JoinedStr: "strings",
    ast.List: "lists",
    ast.Tuple: "tuples",
    ast.Dict: "dicts",
    ast.Set: "sets",
    ast.ListComp: "comprehensions",
    ast.GeneratorExp: "comprehensions",
}


def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression and return its value.

    Supports numbers, + - * / // % ** (power), parentheses, the functions sqrt, log (natural,
    or log(x, base)), log10, exp, sin, cos, tan (radians), abs, round, min, max, floor, ceil,
    and the constants pi and e. Example: "sqrt(2) * (3 + 4) ** 2".

    Args:
        expression: the expression, e.g. "(17 + 5) / 4" or "round(pi * 3 ** 2, 2)".
    """
    name = "calculator"
    text = expression.strip()
    if not text:
        raise ToolArgumentsError(name, "the expression is empty")
    if len(text) > MAX_EXPRESSION_CHARS:
        raise ToolArgumentsError(
            name,
            f"the expression is {len(text)} characters long; the limit is "
            f"{MAX_EXPRESSION_CHARS}: split the computation into steps",
        )
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise ToolArgumentsError(
            name, f"not a valid expression ({exc.msg}); {_WHAT_IS_ALLOWED}"
        ) from None
    except (RecursionError, MemoryError, ValueError):  # a parser's own limits
        raise ToolArgumentsError(name, "the expression is too complex to read") from None
    try:
        value = _evaluate(tree.body, 0)
    except _Refused as exc:
        raise ToolArgumentsError(name, str(exc)) from None
    except RecursionError:
        raise ToolArgumentsError(name, "the expression is too complex to read") from None
    except _Failed as exc:
        raise ToolFailedError(name, str(exc)) from None
    except ZeroDivisionError:
        raise ToolFailedError(name, "division by zero") from None
    except OverflowError:
        raise ToolFailedError(name, "the result is too large to compute") from None
    return _shown_number(value)


def _shown_number(value: Number) -> str:
    if isinstance(value, int):
        return str(value)
    # 15 significant digits: 0.1 + 0.2 is 0.3, not 0.30000000000000004
    return format(value, ".15g")


def _evaluate(node: ast.expr, depth: int) -> Number:
    if depth > _MAX_DEPTH:
        raise _Refused(f"the expression is nested more than {_MAX_DEPTH} levels deep")
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool) or not isinstance(value, int | float):  # bool is an int
            # its type, not the value: what is recorded of a call never holds its arguments
            raise _Refused(f"a {type(value).__name__} is not a number; {_WHAT_IS_ALLOWED}")
        return _checked(value)
    if isinstance(node, ast.Name):
        if node.id in _CONSTANTS:
            return _CONSTANTS[node.id]
        if node.id in _FUNCTIONS:
            raise _Refused(f"{node.id} is a function: call it, e.g. {node.id}(2)")
        raise _Refused(f"unknown name {node.id[:40]!r}; {_WHAT_IS_ALLOWED}")
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.UAdd | ast.USub):
        operand = _evaluate(node.operand, depth + 1)
        return operand if isinstance(node.op, ast.UAdd) else -operand
    if isinstance(node, ast.BinOp):
        # The left spine of a chain (1 + 2 + 3 + ...) is a sum, not a nesting: a column of
        # numbers added up is not refused as deep. (1,000 characters bound its length.)
        left = _evaluate(node.left, depth if isinstance(node.left, ast.BinOp) else depth + 1)
        right = _evaluate(node.right, depth + 1)
        if isinstance(node.op, ast.Pow):
            return _power(left, right)
        operator = _OPERATORS.get(type(node.op))
        if operator is None:
            hint = ": for a power write **" if isinstance(node.op, ast.BitXor) else ""
            raise _Refused(f"the operator {_symbol(node.op)} is not supported{hint}; "
                           f"{_WHAT_IS_ALLOWED}")  # fmt: skip
        return _checked(operator(left, right))
    if isinstance(node, ast.Call):
        return _call(node, depth)
    what = _NOT_ALLOWED.get(type(node), type(node).__name__)
    raise _Refused(f"{what} is not allowed; {_WHAT_IS_ALLOWED}")


def _call(node: ast.Call, depth: int) -> Number:
    if not isinstance(node.func, ast.Name):  # os.system(...), (lambda: 1)()
        what = _NOT_ALLOWED.get(type(node.func), "calling what is not a function name")
        raise _Refused(f"{what} is not allowed; {_WHAT_IS_ALLOWED}")
    if node.func.id not in _FUNCTIONS:
        raise _Refused(f"unknown function {node.func.id[:40]!r}; {_WHAT_IS_ALLOWED}")
    name = node.func.id
    function, fewest, most = _FUNCTIONS[name]
    if node.keywords or any(isinstance(arg, ast.Starred) for arg in node.args):
        raise _Refused(f"{name} takes plain arguments, without names or *")
    if not fewest <= len(node.args) <= most:
        count = str(fewest) if fewest == most else f"{fewest} to {most}"
        raise _Refused(f"{name} takes {count} argument{'' if most == 1 else 's'}, "
                       f"not {len(node.args)}")  # fmt: skip
    args = [_evaluate(arg, depth + 1) for arg in node.args]
    try:
        return _checked(function(*args))
    except ValueError as exc:  # math's domain errors: sqrt(-1), log(0)
        raise _Failed(f"{name}: {exc} for these arguments") from None


def _power(base: Number, exponent: Number) -> Number:
    if isinstance(exponent, int) and abs(exponent) > _MAX_EXPONENT and abs(base) != 1:
        raise _Refused(f"exponents larger than {_MAX_EXPONENT} are not computed")
    if (
        isinstance(base, int)
        and isinstance(exponent, int)
        and exponent > 0
        and abs(base) > 1
        # base ** exponent has at least this many bits: refused before it is computed
        and (abs(base).bit_length() - 1) * exponent > _MAX_INT_BITS
    ):
        raise _Refused(
            f"the result would have more than {_MAX_INT_BITS * 3 // 10} digits; "
            "compute with logarithms instead"
        )
    result = base**exponent
    if isinstance(result, complex):
        raise _Failed("a negative number to a fractional power is not a real number")
    return _checked(result)


def _checked(value: Number) -> Number:
    if isinstance(value, int):
        if value.bit_length() > _MAX_INT_BITS:
            raise _Refused(f"a number has more than {_MAX_INT_BITS * 3 // 10} digits")
        return value
    if not math.isfinite(value):
        raise _Failed("the result is too large to compute (it overflows)")
    return value


def _symbol(op: ast.operator) -> str:
    symbols = {ast.BitXor: "^", ast.BitAnd: "&", ast.BitOr: "|", ast.LShift: "<<",
               ast.RShift: ">>", ast.MatMult: "@"}  # fmt: skip
    return symbols.get(type(op), type(op).__name__)


# --- current time -------------------------------------------------------------------------


def current_time(
    timezone: Annotated[str, Field(max_length=_MAX_ZONE_CHARS)] = "UTC",
) -> str:
    """The current date and time (ISO 8601) and the day of the week, in a time zone.

    Args:
        timezone: an IANA time zone name, e.g. "UTC", "Europe/Paris", "America/New_York".
    """
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        # OSError: a name that is a directory of the zone database ("America")
        raise ToolArgumentsError(
            "current_time",
            f"unknown time zone {timezone!r}: use an IANA name such as 'UTC', "
            "'Europe/Paris' or 'America/New_York'",
        ) from None
    now = datetime.now(zone)
    return f"{now.isoformat(timespec='seconds')} ({now:%A}, {timezone})"


# --- reading files ------------------------------------------------------------------------


def read_file_tool(root: str | Path, *, max_bytes: int = MAX_READ_BYTES) -> FunctionTool:
    """The ``read_file`` tool, reading UTF-8 text files under ``root`` only.

    A path must be relative to ``root`` and stay under it: absolute paths, ``..`` and
    symbolic links that lead out of ``root`` are refused, and so are directories, files that
    are not regular files (a FIFO would block), binary files and text that is not UTF-8. At
    most ``max_bytes`` are read; a longer file is cut there, with a note.

    Raises:
        ConfigurationError: ``root`` is not a directory, or ``max_bytes`` is below 1.
    """
    try:
        base = Path(root).resolve(strict=True)
    except (OSError, RuntimeError) as exc:
        raise ConfigurationError(
            f"the read_file tool's directory {root} cannot be used: {_reason(exc)}"
        ) from exc
    if not base.is_dir():
        raise ConfigurationError(f"the read_file tool's directory {root} is not a directory")
    if max_bytes < 1:
        raise ConfigurationError("the read_file tool's max_bytes must be at least 1")

    def read_file(path: str) -> str:
        """Read a UTF-8 text file from the directory this tool may read.

        Args:
            path: the file's path relative to that directory, e.g. "notes/todo.md".
        """
        return _read_under(base, path, max_bytes)

    return FunctionTool.from_function(read_file, max_result_chars=max_bytes + _NOTE_CHARS)


def _read_under(base: Path, path: str, max_bytes: int) -> str:
    name = "read_file"
    if not path.strip():
        raise ToolArgumentsError(name, "the path is empty")
    if "\0" in path:
        raise ToolArgumentsError(name, "the path holds a NUL character")
    shown = path if len(path) <= 200 else path[:200] + "…"
    relative = PurePath(path)
    if relative.is_absolute() or path.startswith(("/", "\\", "~")):
        raise ToolArgumentsError(
            name, f"{shown!r} is not a relative path: name the file relative to the directory"
        )
    if ".." in relative.parts:
        raise ToolArgumentsError(name, f"{shown!r} goes up with '..'; that is not allowed")
    try:
        # not strict: where a link leads is checked before whether it exists, so that the
        # tool tells nothing of what exists outside its directory
        target = (base / relative).resolve()
    except (OSError, RuntimeError) as exc:  # a loop of links, a permission
        raise ToolFailedError(name, f"cannot read {shown!r}: {_reason(exc)}") from None
    if not target.is_relative_to(base):
        raise ToolArgumentsError(
            name, f"{shown!r} leads outside the directory this tool may read (a link)"
        )
    if not target.exists():
        raise ToolFailedError(name, f"there is no file {shown!r}")
    if target.is_dir():
        raise ToolArgumentsError(name, f"{shown!r} is a directory; name a file in it")
    return _read_text(target, shown, max_bytes)


def _read_text(target: Path, shown: str, max_bytes: int) -> str:
    name = "read_file"
    # O_NOFOLLOW: the file resolved above may have become a link since; O_NONBLOCK: opening a
    # FIFO must not wait for a writer (it is refused below, as not a regular file)
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        descriptor = os.open(target, flags)
    except OSError as exc:
        raise ToolFailedError(name, f"cannot read {shown!r}: {_reason(exc)}") from None
    with os.fdopen(descriptor, "rb") as file:
        info = os.fstat(file.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise ToolArgumentsError(name, f"{shown!r} is not a regular file")
        try:
            data = file.read(max_bytes + 1)
        except OSError as exc:
            raise ToolFailedError(name, f"cannot read {shown!r}: {_reason(exc)}") from None
    cut = len(data) > max_bytes
    data = data[:max_bytes]
    if b"\0" in data:
        raise ToolFailedError(name, f"{shown!r} is a binary file, not text")
    try:
        # a cut may fall inside a character: the decoder then leaves its first bytes out
        text = codecs.getincrementaldecoder("utf-8")().decode(data, final=not cut)
    except UnicodeDecodeError as exc:
        raise ToolFailedError(
            name, f"{shown!r} is not UTF-8 text (byte {exc.start} is not UTF-8)"
        ) from None
    if cut:
        size = max(info.st_size, max_bytes + 1)
        text += f"\n[truncated: the file is {size} bytes; the first {max_bytes} are shown]"
    return text


def _reason(exc: BaseException) -> str:
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__


# --- knowledge base -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Passage:
    """A chunk of the knowledge base found by a search.

    Attributes:
        source: the path of its document.
        text: its text (it starts with its headings).
        score: its cosine with the query, from -1 to 1.
    """

    source: str
    text: str
    score: float


class KnowledgeBase:
    """The workspace's knowledge base, searched by meaning as ``automatos kb search`` does.

    Searching goes through a :class:`~automatos.retrieval.pool.ContextSource`: give the one
    stage 3 uses, and the two share the vectors loaded (reloaded only when the knowledge base
    changes); given an embedder, a source of its own is made.
    """

    def __init__(self, store: KnowledgeStore, source: ContextSource | Embedder) -> None:
        from automatos.retrieval.pool import ContextSource

        self.store = store
        self.source = source if isinstance(source, ContextSource) else ContextSource(source)

    async def search(self, query: str, k: int = 5) -> list[Passage]:
        """The ``k`` chunks nearest ``query``, best first (none when the knowledge base has
        no chunk embedded by this source's embedder).

        Raises:
            AutomatosError: the store or the embedder failed.
            ValueError: the vectors kept are not of the embedder's dimension.
        """
        pool = await self.source.pool(self.store, memories=False)
        if not pool.chunks or k < 1:
            return []
        vectors = await self.source.embedder.embed([query])
        # a product over every chunk's vector: milliseconds for a large knowledge base, off the loop
        return await asyncio.to_thread(_nearest, pool, vectors[0], k)


def _nearest(pool: Pool, query: Vectors, k: int) -> list[Passage]:
    from automatos.retrieval.index import ExactIndex

    hits = ExactIndex(pool.matrix).search(query, k)
    return [Passage(pool.sources[hit.row], pool.texts[hit.row], hit.score) for hit in hits]


def search_knowledge_base_tool(kb: KnowledgeBase) -> FunctionTool:
    """The ``search_knowledge_base`` tool over ``kb``."""

    async def search_knowledge_base(
        query: Annotated[str, Field(min_length=1, max_length=_MAX_QUERY_CHARS)],
        k: Annotated[int, Field(ge=1, le=MAX_PASSAGES)] = 5,
    ) -> str:
        """Search the workspace's knowledge base (its documents) for passages about a query,
        by meaning; returns the best passages with the document each comes from.

        Args:
            query: what to look for, in words, e.g. "how to configure the database".
            k: how many passages to return.
        """
        if not query.strip():
            raise ToolArgumentsError("search_knowledge_base", "the query is blank")
        passages = await kb.search(query, k)
        if not passages:
            return "The knowledge base has no documents to search."
        return "\n\n".join(
            f"[{rank}] {p.source} (relevance {p.score:.2f})\n{p.text}"
            for rank, p in enumerate(passages, start=1)
        )

    return FunctionTool.from_function(search_knowledge_base)


# --- all of them --------------------------------------------------------------------------


def builtin_tools(
    *, read_root: str | Path | None = None, kb: KnowledgeBase | None = None
) -> list[FunctionTool]:
    """The built-in tools: the calculator and the current time always, ``read_file`` when
    given a directory, ``search_knowledge_base`` when given a knowledge base.

    Raises:
        ConfigurationError: ``read_root`` is not a directory.
    """
    tools = [FunctionTool.from_function(calculator), FunctionTool.from_function(current_time)]
    if read_root is not None:
        tools.append(read_file_tool(read_root))
    if kb is not None:
        tools.append(search_knowledge_base_tool(kb))
    return tools


def default_registry(
    read_root: str | Path | None = None,
    kb: KnowledgeBase | None = None,
    *,
    extra: Sequence[FunctionTool] = (),
) -> ToolRegistry:
    """A registry of :func:`builtin_tools` and ``extra``.

    Raises:
        ConfigurationError: ``read_root`` is not a directory, or two tools share a name.
    """
    return ToolRegistry([*builtin_tools(read_root=read_root, kb=kb), *extra])
