"""The static front against a brute-force front; ε and dominated_by by hand; the JSON."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import numpy as np
import pytest
from typer.testing import CliRunner

from gradsweep.cli import app
from gradsweep.results.pareto import pareto_mask, pareto_view, place
from gradsweep.storage.engine import open_engine
from gradsweep.storage.records import EpochRow, StudyRecord, TrialOutcome, TrialRecord
from gradsweep.storage.writer import ResultsWriter


def brute_force(points: np.ndarray) -> np.ndarray:
    """O(n²): a row is on the front when no other row is no worse everywhere and better
    somewhere."""
    keep = np.ones(len(points), dtype=bool)
    for i, p in enumerate(points):
        for j, q in enumerate(points):
            if i != j and np.all(q <= p) and np.any(q < p):
                keep[i] = False
                break
    return keep


@pytest.mark.parametrize("tasks", [1, 2, 3, 4, 5])
def test_the_front_is_the_brute_force_front(tasks: int) -> None:
    rng = np.random.default_rng(tasks)
    for _ in range(40):
        n = int(rng.integers(1, 80))
        # few distinct values: many ties and duplicate rows
        points = rng.integers(0, 4, size=(n, tasks)).astype(float)
        assert np.array_equal(pareto_mask(points), brute_force(points))
        smooth = rng.normal(size=(n, tasks))
        assert np.array_equal(pareto_mask(smooth), brute_force(smooth))


def test_equal_rows_share_their_fate() -> None:
    points = np.array([[1.0, 2.0], [1.0, 2.0], [2.0, 1.0], [2.0, 2.0]])
    assert pareto_mask(points).tolist() == [True, True, True, False]


def test_dominated_by_and_epsilon_by_hand() -> None:
    static = np.array([[1.0, 4.0], [2.0, 2.0], [4.0, 1.0], [3.0, 3.0]])
    front = static[pareto_mask(static)]  # the first three
    inside = place(np.array([3.5, 3.5]), static, front)
    # (2, 2) and (3, 3) are better on both tasks; (2, 2) by min(1.5, 1.5) = 1.5
    assert (inside.on_front, inside.dominated_by, inside.epsilon) == (False, 2, 1.5)
    beyond = place(np.array([1.5, 1.5]), static, front)
    assert (beyond.on_front, beyond.dominated_by, beyond.epsilon) == (True, 0, 0.0)
    on = place(np.array([2.0, 2.0]), static, front)  # equal to a front point: not dominated
    assert (on.on_front, on.dominated_by, on.epsilon) == (True, 0, 0.0)
    tied = place(np.array([2.5, 2.0]), static, front)  # (2, 2) is better on one, equal on one
    assert (tied.on_front, tied.dominated_by, tied.epsilon) == (False, 1, 0.0)


def test_the_view_skips_missing_values_and_sorts_the_front() -> None:
    weights = np.array([[2.0, 0.0], [1.0, 1.0], [0.0, 2.0], [1.5, 0.5]])
    values = np.array([[1.0, 4.0], [2.0, 2.0], [4.0, 1.0], [np.nan, 1.0]])
    view = pareto_view(
        "v", weights, values, {"a": np.array([3.0, 3.0]), "b": np.array([1, np.nan])}
    )
    assert [p.weights for p in view.front] == [[2.0, 0.0], [1.0, 1.0], [0.0, 2.0]]
    assert view.static_points == 3 and list(view.adaptive) == ["a"]


T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def finished(writer: ResultsWriter, study: int, record: TrialRecord, finals: list[float]) -> None:
    """A completed trial whose tasks' test losses fall from 1 (epoch 0) to ``finals``."""
    trial = writer.upsert_trials(study, [record])[record.key]
    writer.mark_running(trial, "n", "cpu", T0)
    rows = [
        EpochRow(epoch, epoch, f"t{i}", None, loss, "mse", loss, {"mse": loss}, 1.0)
        for i, final in enumerate(finals)
        for epoch, loss in ((0, 1.0), (1, final))
    ]
    mean = record.static_weights or [1.0, 1.0]
    outcome = TrialOutcome("completed", None, "n", "cpu", 1.0, sum(finals) / 2, mean, mean)
    writer.finish_trial(trial, outcome, rows=rows)


def test_compare_json_carries_the_pareto_view(db_url: str) -> None:
    writer = ResultsWriter(open_engine(db_url))
    study = writer.get_or_create_study(
        StudyRecord("p", "{}", "h", "toy", ["t0", "t1"], "normalized_loss")
    )
    for seed in (0, 1):  # the static weighting (1.9, 0.1) means 0.3, 0.9 over its seeds
        record = TrialRecord(f"grid/a/s{seed}", "grid", "static", {}, [1.9, 0.1], None, seed)
        finished(writer, study, record, [0.2 + 0.2 * seed, 0.9])
    finished(
        writer,
        study,
        TrialRecord("grid/b/s0", "grid", "static", {}, [1.0, 1.0], None, 0),
        [0.5, 0.5],
    )
    finished(
        writer,
        study,
        TrialRecord("grid/c/s0", "grid", "static", {}, [0.1, 1.9], None, 0),
        [0.9, 0.3],
    )
    finished(
        writer,
        study,
        TrialRecord("grid/d/s0", "grid", "static", {}, [0.6, 1.4], None, 0),
        [0.8, 0.6],
    )
    adaptive = TrialRecord("gradnorm/a=1/s0", "gradnorm", "gradnorm", {}, None, 1.0, 0)
    finished(writer, study, adaptive, [0.6, 0.7])
    run = CliRunner().invoke(app, ["compare", "p", "--format", "json", "--db", db_url])
    assert run.exit_code == 0, run.stderr
    pareto = json.loads(run.stdout)["pareto"]
    assert [p["weights"] for p in pareto["front"]] == [[1.9, 0.1], [1.0, 1.0], [0.1, 1.9]]
    assert pareto["front"][0]["task_values"] == pytest.approx([0.3, 0.9])
    placed = pareto["adaptive"]["gradnorm/a=1"]
    assert placed["task_values"] == pytest.approx([0.6, 0.7])
    # (1, 1) at (0.5, 0.5) beats it on both tasks by min(0.1, 0.2); (0.6, 1.4) does not
    assert placed["on_front"] is False and placed["dominated_by"] == 1
    assert placed["epsilon"] == pytest.approx(0.1)
    table = CliRunner().invoke(app, ["compare", "p", "--db", db_url])
    assert "Pareto view" in table.stdout and "static front" in table.stdout
