"""Results-database speed: batched metric-row writes, and read latency on a large study.

    python -m benchmarks.storage [--trials 5000] [--epochs 100] [--no-write]

Writes into fresh databases: a SQLite file in a temporary folder and, when reachable, a
new PostgreSQL database on 127.0.0.1:5432 (dropped afterwards).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone

from benchmarks._results import (
    command_line,
    machine,
    markdown_table,
    targets,
    update_section,
    verdict,
)
from gradsweep.storage import queries
from gradsweep.storage.engine import open_engine
from gradsweep.storage.records import EpochRow, StudyRecord, TrialOutcome, TrialRecord
from gradsweep.storage.writer import ResultsWriter

TASKS = ("task0", "task1", "task2")
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def rows_for(epochs: int) -> list[EpochRow]:
    return [
        EpochRow(
            e, e * 50, t, 0.5 + e * 1e-3, 0.6, "mse", 0.6, {"mse": 0.6}, 1.0, 0.7, 0.7, {"mse": 0.7}
        )
        for e in range(epochs)
        for t in TASKS
    ]


@contextmanager
def databases() -> Iterator[list[tuple[str, str]]]:
    """(label, url) pairs for SQLite and, if reachable, PostgreSQL."""
    with tempfile.TemporaryDirectory() as folder:
        found = [("SQLite", f"sqlite:///{folder}/bench.db")]
        name = f"gradsweep_bench_{uuid.uuid4().hex[:8]}"
        admin = None
        try:
            import psycopg

            admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5)
            admin.execute(f'CREATE DATABASE "{name}"')
            found.append(("PostgreSQL", f"postgresql://postgres@127.0.0.1:5432/{name}"))
        except Exception as exc:  # no server: SQLite only
            print(f"PostgreSQL skipped: {exc}", file=sys.stderr)
        try:
            yield found
        finally:
            if admin is not None:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                admin.close()


def fill(writer: ResultsWriter, study: str, trials: int, epochs: int) -> float:
    """Write a whole study (trials × epochs × 3 tasks) as the recorder would; rows/s."""
    study_id = writer.get_or_create_study(
        StudyRecord(study, "spec", study, "toy", list(TASKS), "normalized_loss")
    )
    records = [
        TrialRecord(f"grid/{i}", "grid", "static", {"weights": [1, 1, 1]}, [1, 1, 1], None, 0)
        for i in range(trials)
    ]
    ids = writer.upsert_trials(study_id, records)
    rows = rows_for(epochs)
    started = time.perf_counter()
    for i, trial_id in enumerate(ids.values()):
        outcome = TrialOutcome(
            "completed",
            None,
            "n",
            "cpu",
            1.0,
            0.5 + i * 1e-5,
            [1, 1, 1],
            [1, 1, 1],
            None,
            datetime.now(timezone.utc),
        )
        writer.finish_trial(trial_id, outcome, rows=rows)
    return len(ids) * len(rows) / (time.perf_counter() - started)


def median_ms(call: Callable[[], object], repeats: int = 7) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e3


def measure(url: str, trials: int, epochs: int) -> dict[str, float]:
    engine = open_engine(url)
    writer = ResultsWriter(engine)
    write_rate = fill(writer, "write-rate", 200, 100)
    fill(writer, "large", trials, epochs)
    keys = [f"grid/{i}" for i in range(0, trials, max(trials // 10, 1))][:10]
    return {
        "write_rows_per_s": write_rate,
        "trials_ms": median_ms(lambda: queries.trials(engine, study="large")),
        "best_static_ms": median_ms(lambda: queries.best_static_trials(engine, "large")),
        "curves10_ms": median_ms(lambda: queries.curves(engine, "large", trial_keys=keys)),
        "curves_all_s": median_ms(lambda: queries.curves(engine, "large"), repeats=1) / 1e3,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5000)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    rows, checks = [], []
    with databases() as found:
        for label, url in found:
            r = measure(url, args.trials, args.epochs)
            if label == "SQLite":
                checks.append(
                    verdict("rows/s written on SQLite", r["write_rows_per_s"], 50_000, True)
                )
            checks.append(verdict(f"trials query on {label}", r["trials_ms"], 200, False, " ms"))
            rows.append(
                [
                    label,
                    f"{r['write_rows_per_s']:,.0f}",
                    f"{r['trials_ms']:.0f}",
                    f"{r['best_static_ms']:.0f}",
                    f"{r['curves10_ms']:.0f}",
                    f"{r['curves_all_s']:.1f}",
                ]
            )
            print(rows[-1], flush=True)
    header = [
        "database",
        "metric rows/s written (batched)",
        "trials query ms",
        "best static ms",
        "curves of 10 trials ms",
        "curves of whole study s",
    ]
    table = markdown_table(header, rows)
    print(table)
    if args.no_write:
        return
    command = command_line("benchmarks.storage")
    update_section(
        "Storage",
        f"Writes: 200 trials × 100 evaluations × 3 tasks, one `finish_trial` (300 rows, one "
        f"transaction) per trial; every row carries its validation loss, metric and metrics "
        f"beside the test ones (revision 0011). Reads: median of 7 on a study of "
        f"{args.trials:,} trials × "
        f"{args.epochs} evaluations × 3 tasks ({args.trials * args.epochs * 3:,} metric rows)."
        f"\n\nMachine: {machine()}\n\nCommand: `{command}`\n\n{table}\n\n{targets(checks)}",
    )


if __name__ == "__main__":
    main()
