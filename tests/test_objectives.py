"""Δm% against the equal-weight trials, on a hand-built study with worked-out answers."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pytest

from gradsweep.errors import GradsweepError
from gradsweep.objectives import delta_m
from gradsweep.query import query_frame
from gradsweep.results import load_results
from gradsweep.results.answer import compare_study
from gradsweep.storage import queries
from gradsweep.storage.engine import open_engine
from gradsweep.storage.records import EpochRow, StudyRecord, TrialOutcome, TrialRecord
from gradsweep.storage.writer import ResultsWriter

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
TASKS = ["left", "depth"]
METRICS = [{"metric": "accuracy", "direction": "max"}, {"metric": "abs_err", "direction": "min"}]

# (arm, key, static weights, final accuracy, final abs_err, normalised loss)
TRIALS = [
    ("static", "static/w=1,1/s0", [1.0, 1.0], 0.80, 0.50, 0.6),
    ("static", "static/w=1,1/s1", [1.0, 1.0], 0.60, 0.30, 0.7),
    ("grid", "grid/w=1.5,0.5/s0", [1.5, 0.5], 0.84, 0.48, 0.5),
    ("grid", "grid/w=0.5,1.5/s0", [0.5, 1.5], 0.63, 0.36, 0.4),
    ("dwa", "dwa/t=2/s0", None, 0.77, 0.36, 0.8),
]
# baseline: accuracy 0.70, abs_err 0.40; Δm% = 100/2 · (−(acc − 0.7)/0.7 + (err − 0.4)/0.4)
EXPECTED = {
    "static/w=1,1/s0": 50 * (-0.10 / 0.7 + 0.10 / 0.4),
    "static/w=1,1/s1": 50 * (0.10 / 0.7 - 0.10 / 0.4),
    "grid/w=1.5,0.5/s0": 50 * (-0.14 / 0.7 + 0.08 / 0.4),
    "grid/w=0.5,1.5/s0": 50 * (0.07 / 0.7 - 0.04 / 0.4),
    "dwa/t=2/s0": 50 * (-0.07 / 0.7 - 0.04 / 0.4),
}


def rows(accuracy: float, abs_err: float) -> list[EpochRow]:
    """Epoch 0 with other values, so only the last evaluation can give the answer."""
    return [
        EpochRow(epoch, epoch * 10, task, None, 1.0, metric, value, {metric: value}, 1.0)
        for epoch, values in ((0, (0.1, 9.0)), (1, (accuracy, abs_err)))
        for task, metric, value in zip(TASKS, ("accuracy", "abs_err"), values, strict=True)
    ]


def build(url: str, objective: str = "delta_m", trials: list = TRIALS) -> None:  # type: ignore[type-arg]
    writer = ResultsWriter(open_engine(url))
    study = writer.get_or_create_study(
        StudyRecord("dm", "{}", "dm", "digits", TASKS, objective, task_metrics=METRICS)
    )
    for arm, key, weights, accuracy, abs_err, loss in trials:
        balancer = "static" if weights is not None else arm
        seed = 0  # one seed: every weighting is a candidate for the static optimum
        trial_id = writer.upsert_trials(
            study, [TrialRecord(key, arm, balancer, {}, weights, None, seed)]
        )[key]
        writer.mark_running(trial_id, "n", "cpu", T0)
        writer.write_epochs(trial_id, rows(accuracy, abs_err))
        mean = weights or [1.2, 0.8]
        outcome = TrialOutcome("completed", None, "n", "cpu", 1.0, loss, mean, mean, T0, T0)
        writer.finish_trial(trial_id, outcome)


def test_delta_m_by_hand() -> None:
    assert delta_m([0.77, 0.36], [0.7, 0.4], ["max", "min"]) == pytest.approx(-10.0)
    assert delta_m([0.7, 0.4], [0.7, 0.4], ["max", "min"]) == 0.0
    many = delta_m(np.array([[0.7, 0.44], [0.63, 0.4]]), [0.7, 0.4], ["max", "min"])
    assert many.tolist() == pytest.approx([5.0, 5.0])


def test_a_delta_m_study_is_scored_against_its_equal_weight_trials(db_url: str) -> None:
    build(db_url)
    engine = open_engine(db_url)
    info = queries.find_study(engine, "dm")
    assert info.task_metrics == METRICS
    results = load_results(engine, "dm")
    trials = results.trials.set_index("key")
    for key, expected in EXPECTED.items():
        assert trials.loc[key, "objective"] == pytest.approx(expected)
    assert trials.loc["dwa/t=2/s0", "normalized_loss"] == 0.8
    assert results.baseline == pytest.approx([0.7, 0.4])
    comparison = compare_study(engine, "dm")
    assert comparison.objective == "delta_m"
    assert comparison.static_best.weights == [0.5, 1.5]  # best by Δm%, not by the loss
    assert comparison.static_best.objective == pytest.approx(EXPECTED["grid/w=0.5,1.5/s0"])
    (dwa,) = comparison.adaptive
    assert dwa.config == "dwa/t=2" and dwa.objective == pytest.approx(-10.0)
    assert comparison.equal_weights is not None
    assert comparison.equal_weights.objective == pytest.approx(0.0, abs=1e-12)
    frame = query_frame(engine, "trials", study="dm", arm="dwa")
    assert frame["objective"].tolist() == pytest.approx([-10.0])
    assert frame["normalized_loss"].tolist() == [0.8]
    studies = query_frame(engine, "studies").set_index("name")
    assert studies.loc["dm", "objective"] == "delta_m"  # as status and the dashboard score it
    # the same optimum as compare's (a study without validation values: chosen on test)
    assert studies.loc["dm", "static_optimum"] == pytest.approx(EXPECTED["grid/w=0.5,1.5/s0"])
    assert studies.loc["dm", "selected_on"] == "test"
    assert comparison.notes[0] == "selected on test: this study has no validation split"


def test_a_normalised_loss_study_keeps_its_stored_objective(db_url: str) -> None:
    build(db_url, objective="normalized_loss")
    engine = open_engine(db_url)
    results = load_results(engine, "dm")
    assert results.trials["objective"].tolist() == [t[5] for t in TRIALS]
    assert results.baseline is None and results.scoring_error is None


def test_without_an_equal_weight_trial_there_is_no_baseline(sqlite_url: str) -> None:
    build(sqlite_url, trials=TRIALS[2:])
    engine = open_engine(sqlite_url)
    with pytest.raises(GradsweepError, match="no completed equal-weight static trial"):
        compare_study(engine, "dm")
    results = load_results(engine, "dm")
    assert results.baseline is None and "no completed equal-weight" in str(results.scoring_error)
    assert results.trials["objective"].isna().all()
