"""Start-up time of the command line against the floor: ``python -c "import typer"``.

Each figure is the median wall time of 10 runs of a fresh process, measured in the same run
and interleaved (one of each in turn, so that a busy machine slows all three alike), after a
warm-up round that may compile bytecode:

  python_typer_s   python -c "import typer"             the floor: Python and Typer
  help_s           automatos --help                      target: within 0.25 s of the floor
  graph_s          automatos graph examples/recipe.yaml   a command that loads settings and
                                                          checks a plan, with no store or model

The last line of output is one JSON object.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = 10


def _wall_s(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, env=env, cwd=ROOT, capture_output=True)
    return time.perf_counter() - started


def _automatos() -> list[str]:
    """The installed ``automatos`` script next to this Python, else ``python -m``."""
    script = Path(sys.executable).parent / "automatos"
    return [str(script)] if script.exists() else [sys.executable, "-m", "automatos.cli"]


def main() -> None:
    """Measure, print one line per figure, then the JSON line."""
    # The developer's own settings must not change what is measured.
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("AUTOMATOS_")}
    cli = _automatos()
    commands = {
        "help_s": [*cli, "--help"],
        "python_typer_s": [sys.executable, "-c", "import typer"],
        "graph_s": [*cli, "graph", "examples/recipe.yaml"],
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    for round_ in range(RUNS + 1):
        for name, command in commands.items():
            took = _wall_s(command, env)
            if round_:  # round 0 is the warm-up
                times[name].append(took)
    figures = {name: statistics.median(t) for name, t in times.items()}
    for name, seconds in figures.items():
        print(f"{name:<15} {seconds:.3f} s")
    gap = figures["help_s"] - figures["python_typer_s"]
    print(f"--help costs {gap:.3f} s over importing typer (target: 0.25 s or less)")
    print(json.dumps({k: round(v, 4) for k, v in figures.items()}))


if __name__ == "__main__":
    main()
