"""The one calculation a short task asks for, and whether an answer gives its result.

"What is 17 * 23?", "How much is 15% of 80?", "What is 2 to the power of 10?": the result
is known without a model, so an answer can be checked, not only read. Numbers are parsed
from the task's own text (operators as symbols or words) and evaluated by walking the
expression's syntax tree: nothing is executed.
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Collection
from typing import NamedTuple

__all__ = ["Sum", "claims_result", "gives", "numbers_in", "sum_in"]

MAX_WORDS = 12
"""A number in a longer text is data or a count, not a sum to do."""

_NUMBER = re.compile(r"(?<![\w.])-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?")
_SPOKEN = (
    (re.compile(r"\bto the power of\b", re.I), " ** "),
    (re.compile(r"\b(?:times|multiplied by)\b", re.I), " * "),
    (re.compile(r"\bdivided by\b", re.I), " / "),
    (re.compile(r"\bplus\b", re.I), " + "),
    (re.compile(r"\bminus\b", re.I), " - "),
    (re.compile(r"(?<=\d)\s*[x×]\s*(?=\d)"), " * "),
    (re.compile(r"÷"), " / "),
    (re.compile(r"\^"), " ** "),
)
_PERCENT_OF = re.compile(r"(\d+(?:\.\d+)?)\s*%\s*of\s*\$?(\d+(?:\.\d+)?)", re.I)
_ROOT_OF = re.compile(r"square root of\s*(\d+(?:\.\d+)?)", re.I)
_EXPRESSION = re.compile(r"[\d(][\d\s.()+\-*/]*\d\)*")
# A hyphen between numbers is a range ("3-5 sentences") unless it stands apart.
_OPERATION = re.compile(r"\d\s*\)*(?:\s*(?:\*\*|[+*/])\s*|\s+-\s+)\(*\s*\d")
_CLAIM_WORDS = 15
# What any sum has, looked for first: most texts with a number are not sums.
_OPERATOR = re.compile(
    r"\d\s*(?:[-+*/x×÷^%]|times|plus|minus|divided|multiplied|to the power)|root of", re.I
)


class Sum(NamedTuple):
    """A calculation a text asks for: its result, and the numbers it is made of."""

    value: float
    operands: frozenset[str]


def numbers_in(text: str) -> set[str]:
    """The numbers written in ``text``, without signs or thousands separators."""
    return {n.replace(",", "").lstrip("-") for n in _NUMBER.findall(text)}


def _evaluate(node: ast.AST) -> float:
    if isinstance(node, ast.Expression):
        return _evaluate(node.body)
    value = node.value if isinstance(node, ast.Constant) else None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        value = _evaluate(node.operand)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp):
        a, b = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Add):
            return a + b
        if isinstance(node.op, ast.Sub):
            return a - b
        if isinstance(node.op, ast.Mult):
            return a * b
        if isinstance(node.op, ast.Div) and b:
            return a / b
        # Small powers only: 10 ** 10 ** 10 is no question anyone asks.
        if isinstance(node.op, ast.Pow) and abs(b) <= 64 and abs(a) <= 1e6 and (a or b > 0):
            return float(a**b)
    raise ValueError("not a sum of numbers")


def sum_in(text: str) -> Sum | None:
    """The one calculation a short text asks for, or ``None`` (none, several, or the text
    is longer than :data:`MAX_WORDS` words)."""
    if len(text.split()) > MAX_WORDS or not _OPERATOR.search(text):
        return None
    spoken = _PERCENT_OF.sub(r"(\1 / 100 * \2)", text)
    spoken = _ROOT_OF.sub(r"(\1 ** 0.5)", spoken)
    for pattern, symbol in _SPOKEN:
        spoken = pattern.sub(symbol, spoken)
    found = [m.group().strip() for m in _EXPRESSION.finditer(spoken)]
    found = [f for f in found if _OPERATION.search(f)]
    if len(found) != 1:
        return None
    try:
        value = _evaluate(ast.parse(found[0], mode="eval"))
    except (SyntaxError, ValueError, ArithmeticError, RecursionError):
        return None
    if not math.isfinite(value):
        return None
    return Sum(value, frozenset(numbers_in(text)))


def gives(value: float, numbers: Collection[str]) -> bool:
    """Whether one of ``numbers`` is ``value`` (to the decimals it is written with; signs
    are not compared, :func:`numbers_in` drops them)."""
    value = abs(value)
    whole = value == round(value)
    for text in numbers:
        number = float(text)
        decimals = len(text.partition(".")[2])
        if whole and number == value:
            return True
        if not whole and decimals and round(value, decimals) == number:
            return True
    return False


def claims_result(answer: str, numbers: Collection[str], asked: Sum) -> bool:
    """Whether an answer states a result of a calculation: an equation, or a short answer
    with a number that is not one of the sum's own."""
    if "=" in answer:
        return True
    return len(answer.split()) <= _CLAIM_WORDS and any(n not in asked.operands for n in numbers)
