"""Trials per second written by ``gradsweep export --optuna`` into the study's own SQLite file.

    python -m benchmarks.optuna_export [--trials 5000 50000] [--no-write]

The study is the dashboard benchmark's (T=3, completed static trials with per-task test
losses, one GradNorm trial with its trace). Timed: the whole export of an empty target,
from reading the study to the last commit, then a second export of the same name (nothing
to add: the idempotent path). Median of 3, each on a fresh copy of the database.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
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
from benchmarks.dashboard import build
from gradsweep.results.optuna_export import export_optuna
from gradsweep.storage.engine import open_engine

TARGET_TRIALS_PER_SECOND = 1000.0


def export_seconds(source: Path, folder: Path, run: int) -> tuple[float, float, int]:
    """(first export's seconds, second export's seconds, trials added) on a copy of ``source``."""
    copy = folder / f"copy{run}.db"
    for suffix in ("", "-wal"):  # the build's writes may still sit in its write-ahead log
        if Path(f"{source}{suffix}").exists():
            shutil.copy(f"{source}{suffix}", f"{copy}{suffix}")
    engine = open_engine(f"sqlite:///{copy}")
    started = time.perf_counter()
    done = export_optuna(engine, "large", "large-optuna")
    first = time.perf_counter() - started
    started = time.perf_counter()
    again = export_optuna(engine, "large", "large-optuna")
    second = time.perf_counter() - started
    if again.added != 0 or again.present != done.added:
        raise SystemExit(f"the second export added {again.added} trials: not idempotent")
    engine.dispose()
    return first, second, done.added


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, nargs="+", default=[5000, 50000])
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    rows, rates = [], {}
    for trials in args.trials:
        with tempfile.TemporaryDirectory() as name:
            folder = Path(name)
            source = folder / "large.db"
            build(f"sqlite:///{source}", trials)
            runs = [export_seconds(source, folder, run) for run in range(3)]
        first = statistics.median(r[0] for r in runs)
        second = statistics.median(r[1] for r in runs)
        added = runs[0][2]
        rates[trials] = added / first
        rows.append([f"{added:,}", f"{first:.2f}", f"{rates[trials]:,.0f}", f"{second:.2f}"])
    header = [
        "trials exported",
        "export s (median of 3)",
        "trials/s",
        "re-export s (nothing added)",
    ]
    table = markdown_table(header, rows)
    print(table)
    if args.no_write:
        return
    checks = [
        verdict(f"export --optuna at {trials:,} trials", rate, TARGET_TRIALS_PER_SECOND, True, "/s")
        for trials, rate in rates.items()
    ]
    update_section(
        "Optuna export",
        "Trials per second of `gradsweep export STUDY --optuna NAME` into the study's own "
        "SQLite file (T=3: three values, three weights and seven attributes a trial), the "
        "whole command's work from reading the study to the last commit. Before: Optuna's "
        "`Study.add_trials`, one transaction a trial (5,000 trials in 61 s, 82 trials/s). "
        "Now one transaction of bulk inserts into Optuna's own tables (as its storage "
        "models define them).\n\n"
        f"Machine: {machine()}\n\nCommand: `{command_line('benchmarks.optuna_export')}`\n\n"
        f"{table}\n\n{targets(checks)}",
    )


if __name__ == "__main__":
    main()
