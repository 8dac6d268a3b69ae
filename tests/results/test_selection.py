"""The selection rule on a real database, read through the CLI: validation chooses among
the weightings run on every seed, test reports; both checkpoints; the best α; and an old
study without validation values, selected on test and saying so."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timezone

import pytest
from typer.testing import CliRunner

from gradsweep.cli import app
from gradsweep.storage.engine import open_engine
from gradsweep.storage.records import EpochRow, StudyRecord, TrialOutcome, TrialRecord
from gradsweep.storage.writer import ResultsWriter

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
TASKS = ["a", "b"]
SPEC = (
    '{"study": "sel", "problem": {"name": "toy"}, "budget": {"steps": 20},'
    ' "seeds": [0, 1], "arms": {"static": {"weights": [[1, 1]]}}}'
)

# (arm, key, weights or None, alpha, seed, final test nl, final val nl, test nl / val nl at
# step 10): each task's loss is its normalised loss (initial losses are 1)
TRIALS = [
    ("static", "static/w=1,1/s0", [1.0, 1.0], None, 0, 0.50, 0.60, (0.45, 0.30)),
    ("static", "static/w=1,1/s1", [1.0, 1.0], None, 1, 0.50, 0.60, (0.45, 0.30)),
    ("grid", "grid/w=0.5,1.5/s0", [0.5, 1.5], None, 0, 0.40, 0.70, (0.20, 0.80)),
    ("grid", "grid/w=0.5,1.5/s1", [0.5, 1.5], None, 1, 0.40, 0.70, (0.20, 0.80)),
    # on one seed only: the best on both splits, and never the optimum
    ("optuna", "optuna/t0000/s0", [1.5, 0.5], None, 0, 0.10, 0.10, (0.10, 0.10)),
    ("gradnorm", "gradnorm/a=1/s0", None, 1.0, 0, 0.45, 0.65, (0.45, 0.65)),
    ("gradnorm", "gradnorm/a=1/s1", None, 1.0, 1, 0.47, 0.66, (0.47, 0.66)),
    ("gradnorm", "gradnorm/a=2/s0", None, 2.0, 0, 0.30, 0.90, (0.30, 0.90)),
    ("gradnorm", "gradnorm/a=2/s1", None, 2.0, 1, 0.32, 0.91, (0.32, 0.91)),
]


def rows(final: tuple[float, float], early: tuple[float, float]) -> list[EpochRow]:
    """Three evaluations: the untrained network (1), step 10 (``early``), step 20 (final)."""
    evaluations = ((0, 0, (1.0, 1.0)), (1, 10, early), (2, 20, final))
    return [
        EpochRow(epoch, step, task, None, test, "mse", test, {"mse": test}, 1.0, val, val)
        for epoch, step, (test, val) in evaluations
        for task in TASKS
    ]


def build(url: str, validation: bool = True) -> None:
    writer = ResultsWriter(open_engine(url))
    study = writer.get_or_create_study(
        StudyRecord("sel", SPEC, "sel", "toy", TASKS, "normalized_loss", planned=len(TRIALS))
    )
    for arm, key, weights, alpha, seed, test, val, early in TRIALS:
        balancer = "static" if weights is not None else arm
        record = TrialRecord(key, arm, balancer, {}, weights, alpha, seed)
        trial_id = writer.upsert_trials(study, [record])[key]
        writer.mark_running(trial_id, "n", "cpu", T0)
        writer.write_epochs(trial_id, rows((test, val), early) if validation else [])
        mean = weights or [1.2, 0.8]
        extra = {}
        if validation:
            extra = {
                "initial_val_losses": [1.0, 1.0],
                "val_losses": [val, val],
                "val_final_metrics": [val, val],
                "val_normalized_loss": val,
                "best_val_step": 10 if early[1] < val else 20,
            }
        outcome = TrialOutcome(
            "completed", None, "n", "cpu", 1.0, test, mean, mean, T0, T0,
            initial_test_losses=[1.0, 1.0], test_losses=[test, test],
            final_metrics=[test, test], **extra,
        )  # fmt: skip
        writer.finish_trial(trial_id, outcome)


def compare(url: str, *options: str) -> dict:  # type: ignore[type-arg]
    run = CliRunner().invoke(app, ["compare", "sel", "--format", "json", "--db", url, *options])
    assert run.exit_code == 0, run.stderr
    return json.loads(run.stdout)  # type: ignore[no-any-return]


def test_validation_chooses_among_weightings_on_every_seed(db_url: str) -> None:
    build(db_url)
    data = compare(db_url)
    best = data["static_best"]
    # B has the better test score, the one-seed Optuna point the best of all: A is chosen
    assert best["weights"] == [1.0, 1.0] and best["objective"] == pytest.approx(0.5)
    assert best["selection_objective"] == pytest.approx(0.6)
    assert data["test_selected"]["weights"] == [0.5, 1.5]
    assert data["selection_optimism"] == pytest.approx(0.1)
    assert data["left_out_weightings"] == 1
    assert data["selection"] == {"split": "validation", "checkpoint": "final", "note": None}
    assert any("fewer than 2 seeds" in note for note in data["notes"])
    # the best α on validation (α = 1), though α = 2 scores better on test
    chosen = {a["config"]: a["chosen_on_validation"] for a in data["adaptive"]}
    assert chosen == {"gradnorm/a=1": True, "gradnorm/a=2": False}
    status = CliRunner().invoke(app, ["status", "sel", "--format", "json", "--db", db_url])
    shown = json.loads(status.stdout)
    assert shown["static_optimum"] == pytest.approx(0.5) and shown["selected_on"] == "validation"


def test_the_best_validation_checkpoint(db_url: str) -> None:
    build(db_url)
    data = compare(db_url, "--checkpoint", "best_validation")
    assert data["selection"]["checkpoint"] == "best_validation"
    # at step 10 A scores 0.45 on test and 0.30 on validation, B stays at its final 0.40 / 0.70
    assert data["static_best"]["weights"] == [1.0, 1.0]
    assert data["static_best"]["objective"] == pytest.approx(0.45)
    trials = CliRunner().invoke(
        app, ["query", "trials", "--study", "sel", "--format", "json", "--db", db_url]
    )
    by_key = {t["key"]: t for t in json.loads(trials.stdout)}
    assert by_key["static/w=1,1/s0"]["objective"] == pytest.approx(0.5)  # the spec's: final
    bad = CliRunner().invoke(app, ["compare", "sel", "--checkpoint", "best", "--db", db_url])
    assert bad.exit_code == 2 and "--checkpoint: expected final or best_validation" in bad.stderr


def test_a_study_without_validation_is_selected_on_test_and_says_so(sqlite_url: str) -> None:
    build(sqlite_url, validation=False)
    data = compare(sqlite_url)
    assert data["selection"]["split"] == "test"
    assert data["notes"][0] == "selected on test: this study has no validation split"
    assert data["static_best"]["weights"] == [0.5, 1.5]  # the best on test, on both seeds
    status = CliRunner().invoke(app, ["status", "sel", "--db", sqlite_url])
    assert "0.4000 (on test)" in status.stdout


def test_reading_a_study_does_not_import_torch(sqlite_url: str) -> None:
    """The spec's seeds and checkpoint are read from its stored JSON: read commands start
    without torch (parsing the spec would import it through the problem registry)."""
    build(sqlite_url)
    code = (
        "import sys; from gradsweep.storage.engine import open_engine; "
        "from gradsweep.results import load_results; "
        f"r = load_results(open_engine({sqlite_url!r}), 'sel'); "
        "print(r.seeds, 'torch' in sys.modules)"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.split() == ["(0,", "1)", "False"]
