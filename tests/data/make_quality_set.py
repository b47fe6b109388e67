"""Builds ``quality.jsonl``: labelled answers for the quality benchmark, from real text.

The real text is the documentation that ships with Python: each task asks what a standard
library function does; its good answer is that function's docstring, written by the people
who wrote the function. The bad answers are made from the same real text in the ways agents
fail: off-topic (another module's documentation), truncated, repetitive, contradicting the
question, empty, a refusal, an answer to a different subtask (a sibling function's
documentation), and a deferral: the task said back as a promise or a plan, with nothing
done (what small models write in place of an answer).

Short questions with short answers (``short_answer``, good): a sum, an HTTP status, a day of
the week, the days of a month, a character's Unicode name, each answered by what Python
itself computes ("391", "Not Found", "Saturday."): a correct bare answer must pass.

Then what the embedded model wrote, as the engine runs it (``embedded.jsonl``, written by
``make_embedded_outputs.py`` and labelled by reading every line): its right answers
(``embedded_good``), answers about another subject than the request's
(``embedded_off_subject``), answers that only say the task or the request back, reworded,
or say what the thing asked for is instead of making it (``embedded_restatement``), and
wrong results of the sum asked (``embedded_wrong_result``). What it wrote on the subject and
in an answer's form but wrong or thin ("Which planet is closest to the Sun?": "Earth.") is
``embedded_poor``, without a label: no heuristic of form and subject can tell it from a
right answer, that is the judge's work; the benchmark shows how it scores, outside the AUC.
Lines whose task is a step of a larger request carry the ``request``.

Run it again to rebuild the file; the choices are seeded.

    python tests/data/make_quality_set.py
"""

from __future__ import annotations

import calendar
import http
import importlib
import inspect
import json
import random
import re
import unicodedata
from pathlib import Path

EMBEDDED = Path(__file__).with_name("embedded.jsonl")

MODULES = [
    "json",
    "os.path",
    "re",
    "collections",
    "itertools",
    "functools",
    "textwrap",
    "shutil",
    "subprocess",
    "statistics",
    "string",
    "heapq",
    "bisect",
    "urllib.parse",
    "csv",
    "zipfile",
    "gzip",
    "logging",
    "difflib",
    "fnmatch",
    "glob",
    "tempfile",
    "base64",
    "hashlib",
    "hmac",
    "secrets",
    "uuid",
    "ipaddress",
    "calendar",
    "copy",
    "pprint",
    "shlex",
    "struct",
    "zlib",
    "textwrap",
    "inspect",
    "operator",
    "contextlib",
    "dataclasses",
    "enum",
    "fractions",
    "decimal",
    "random",
    "math",
    "pickle",
    "sqlite3",
    "socket",
    "threading",
    "asyncio",
    "html",
    "xml.etree.ElementTree",
    "email.utils",
    "http.client",
    "mimetypes",
    "platform",
]
REFUSALS = [
    "I'm sorry, but I can't help with that request.",
    "As an AI language model, I am unable to provide that information.",
    "I cannot assist with this task. Please consult the official documentation instead.",
    "Unfortunately I don't have enough information to answer this question.",
]

DEFERRALS = [
    "I will explain what {f} does in Python and how to use it.",
    "Sure! Here is an explanation of what {f} does in Python and how you can use it.",
    "To explain what {f} does, I would first look at what it does in Python, then show how to "
    "use it.",
    "Let me explain what {f} does in Python and how to use it in your code.",
    "Okay. I'm going to describe {f}: what it does and how it is used in Python.",
]


def clean(doc: str) -> str:
    return re.sub(r"\s+", " ", doc).strip()


def candidates() -> list[tuple[str, str, str]]:
    found = []
    seen = set()
    for name in dict.fromkeys(MODULES):
        module = importlib.import_module(name)
        for attr, obj in sorted(vars(module).items()):
            if attr.startswith("_") or not (inspect.isfunction(obj) or inspect.isbuiltin(obj)):
                continue
            doc = inspect.getdoc(obj)
            if not doc:
                continue
            text = clean(doc)
            if not 240 <= len(text) <= 1400 or text in seen:
                continue
            seen.add(text)
            found.append((name, attr, text))
    return found


def sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+", text) if s]


def contradict(module: str, name: str, text: str, rng: random.Random) -> str:
    first = sentences(text)[0]
    openers = [
        f"{module}.{name} does not exist; there is no such function in {module}.",
        f"You cannot do this with {module}.{name}: it never does what you describe.",
        f"No, {module}.{name} is not able to do that at all, and it should not be used.",
    ]
    negated = re.sub(r"\b(is|are|returns?|can|will)\b", r"\1 not", first, count=1)
    return f"{rng.choice(openers)} {negated} In fact, the opposite is true."


def short_answers(rng: random.Random) -> list[dict[str, object]]:
    """Short questions with their right answers, computed by Python, in a few forms."""
    pairs: list[tuple[str, str]] = []
    for _ in range(15):
        a, b = rng.randint(2, 99), rng.randint(2, 99)
        op = rng.choice("+-*/")
        if op == "/":
            a *= b
        value = {"+": a + b, "-": a - b, "*": a * b, "/": a // b}[op]
        question = rng.choice(["What is {a} {op} {b}?", "Calculate {a} {op} {b}."])
        answer = rng.choice(["{v}", "{a} {op} {b} = {v}", "The answer is {v}."])
        fields = {"a": a, "b": b, "op": op, "v": value}
        pairs.append((question.format(**fields), answer.format(**fields)))
    for status in rng.sample(list(http.HTTPStatus), 12):
        if rng.random() < 0.5:
            pairs.append(
                (f"What is the reason phrase of HTTP status {status.value}?", status.phrase)
            )
        else:
            pairs.append((f"Which HTTP status code means '{status.phrase}'?", str(status.value)))
    for _ in range(10):
        year, month, day = rng.randint(1950, 2030), rng.randint(1, 12), rng.randint(1, 28)
        weekday = calendar.day_name[calendar.weekday(year, month, day)]
        question = f"What day of the week was {day} {calendar.month_name[month]} {year}?"
        pairs.append((question, rng.choice([f"{weekday}.", f"A {weekday}."])))
    for _ in range(8):
        year, month = rng.randint(1950, 2030), rng.randint(1, 12)
        days = calendar.monthrange(year, month)[1]
        question = f"How many days are in {calendar.month_name[month]} {year}?"
        pairs.append((question, rng.choice([str(days), f"{days} days."])))
    for char in rng.sample("é€ßØ±µ§ñ¿ÆΩπ→✓", 8):
        question = f"What is the Unicode name of the character '{char}'?"
        pairs.append((question, unicodedata.name(char)))
    return [{"task": q, "output": a, "label": 1, "kind": "short_answer"} for q, a in pairs]


def embedded() -> list[dict[str, object]]:
    """The embedded model's labelled outputs, as the quality set holds them."""
    lines = []
    for raw in EMBEDDED.read_text(encoding="utf-8").splitlines():
        found = json.loads(raw)
        line = {"task": found["task"], "output": found["output"]}
        if found["request"] != found["task"]:
            line["request"] = found["request"]
        lines.append({**line, "label": found["label"], "kind": found["kind"]})
    return lines


def main() -> None:
    rng = random.Random(59)
    deferrals = random.Random(60)  # its own stream: adding the kind changed no other line
    pool = candidates()
    rng.shuffle(pool)
    by_module: dict[str, list[tuple[str, str, str]]] = {}
    for item in pool:
        by_module.setdefault(item[0], []).append(item)
    chosen = [item for item in pool if len(by_module[item[0]]) >= 2][:120]
    lines = []
    for module, name, text in chosen:
        task = f"Explain what {module}.{name} does in Python and how to use it."
        others = [p for p in pool if p[0] != module]
        siblings = [p for p in by_module[module] if p[1] != name]
        words = text.split()
        cut = max(4, len(words) // 5)
        repeated = sentences(text)[0]
        bad = {
            "off_topic": rng.choice(others)[2],
            "truncated": " ".join(words[:cut]),
            "repetitive": " ".join([repeated] * 6),
            "contradicting": contradict(module, name, text, rng),
            "empty": "",
            "refusal": rng.choice(REFUSALS),
            "other_subtask": rng.choice(siblings)[2],
            "deferral": deferrals.choice(DEFERRALS).format(f=f"{module}.{name}"),
        }
        lines.append({"task": task, "output": text, "label": 1, "kind": "good"})
        lines += [
            {"task": task, "output": out, "label": 0, "kind": kind} for kind, out in bad.items()
        ]
    lines += short_answers(random.Random(61))  # own streams: no earlier line changed
    lines += embedded()
    path = Path(__file__).with_name("quality.jsonl")
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    print(f"{len(chosen)} tasks and {len(lines)} lines -> {path}")


if __name__ == "__main__":
    main()
