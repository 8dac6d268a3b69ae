"""A three-task study written straight through the storage writer, for the browser tests."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np

from gradsweep.storage.engine import open_engine
from gradsweep.storage.records import EpochRow, StudyRecord, TrialOutcome, TrialRecord
from gradsweep.storage.writer import ResultsWriter

TASKS = ["task0", "task1", "task2"]
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def add_static(writer: ResultsWriter, study: int, key: str, weights: list[float], i: int) -> None:
    objective = 0.5 + float(np.linalg.norm(np.array(weights) - [1.5, 1.0, 0.5])) / 3
    trial = writer.upsert_trials(
        study, [TrialRecord(key, "random", "static", {}, weights, None, 0)]
    )[key]
    writer.mark_running(trial, "n", "cpu", T0)
    rows = [
        EpochRow(
            e,
            e * 10,
            t,
            None if e == 0 else 1.0 / (e + 1),
            1.0 / (e + 1),
            "mse",
            1.0 / (e + 1),
            {"mse": 1.0 / (e + 1)},
            w,
        )
        for e in range(3)
        for t, w in zip(TASKS, weights, strict=True)
    ]
    writer.finish_trial(
        trial,
        TrialOutcome(
            "completed",
            None,
            "n",
            "cpu",
            1.0,
            objective,
            weights,
            weights,
            T0,
            T0 + timedelta(seconds=i),
        ),
        rows=rows,
    )


def build_three_task_study(url: str, name: str = "three", static: int = 12) -> int:
    writer = ResultsWriter(open_engine(url))
    study = writer.get_or_create_study(
        StudyRecord(name, "{}", name, "toy", TASKS, "normalized_loss")
    )
    rng = np.random.default_rng(1)
    for i, w in enumerate(rng.dirichlet(np.ones(3), size=static) * 3):
        add_static(writer, study, f"random/i{i:03d}/s0", [float(x) for x in w], i)
    gradnorm = [(s, [1.0 + s / 200, 1.0, 1.0 - s / 200]) for s in range(0, 100, 10)]
    add_adaptive(
        writer,
        study,
        TrialRecord("gradnorm/a=0.12/s0", "gradnorm", "gradnorm", {}, None, 0.12, 0),
        gradnorm,
        0.55,
    )
    dwa = [(s, [1.0, 1.0 - s / 400, 1.0 + s / 400]) for s in range(0, 100, 10)]
    add_adaptive(
        writer, study, TrialRecord("dwa/t=2/s0", "dwa", "dwa", {}, None, None, 0), dwa, 0.6
    )
    return study


def add_adaptive(
    writer: ResultsWriter,
    study: int,
    record: TrialRecord,
    trace: list[tuple[int, list[float]]],
    objective: float,
) -> None:
    """A completed adaptive trial whose time-averaged weights are its trace's mean."""
    trial = writer.upsert_trials(study, [record])[record.key]
    writer.mark_running(trial, "n", "cpu", T0)
    mean = [float(x) for x in np.mean([w for _, w in trace], axis=0)]
    outcome = TrialOutcome(
        "completed",
        None,
        "n",
        "cpu",
        2.0,
        objective,
        mean,
        trace[-1][1],
        T0,
        T0 + timedelta(seconds=99),
    )
    writer.finish_trial(trial, outcome, trace=trace)
