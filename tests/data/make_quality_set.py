"""Builds ``quality.jsonl``: labelled answers for the quality benchmark, from real text.

The real text is the documentation that ships with Python: each task asks what a standard
library function does; its good answer is that function's docstring, written by the people
who wrote the function. The bad answers are made from the same real text in the ways agents
fail: off-topic (another module's documentation), truncated, repetitive, contradicting the
question, empty, a refusal, an answer to a different subtask (a sibling function's
documentation), and a deferral: the task said back as a promise or a plan, with nothing
done (what small models write in place of an answer). Run it again to rebuild the file;
the choice is seeded.

    python tests/data/make_quality_set.py
"""

from __future__ import annotations

import importlib
import inspect
import json
import random
import re
from pathlib import Path

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
    path = Path(__file__).with_name("quality.jsonl")
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    print(f"{len(chosen)} tasks, {len(lines)} lines -> {path}")


if __name__ == "__main__":
    main()
