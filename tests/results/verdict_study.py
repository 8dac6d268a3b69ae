"""Two-task studies written straight through the storage writer, each trial's test and
validation losses chosen at every evaluation, so every verdict is known in advance.

A static weighting ``w`` ends at the loss ``STATIC[w]`` (both tasks, both splits; seed ``s``
adds ``s / 1000``) and falls to it linearly from 1.0 over the steps; an adaptive run follows
the curve it is given, per seed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone

from gradsweep.storage.engine import open_engine
from gradsweep.storage.records import EpochRow, StudyRecord, TrialOutcome, TrialRecord
from gradsweep.storage.writer import ResultsWriter

TASKS = ["a", "b"]
STEPS = (0, 10, 20, 30, 40)
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
# the grid at resolution 4 (vertices left out) and the static arm's equal weights
STATIC = {(1.0, 1.0): 0.50, (0.5, 1.5): 0.45, (1.5, 0.5): 0.55}
GRID = [(0.5, 1.5), (1.5, 0.5)]


def static_curve(final: float) -> list[float]:
    return [1.0 - (1.0 - final) * step / STEPS[-1] for step in STEPS]


def add_trial(
    writer: ResultsWriter,
    study: int,
    record: TrialRecord,
    curve: Sequence[float],
    weights_mean: list[float],
    seconds: float,
) -> None:
    """A completed trial whose losses (both tasks, test and validation) follow ``curve``."""
    trial = writer.upsert_trials(study, [record])[record.key]
    writer.mark_running(trial, "n", "cpu", T0)
    rows = [
        EpochRow(e, step, task, None if e == 0 else loss, loss, "mse", loss, {}, None, loss, loss)
        for e, (step, loss) in enumerate(zip(STEPS, curve, strict=True))
        for task in TASKS
    ]
    final = float(curve[-1])
    outcome = TrialOutcome(
        "completed",
        None,
        "n",
        "cpu",
        seconds,
        final,
        weights_mean,
        weights_mean,
        T0,
        T0 + timedelta(seconds=seconds),
        initial_test_losses=[1.0, 1.0],
        test_losses=[final, final],
        final_metrics=[final, final],
        initial_val_losses=[1.0, 1.0],
        val_losses=[final, final],
        val_final_metrics=[final, final],
        val_normalized_loss=final,
    )
    writer.finish_trial(trial, outcome, rows=rows)


def build_study(
    url: str,
    name: str,
    adaptive: dict[int, Sequence[float]],
    seeds: Sequence[int] = (0, 1, 2),
    weights: tuple[float, float] = (0.7, 1.3),
) -> None:
    """A study of the static arm, a resolution-4 grid and one GradNorm configuration
    (α = 1.5) whose loss curve on each seed is ``adaptive[seed]``."""
    spec = {"seeds": list(seeds), "arms": {"grid": {"resolution": 4}}}
    writer = ResultsWriter(open_engine(url))
    study = writer.get_or_create_study(
        StudyRecord(name, json.dumps(spec), name, "toy", TASKS, "normalized_loss")
    )
    for seed in seeds:
        for point, final in STATIC.items():
            arm = "grid" if point in GRID else "static"
            key = f"{arm}/w={point[0]:g},{point[1]:g}/s{seed}"
            also = ["grid"] if arm == "static" else None  # the grid's centre, trained once
            record = TrialRecord(key, arm, "static", {}, list(point), None, seed, also)
            add_trial(writer, study, record, static_curve(final + seed / 1000), list(point), 1.0)
        record = TrialRecord(f"gradnorm/a=1.5/s{seed}", "gradnorm", "gradnorm", {}, None, 1.5, seed)
        add_trial(writer, study, record, adaptive[seed], list(weights), 2.0)
