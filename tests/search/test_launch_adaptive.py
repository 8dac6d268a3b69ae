"""A user's problem, every adaptive arm and the Δm% objective, end to end on the shared Ray."""

from __future__ import annotations

import html
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
from gradsweep.dashboards.verdicts import COLOURS
from gradsweep.query import query_frame
from gradsweep.results import load_results, study_list
from gradsweep.results.answer import compare_study
from gradsweep.results.optuna_export import exported_trials
from gradsweep.search.launch import LaunchOptions, launch, live_optimum
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
        seeds=[0, 1],
        arms={
            "static": {"weights": [[1, 1, 1]]},
            "grid": {"resolution": 2},
            "optuna": {"n_trials": 2, "sampler": "random", "seed": 0, "confirm": 1},
            "gradnorm": {"alphas": [1.0], "initial_loss": "theoretical"},
            "uncertainty": {},
            "dwa": {},
            "rlw": {},
            PLUG_IN: {},
        },
    )
    outcome = launch(load_spec(path), open_engine(sqlite_url), LaunchOptions(quiet=True))
    assert outcome.status == "completed", outcome
    # per seed static 1 + grid 3 + 5 adaptive; optuna 2 on seed 0, its best on seed 1
    assert outcome.planned == outcome.completed == 2 * (1 + 3 + 5) + 2 + 1
    return sqlite_url


def test_every_adaptive_arm_on_a_user_problem_scored_by_delta_m(wine: str) -> None:
    engine = open_engine(wine)
    comparison = compare_study(engine, "wine-adaptive")
    assert comparison.objective == "delta_m"
    assert [a.config for a in comparison.adaptive] == ADAPTIVE_CONFIGS
    for result in comparison.adaptive:
        assert sum(result.weights_mean) == pytest.approx(3.0)
        assert result.compute_seconds > 0 and result.seeds == 2
    assert comparison.equal_weights is not None
    assert comparison.equal_weights.objective == pytest.approx(0.0, abs=1e-9)

    # every adaptive trial has its weight trajectory for the dashboard
    traces = queries.weight_traces(engine, "wine-adaptive")
    adaptive_keys = {f"{config}/s{seed}" for config in ADAPTIVE_CONFIGS for seed in (0, 1)}
    assert adaptive_keys <= set(traces["key"])
    assert traces.groupby("key").size()[sorted(adaptive_keys)].tolist() == [16] * 10
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

    # the Optuna arm minimised Δm% on validation against the equal-weight trials, not the
    # normalised loss, and never the test objective
    scored = load_results(engine, "wine-adaptive").trials.set_index("key")
    stored = optuna.load_study(
        study_name="gradsweep:wine-adaptive",
        storage=engine.url.render_as_string(hide_password=False),
    )
    assert len(stored.trials) == 2
    for trial in stored.trials:
        key = f"optuna/t{trial.number:04d}/s0"
        assert trial.value == pytest.approx(scored.loc[key, "selection_objective"], rel=1e-6)
        assert trial.value != pytest.approx(scored.loc[key, "objective"])
        assert trial.value != pytest.approx(scored.loc[key, "normalized_loss"])
    # the confirm phase: the better suggestion on validation, trained on the other seed
    best = min(stored.trials, key=lambda t: t.value)
    assert f"optuna/t{best.number:04d}/s1" in scored.index

    # the Optuna arm's trials say which weighting and trial they are
    for trial in stored.trials:
        assert trial.user_attrs["key"] == f"optuna/t{trial.number:04d}/s0"
        assert trial.user_attrs["arm"] == "optuna"
        assert trial.user_attrs["weights"] == pytest.approx(
            scored.loc[trial.user_attrs["key"], "static_weights"]
        )


def test_every_reader_shows_the_same_delta_m(wine: str, tmp_path: Path) -> None:
    """One optimum for every reader: chosen on validation among the weightings trained on
    both seeds, reported on test (Optuna arm, two seeds, Δm%)."""
    engine = open_engine(wine)
    results = load_results(engine, "wine-adaptive")
    assert results.objective is ObjectiveKind.DELTA_M
    assert str(results.selection.split) == "validation" and results.selection.note is None
    comparison = compare_study(engine, "wine-adaptive")
    best = comparison.static_best
    static = results.static()
    seeds = static.groupby(static["static_weights"].map(tuple))["seed"].nunique()
    full = seeds[seeds == 2].index
    means = static.groupby(static["static_weights"].map(tuple))[
        ["objective", "selection_objective"]
    ].mean()
    chosen = means.loc[full, "selection_objective"].idxmin()
    assert best.weights == pytest.approx(list(chosen), abs=1e-9)
    assert best.objective == pytest.approx(means["objective"][chosen])
    assert comparison.left_out_weightings == int((seeds < 2).sum()) == 1  # one Optuna suggestion
    assert comparison.test_selected is not None
    picked = means.loc[full, "objective"].idxmin()
    assert comparison.test_selected.weights == pytest.approx(list(picked), abs=1e-9)
    assert comparison.selection_optimism == pytest.approx(
        best.objective - comparison.test_selected.objective
    )
    status = CliRunner().invoke(app, ["status", "wine-adaptive", "--format", "json", "--db", wine])
    shown = json.loads(status.stdout)
    assert shown["static_optimum"] == pytest.approx(best.objective)
    assert shown["static_optimum_weights"] == pytest.approx(best.weights)
    listed = [s for s in study_list(engine) if s.name == "wine-adaptive"][0]
    assert listed.static_optimum == pytest.approx(best.objective)
    assert f"{best.objective:.4f}" in str(layout.study_table([listed]))  # the dashboard's list
    studies = query_frame(engine, "studies").set_index("name")
    assert studies.loc["wine-adaptive", "static_optimum"] == pytest.approx(best.objective)
    compared = CliRunner().invoke(
        app, ["compare", "wine-adaptive", "--format", "json", "--db", wine]
    )
    data = json.loads(compared.stdout)
    assert data["static_best"]["objective"] == pytest.approx(best.objective)
    assert data["selection"]["split"] == "validation"
    ranks = {a["config"]: a["rank_percentile"] for a in data["adaptive"]}
    assert ranks == {a.config: pytest.approx(a.rank_percentile) for a in comparison.adaptive}
    page = study_page(engine, "wine-adaptive")
    cells = page.figures["table"].data[0].cells.values
    assert cells[2][0] == f"{best.objective:.4f} ± {best.objective_std:.4f}"
    report = write_report(engine, "wine-adaptive", tmp_path / "r.html").read_text()
    assert f"{best.objective:.4f}" in report
    # a user's balancer, like a built-in (Plotly's JSON writes "/" as \u002f inside <script>)
    assert "inverse_norm/power=1,eps=1e-08" in report.replace("\\u002f", "/")
    # the live display reads the same optimum through the results layer
    line = live_optimum(engine, results.id)
    assert line is not None and f"{best.objective:.4f}" in line
    # the SQL views compare like with like: the same optimum, scores and ranks
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT * FROM gs_static_vs_adaptive WHERE study = 'wine-adaptive'")
        ).mappings()
        viewed = {row["config"]: row for row in rows}
        trial_scores = connection.execute(
            text(
                "SELECT key, objective, selection_objective FROM gs_trial_scores "
                "WHERE study = 'wine-adaptive'"
            )
        ).all()
    assert set(viewed) == {a.config for a in comparison.adaptive}
    for adaptive in comparison.adaptive:
        row = viewed[adaptive.config]
        assert json.loads(row["static_optimum_weights"]) == pytest.approx(best.weights)
        assert row["static_optimum_objective"] == pytest.approx(best.objective)
        assert row["adaptive_objective"] == pytest.approx(adaptive.objective)
        rank = 100.0 * row["static_trials_beaten"] / row["static_trials"]
        assert rank == pytest.approx(adaptive.rank_percentile)
        assert row["selected_on"] == "validation"
    scored = results.trials.set_index("key")
    for key, objective, selection_objective in trial_scores:
        assert objective == pytest.approx(scored.loc[key, "objective"])
        assert selection_objective == pytest.approx(scored.loc[key, "selection_objective"])
    # the exported Optuna study marks the optimum's trials and keeps both scores
    exported = exported_trials(results)
    marked = {t.user_attrs["key"] for t in exported if t.user_attrs["static_optimum"]}
    assert marked == set(best.keys)
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
    assert "21 trials added, 0 already there" in run.stdout
    study = optuna.load_study(study_name="wine-all", storage=engine.url.render_as_string(False))
    assert len(study.directions) == 3 and len(study.trials) == 21
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
    assert "0 trials added, 21 already there" in again.stdout
    clash = CliRunner().invoke(
        app, ["export", "wine-adaptive", "--optuna", "gradsweep:wine-adaptive", "--db", wine]
    )
    assert clash.exit_code == 2 and "not one per task" in clash.stderr


def outcome_from_figures(verdict: dict) -> str:  # type: ignore[type-arg]
    """Each interval rule worked out again from the figures the JSON carries."""
    f, claim = verdict["figures"], verdict["claim"]
    if claim in ("C1", "C2", "C5") and f.get("low") is None:
        return "inconclusive"
    if claim == "C1":
        return "confirmed" if f["high"] < 0 else "refuted" if f["low"] > 0 else "inconclusive"
    if claim == "C2":
        m = f["margin"]
        return "confirmed" if f["high"] < m else "refuted" if f["low"] > m else "inconclusive"
    if claim == "C4":
        if f["rho"] is None or f["p_value"] >= 0.05:
            return "inconclusive"
        return "confirmed" if f["rho"] > 0 else "refuted"
    if claim == "C6":
        return "confirmed" if f["ratio"] < 1 else "refuted"
    return str(verdict["outcome"])  # C3, C5: read from their own figures in test_verdicts


def test_every_reader_shows_the_same_verdicts(wine: str, tmp_path: Path) -> None:
    """A real two-seed Δm% study: its verdicts follow from their figures, two seeds are
    warned, and the CLI's table, its JSON, the dashboard and the report show the same."""
    engine = open_engine(wine)
    verdicts = compare_study(engine, "wine-adaptive").verdicts
    assert verdicts is not None and verdicts.margin == 1.0  # Δm%: one point
    balancers = {v.balancer for v in verdicts.claims}
    assert balancers == {"gradnorm", "uncertainty", "dwa", "rlw", PLUG_IN}
    assert any("2 seed(s)" in warning for warning in verdicts.warnings)
    runner = CliRunner()
    table = runner.invoke(app, ["compare", "wine-adaptive", "--db", wine])
    assert table.output.splitlines()[1 : 1 + len(verdicts.claims)] == verdicts.lines()
    data = json.loads(
        runner.invoke(app, ["compare", "wine-adaptive", "--format", "json", "--db", wine]).output
    )
    claims = data["verdict"]["claims"]
    assert [c["line"] for c in claims] == verdicts.lines()
    for claim in claims:
        assert claim["outcome"] == outcome_from_figures(claim), claim["line"]
        assert claim["robustness"]["seeds_left_out"], claim["line"]  # two seeds: checked
    # the dashboard's card and budget figure, and the report, say the same
    page = study_page(engine, "wine-adaptive")
    assert page.verdicts is not None and page.verdicts.lines() == verdicts.lines()
    budget = page.figures["budget"]
    c1 = [v for v in verdicts.claims if v.claim == "C1" and v.robustness is not None]
    drawn = {trace.name: list(trace.marker.color) for trace in budget.data if trace.xaxis == "x"}
    for verdict in c1:
        assert verdict.robustness is not None
        colours = [COLOURS[point.outcome] for point in verdict.robustness.budget]
        assert drawn[verdict.config] == colours
    report = write_report(engine, "wine-adaptive", tmp_path / "verdicts.html").read_text()
    for line in verdicts.lines():
        assert html.escape(line) in report
