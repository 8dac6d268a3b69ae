"""Server time of the dashboard's study page for a study of 50,000 trials, and the time of
the static Pareto front of 50,000 points.

    python -m benchmarks.dashboard [--trials 50000] [--no-write]

The study page's server time = reading the trials, their per-task final values and the
traces, the comparison with its Pareto view, building every figure and serialising them to
JSON (what Dash sends). Median of 5.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time

import numpy as np
import plotly

from benchmarks._results import (
    command_line,
    machine,
    markdown_table,
    targets,
    update_section,
    verdict,
)
from gradsweep.dashboards.page import study_page
from gradsweep.results.pareto import pareto_mask
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
    # per-task final test losses of a front-shaped trade-off: a task gains from its weight
    finals = 1.0 / (0.3 + weights) + np.random.default_rng(1).normal(0, 0.02, weights.shape)
    objective = finals.mean(axis=1)
    with engine.begin() as conn:  # bulk writes: the benchmark measures reads
        conn.exec_driver_sql(
            "UPDATE gs_trials SET status='completed', normalized_loss=?, train_seconds=1.0, "
            "weights_mean=static_weights, weights_final=static_weights, "
            "initial_test_losses=?, test_losses=?, final_metrics=?, "
            "finished_at='2026-01-01 00:00:00' WHERE id=?",
            [
                (float(o), json.dumps([1.0] * 3), json.dumps(row), json.dumps(row), ids[r.key])
                for o, row, r in zip(objective, finals.tolist(), records, strict=True)
            ],
        )
        conn.exec_driver_sql(
            "INSERT INTO gs_epoch_metrics (trial_id, epoch, task, step, test_loss, metric_name, "
            "metric_value, metrics) VALUES (?, ?, ?, ?, ?, 'mse', ?, '{}')",
            [
                (ids[r.key], epoch, task, epoch * 100, loss, loss)
                for r, row in zip(records, finals.tolist(), strict=True)
                for task, final in zip(("a", "b", "c"), row, strict=True)
                for epoch, loss in ((0, 1.0), (1, final))
            ],
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


def front_ms(tasks: int, points: int) -> float:
    """Median of 5: the non-dominated set of ``points`` front-shaped points at T=``tasks``."""
    weights = np.random.default_rng(2).dirichlet(np.ones(tasks), size=points)
    values = 1.0 / (0.2 + weights) + np.random.default_rng(3).normal(0, 0.05, weights.shape)
    times = []
    for _ in range(5):
        started = time.perf_counter()
        pareto_mask(values)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e3


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
    fronts = {tasks: front_ms(tasks, args.trials) for tasks in (2, 3, 4)}
    front_rows = [[str(t), f"{args.trials:,}", f"{ms:.0f}"] for t, ms in fronts.items()]
    front_table = markdown_table(["T", "points", "front median ms"], front_rows)
    print(table, front_table, sep="\n\n")
    if args.no_write:
        return
    command = command_line("benchmarks.dashboard")
    checks = [
        verdict(
            f"study page at {args.trials:,} trials", statistics.median(times), 1.0, False, " s"
        ),
        verdict(f"front of {args.trials:,} points, T=2", fronts[2], 200, False, " ms"),
        verdict(f"front of {args.trials:,} points, T=3", fronts[3], 200, False, " ms"),
    ]
    update_section(
        "Dashboard study page",
        "Server time of one study page (T=3, SQLite): read the trials, their per-task final "
        "test losses and GradNorm's 1,000-point trace, compare (with the Pareto view), build "
        "the seven figures (the simplex and the Pareto projections show the 500 best static "
        "trials and an even sample of the rest, 3,000 points at most) and serialise them "
        f"to JSON. Median of 5.\n\nMachine: {machine()}\n\nCommand: `{command}`\n\n{table}"
        "\n\nThe static Pareto front alone (`gradsweep.results.pareto.pareto_mask`) on "
        "front-shaped random points, median of 5 (T=4 is a block-vectorised O(n·front) "
        f"check; T=2 and 3 are sorts and sweeps):\n\n{front_table}\n\n{targets(checks)}",
    )


if __name__ == "__main__":
    main()
