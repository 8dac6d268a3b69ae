"""A user's problem, every adaptive arm and the Δm% objective, end to end on the shared Ray."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from gradsweep.arms import ObjectiveKind
from gradsweep.cli import app
from gradsweep.dashboards import layout
from gradsweep.dashboards.page import study_page
from gradsweep.dashboards.report import write_report
from gradsweep.objectives import LiveObjective
from gradsweep.plan.trials import TrialSpec
from gradsweep.results import load_results, study_list
from gradsweep.results.comparison import compare_study
from gradsweep.search.launch import LaunchOptions, launch
from gradsweep.search.progress import LiveProgress
from gradsweep.spec import load_spec
from gradsweep.storage import queries
from gradsweep.storage.engine import open_engine
from tests.search.specs import write_spec

PLUG_IN = "examples.inverse_norm_balancer:InverseGradientNorm"
ADAPTIVE_CONFIGS = [
    "gradnorm/a=1",
    "uncertainty/lr=0.025",
    "dwa/t=2",
    "rlw/normal",
    "inverse_norm/power=1,eps=1e-08",  # a user's balancer, by import path
]


@pytest.fixture(scope="module")
def wine(tmp_path_factory: pytest.TempPathFactory, ray_session: None) -> str:
    """One Δm% study with every arm on a user's problem; its database URL."""
    folder = tmp_path_factory.mktemp("wine")
    sqlite_url = f"sqlite:///{folder / 'results.db'}"
    path = write_spec(
        folder,
        "wine-adaptive",
        problem="examples.wine_quality:make_problem",
        objective="delta_m",
        budget={"steps": 32, "eval_every": 8, "trace_every": 2},
        arms={
            "static": {"weights": [[1, 1, 1]]},
            "grid": {"resolution": 2},
            "optuna": {"n_trials": 2, "sampler": "random", "seed": 0},
            "gradnorm": {"alphas": [1.0], "initial_loss": "theoretical"},
            "uncertainty": {},
            "dwa": {},
            "rlw": {},
            PLUG_IN: {},
        },
    )
    outcome = launch(load_spec(path), open_engine(sqlite_url), LaunchOptions(quiet=True))
    assert outcome.status == "completed", outcome
    assert outcome.planned == outcome.completed == 1 + 3 + 2 + 5
    return sqlite_url


def test_every_adaptive_arm_on_a_user_problem_scored_by_delta_m(wine: str) -> None:
    engine = open_engine(wine)
    comparison = compare_study(engine, "wine-adaptive")
    assert comparison.objective == "delta_m"
    assert [a.config for a in comparison.adaptive] == ADAPTIVE_CONFIGS
    for result in comparison.adaptive:
        assert sum(result.weights_mean) == pytest.approx(3.0)
        assert result.compute_seconds > 0 and result.seeds == 1
    assert comparison.equal_weights is not None
    assert comparison.equal_weights.objective == pytest.approx(0.0, abs=1e-9)

    # every adaptive trial has its weight trajectory for the dashboard
    traces = queries.weight_traces(engine, "wine-adaptive")
    adaptive_keys = {f"{config}/s0" for config in ADAPTIVE_CONFIGS}
    assert adaptive_keys <= set(traces["key"])
    assert traces.groupby("key").size()[sorted(adaptive_keys)].tolist() == [16] * 5
    # the weights applied, where they differ: uncertainty's precisions exp(−s_i), unscaled
    by_key = traces.set_index(["key", "step"])
    applied = by_key.loc[("uncertainty/lr=0.025/s0", 30), "raw_weights"]
    recorded = by_key.loc[("uncertainty/lr=0.025/s0", 30), "weights"]
    assert recorded == pytest.approx([3 * a / sum(applied) for a in applied])
    assert by_key.loc[("gradnorm/a=1/s0", 30), "raw_weights"] is None  # the same as recorded

    # the documented SQL view lists every adaptive balancer, a user's too (revision 0009)
    with engine.connect() as connection:
        listed = connection.execute(
            text("SELECT balancer FROM gs_static_vs_adaptive WHERE study = 'wine-adaptive'")
        ).scalars()
        assert set(listed) == {"gradnorm", "uncertainty", "dwa", "rlw", PLUG_IN}

    # the Optuna arm minimised Δm% against the equal-weight trial, not the normalised loss
    scored = load_results(engine, "wine-adaptive").trials.set_index("key")
    stored = optuna.load_study(
        study_name="gradsweep:wine-adaptive",
        storage=engine.url.render_as_string(hide_password=False),
    )
    assert len(stored.trials) == 2
    for trial in stored.trials:
        key = f"optuna/t{trial.number:04d}/s0"
        assert trial.value == pytest.approx(scored.loc[key, "objective"], rel=1e-6)
        assert trial.value != pytest.approx(scored.loc[key, "normalized_loss"])

    # the Optuna arm's trials say which weighting and trial they are
    for trial in stored.trials:
        assert trial.user_attrs["key"] == f"optuna/t{trial.number:04d}/s0"
        assert trial.user_attrs["arm"] == "optuna"
        assert trial.user_attrs["weights"] == pytest.approx(
            scored.loc[trial.user_attrs["key"], "static_weights"]
        )


def test_every_reader_shows_the_same_delta_m(wine: str, tmp_path: Path) -> None:
    engine = open_engine(wine)
    results = load_results(engine, "wine-adaptive")
    best = results.best_objective()
    assert best is not None and results.objective is ObjectiveKind.DELTA_M
    status = CliRunner().invoke(app, ["status", "wine-adaptive", "--format", "json", "--db", wine])
    assert json.loads(status.stdout)["best_objective"] == pytest.approx(best)
    listed = [s for s in study_list(engine) if s.name == "wine-adaptive"][0]
    assert listed.best_objective == pytest.approx(best)
    assert f"{best:.4f}" in str(layout.study_table([listed]))  # the dashboard's study list
    comparison = compare_study(engine, "wine-adaptive")
    assert comparison.static_best.objective == pytest.approx(results.static()["objective"].min())
    page = study_page(engine, "wine-adaptive")
    cells = page.figures["table"].data[0].cells.values
    assert cells[2][0] == f"{comparison.static_best.objective:.4f}"
    report = write_report(engine, "wine-adaptive", tmp_path / "r.html").read_text()
    assert f"{comparison.static_best.objective:.4f}" in report
    # a user's balancer, like a built-in (Plotly's JSON writes "/" as \u002f inside <script>)
    assert "inverse_norm/power=1,eps=1e-08" in report.replace("\\u002f", "/")
    # the live display scores finished trials the same way
    directions = [str(d) for d in results.directions or []]
    scorer = LiveObjective(str(results.objective), directions, [])  # as a fresh launch starts
    progress = LiveProgress("wine-adaptive", 10, 0, quiet=True, objective=scorer)
    finals = results.finals.metric_value
    for row in results.trials.itertuples():
        weights = tuple(row.static_weights) if isinstance(row.static_weights, list) else None
        trial = TrialSpec(row.key, row.arm, row.balancer, {}, row.seed, weights)
        metrics = finals.loc[row.key].tolist()
        progress.trial_finished(trial, "completed", row.normalized_loss, metrics)
    expected = results.scored().groupby("arm")["objective"].min()
    assert progress.best() == pytest.approx(expected.to_dict())
    # each adaptive configuration's Pareto values average to its Δm%
    assert comparison.pareto is not None
    for adaptive in comparison.adaptive:
        values = comparison.pareto.adaptive[adaptive.config].task_values
        assert sum(values) / len(values) == pytest.approx(adaptive.objective)


def test_export_every_arm_as_one_optuna_study(wine: str) -> None:
    engine = open_engine(wine)
    results = load_results(engine, "wine-adaptive")
    command = ["export", "wine-adaptive", "--optuna", "wine-all", "--db", wine]
    run = CliRunner().invoke(app, command)
    assert run.exit_code == 0, run.stderr
    assert "11 trials added, 0 already there" in run.stdout
    study = optuna.load_study(study_name="wine-all", storage=engine.url.render_as_string(False))
    assert len(study.directions) == 3 and len(study.trials) == 11
    by_key = {t.user_attrs["key"]: t for t in study.trials}
    trials = results.trials.set_index("key")
    values = results.task_values
    assert set(by_key) == set(trials.index)
    for key, trial in by_key.items():
        assert set(trial.params) == {"w0", "w1", "w2"}
        row = trials.loc[key]
        weights = (
            row["static_weights"]
            if isinstance(row["static_weights"], list)
            else row["weights_mean"]
        )
        assert [trial.params[f"w{i}"] for i in range(3)] == pytest.approx(weights)
        assert trial.values == pytest.approx(values.loc[key].tolist())
        assert trial.user_attrs["arm"] == row["arm"] and trial.user_attrs["seed"] == row["seed"]
        assert trial.user_attrs["objective"] == pytest.approx(row["objective"])
    again = CliRunner().invoke(
        app, ["export", "wine-adaptive", "--optuna", "wine-all", "--db", wine]
    )
    assert "0 trials added, 11 already there" in again.stdout
    clash = CliRunner().invoke(
        app, ["export", "wine-adaptive", "--optuna", "gradsweep:wine-adaptive", "--db", wine]
    )
    assert clash.exit_code == 2 and "not one per task" in clash.stderr
