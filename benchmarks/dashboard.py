"""Server time of the dashboard's study page for a study of 50,000 trials.

    python -m benchmarks.dashboard [--trials 50000] [--no-write]

The study page's server time = reading the trials and traces, the comparison, building
every figure and serialising them to JSON (what Dash sends). Median of 5.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time

import numpy as np
import plotly

from benchmarks._results import command_line, machine, markdown_table, update_section
from gradsweep.dashboards.page import study_page
from gradsweep.storage.engine import open_engine
from gradsweep.storage.records import StudyRecord, TrialOutcome, TrialRecord
from gradsweep.storage.writer import ResultsWriter


def build(url: str, trials: int) -> None:
    """A T=3 study: ``trials`` completed random static trials and GradNorm with its trace."""
    engine = open_engine(url)
    writer = ResultsWriter(engine)
    study = writer.get_or_create_study(
        StudyRecord("large", "{}", "large", "toy", ["a", "b", "c"], "normalized_loss")
    )
    weights = np.random.default_rng(0).dirichlet(np.ones(3), size=trials) * 3
    records = [
        TrialRecord(f"random/i{i:05d}/s0", "random", "static", {}, list(map(float, w)), None, 0)
        for i, w in enumerate(weights)
    ]
    ids = writer.upsert_trials(study, records)
    objective = 0.5 + np.linalg.norm(weights - [1.5, 1.0, 0.5], axis=1) / 3
    with engine.begin() as conn:  # one bulk update: the benchmark measures reads
        conn.exec_driver_sql(
            "UPDATE gs_trials SET status='completed', normalized_loss=?, train_seconds=1.0, "
            "weights_mean=static_weights, weights_final=static_weights, "
            "finished_at='2026-01-01 00:00:00' WHERE id=?",
            [(float(o), ids[r.key]) for o, r in zip(objective, records, strict=True)],
        )
    key = "gradnorm/a=0.12/s0"
    trial = writer.upsert_trials(
        study, [TrialRecord(key, "gradnorm", "gradnorm", {}, None, 0.12, 0)]
    )[key]
    trace = [(s, [1.0 + s / 20000, 1.0, 1.0 - s / 20000]) for s in range(0, 10000, 10)]
    writer.finish_trial(
        trial,
        TrialOutcome("completed", None, "n", "cpu", 5.0, 0.55, [1.25, 1.0, 0.75], trace[-1][1]),
        trace=trace,
    )


def page_seconds(url: str) -> float:
    engine = open_engine(url, read_only=True)
    started = time.perf_counter()
    page = study_page(engine, "large")
    for figure in page.figures.values():
        json.dumps(figure.to_plotly_json(), cls=plotly.utils.PlotlyJSONEncoder)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=50000)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/large.db"
        build(url, args.trials)
        times = [page_seconds(url) for _ in range(5)]
    row = [
        f"{args.trials:,}",
        f"{statistics.median(times) * 1e3:.0f}",
        f"{min(times) * 1e3:.0f}",
        f"{max(times) * 1e3:.0f}",
    ]
    table = markdown_table(["static trials", "median ms", "min ms", "max ms"], [row])
    print(table)
    if args.no_write:
        return
    command = command_line("benchmarks.dashboard")
    update_section(
        "Dashboard study page",
        "Server time of one study page (T=3, SQLite): read trials and GradNorm's 1,000-point "
        "trace, compare, build the six figures (the simplex shows the 500 best static "
        "trials and an even sample of the rest, 3,000 points at most) and serialise them "
        f"to JSON. Median of 5.\n\nMachine: {machine()}\n\nCommand: `{command}`\n\n{table}"
        "\n\nTarget: under 1 s of server time at 50,000 trials.",
    )


if __name__ == "__main__":
    main()
