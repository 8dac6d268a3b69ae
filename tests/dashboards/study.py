"""Test studies written straight through the storage writer (no Ray): the three-task study
of the browser tests, one with eight adaptive configurations over two seeds, and a failed,
an empty and a running study."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np

from gradsweep.storage.engine import open_engine
from gradsweep.storage.records import EpochRow, StudyRecord, TrialOutcome, TrialRecord
from gradsweep.storage.writer import ResultsWriter

TASKS = ["task0", "task1", "task2"]
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def add_static(
    writer: ResultsWriter, study: int, key: str, weights: list[float], i: int, seed: int = 0
) -> None:
    objective = 0.5 + float(np.linalg.norm(np.array(weights) - [1.5, 1.0, 0.5])) / 3
    trial = writer.upsert_trials(
        study, [TrialRecord(key, "random", "static", {}, weights, None, seed)]
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


# (configuration, balancer, alpha): what a study of many balancers compares
EIGHT_CONFIGS = [
    ("gradnorm/a=0.12", "gradnorm", 0.12),
    ("gradnorm/a=0.5", "gradnorm", 0.5),
    ("gradnorm/a=1.5", "gradnorm", 1.5),
    ("uncertainty/lr=0.025", "uncertainty", None),
    ("dwa/t=2", "dwa", None),
    ("rlw/normal", "rlw", None),
    ("famo/lr=0.025", "famo", None),
    ("upgrad/pref=mean", "upgrad", None),
]


def build_eight_config_study(url: str, name: str = "eight", seeds: int = 2) -> int:
    """Twelve static weightings and eight adaptive configurations, each run on every seed:
    a comparison table of nine rows, and a legend entry per configuration."""
    writer = ResultsWriter(open_engine(url))
    study = writer.get_or_create_study(
        StudyRecord(name, "{}", name, "toy", TASKS, "normalized_loss")
    )
    weightings = np.random.default_rng(2).dirichlet(np.ones(3), size=12) * 3
    for seed in range(seeds):
        for i, w in enumerate(weightings):
            key = f"random/i{i:03d}/s{seed}"
            add_static(writer, study, key, [float(x) for x in w], i, seed)
        for n, (config, balancer, alpha) in enumerate(EIGHT_CONFIGS):
            drift = (n - 3.5) / 1000  # each configuration heads its own way
            trace = [
                (s, [1.0 + drift * s, 1.0 - drift * s / 2, 1.0 - drift * s / 2])
                for s in range(0, 100, 10)
            ]
            record = TrialRecord(f"{config}/s{seed}", balancer, balancer, {}, None, alpha, seed)
            add_adaptive(writer, study, record, trace, 0.6 + n / 100 + seed / 1000)
    return study


def build_failed_study(url: str, name: str = "failed") -> int:
    """A study whose every trial failed, one with a long traceback line."""
    writer = ResultsWriter(open_engine(url))
    study = writer.get_or_create_study(
        StudyRecord(name, "{}", name, "toy", TASKS, "normalized_loss")
    )
    records = [
        TrialRecord("random/i000/s0", "random", "static", {}, [1.0, 1.0, 1.0], None, 0),
        TrialRecord("gradnorm/a=0.12/s0", "gradnorm", "gradnorm", {}, None, 0.12, 0),
    ]
    ids = writer.upsert_trials(study, records)
    wide = "x" * 400  # a traceback line far wider than any window
    for key, trial in ids.items():
        writer.mark_running(trial, "n", "cpu", T0)
        error = f"RuntimeError: CUDA out of memory ({key})"
        trace = f'Traceback (most recent call last):\n  File "{wide}.py", line 1\n{error}'
        writer.fail_trial(trial, error, traceback=trace)
    writer.set_study_status(study, "failed")
    return study


def build_empty_study(url: str, name: str = "empty") -> int:
    """A study with no trial yet."""
    writer = ResultsWriter(open_engine(url))
    return writer.get_or_create_study(
        StudyRecord(name, "{}", name, "toy", TASKS, "normalized_loss")
    )


def build_running_study(url: str, name: str = "running") -> int:
    """A running study with no completed trial: a static trial running, one failed, and
    GradNorm half-way with the weights it has traced so far."""
    writer = ResultsWriter(open_engine(url))
    study = writer.get_or_create_study(
        StudyRecord(name, "{}", name, "toy", TASKS, "normalized_loss")
    )
    records = [
        TrialRecord("random/i000/s0", "random", "static", {}, [1.0, 1.0, 1.0], None, 0),
        TrialRecord("random/i001/s0", "random", "static", {}, [2.0, 0.5, 0.5], None, 0),
        TrialRecord("gradnorm/a=0.12/s0", "gradnorm", "gradnorm", {}, None, 0.12, 0),
    ]
    ids = writer.upsert_trials(study, records)
    for trial in ids.values():
        writer.mark_running(trial, "n", "cpu", T0)
    writer.fail_trial(ids["random/i001/s0"], "ValueError: loss is NaN at step 40")
    trace = [(s, [1.0 + s / 200, 1.0, 1.0 - s / 200]) for s in range(0, 50, 10)]
    writer.write_trace(ids["gradnorm/a=0.12/s0"], trace)
    writer.set_study_status(study, "running")
    return study
