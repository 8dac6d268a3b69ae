"""How fast the read commands answer: `status`, `query` and `compare` on the demo study,
each in its own process as a user runs it (Python's start and the imports included).

The demo database is made with the demo's own spec when it is not there yet (a real study
on local Ray, about a minute). Each command runs five times; the median is the figure.

    python -m benchmarks.read_commands [--db sqlite:///demo.db] [--no-write]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks._results import (
    command_line,
    machine,
    markdown_table,
    targets,
    update_section,
    verdict,
)
from tests.test_read_commands import HEAVY, heavy_imports

SECONDS = 1.5
REPEATS = 5
STUDY = "toy-demo"
COMMANDS = (
    ["status"],
    ["status", STUDY],
    ["query", "studies"],
    ["query", "trials", "--study", STUDY, "--format", "csv"],
    ["compare", STUDY],
    ["compare", STUDY, "--format", "json"],
)


def ensure_demo(url: str) -> None:
    path = Path(url.removeprefix("sqlite:///"))
    if path.exists():
        return
    subprocess.run(
        [sys.executable, "-m", "gradsweep.cli", "launch", "configs/toy-demo.yaml", "--quiet",
         "--db", url],
        check=True,
    )  # fmt: skip


def seconds(argv: list[str], url: str) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "gradsweep.cli", *argv, "--db", url],
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="sqlite:///demo.db")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    ensure_demo(args.db)
    rows, worst = [], 0.0
    for argv in COMMANDS:
        times = [seconds(argv, args.db) for _ in range(REPEATS)]
        median = statistics.median(times)
        worst = max(worst, median)
        _, imported = heavy_imports(argv, args.db)
        rows.append(
            [f"`gradsweep {' '.join(argv)}`", f"{median:.2f}", f"{max(times):.2f}",
             ", ".join(imported) or "none"]
        )  # fmt: skip
        print(rows[-1], flush=True)
    table = markdown_table(["command", "median s", "slowest s", "heavy imports"], rows)
    print(table)
    if args.no_write:
        return
    checks = [verdict("slowest median of a read command", worst, SECONDS, False, " s")]
    update_section(
        "Read commands",
        f"Each command {REPEATS} times on the demo study ({STUDY}, 31 trials, SQLite), one "
        "process each, Python's start included; heavy imports: which of "
        f"{', '.join(HEAVY)} the command loaded.\n\n"
        f"Machine: {machine()}\n\nCommand: `{command_line('benchmarks.read_commands')}`\n\n"
        f"{table}\n\n{targets(checks)}",
    )


if __name__ == "__main__":
    main()
