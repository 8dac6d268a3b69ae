"""A user's problem, every adaptive arm and the Δm% objective, end to end on the shared Ray."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from gradsweep.compare import compare_study
from gradsweep.objectives import study_trials
from gradsweep.search.launch import LaunchOptions, launch
from gradsweep.spec import load_spec
from gradsweep.storage import queries
from gradsweep.storage.engine import open_engine
from tests.search.specs import write_spec

pytestmark = pytest.mark.usefixtures("ray_session")

ADAPTIVE_CONFIGS = ["gradnorm/a=1", "uncertainty/lr=0.025", "dwa/t=2", "rlw/normal"]


def test_every_adaptive_arm_on_a_user_problem_scored_by_delta_m(
    tmp_path: Path, sqlite_url: str
) -> None:
    path = write_spec(
        tmp_path,
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
        },
    )
    engine = open_engine(sqlite_url)
    outcome = launch(load_spec(path), engine, LaunchOptions(quiet=True))
    assert outcome.status == "completed", outcome
    assert outcome.planned == outcome.completed == 1 + 3 + 2 + 4

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
    assert traces.groupby("key").size()[sorted(adaptive_keys)].tolist() == [16] * 4

    # the Optuna arm minimised Δm% against the equal-weight trial, not the normalised loss
    info = queries.find_study(engine, "wine-adaptive")
    scored = study_trials(engine, info).set_index("key")
    stored = optuna.load_study(
        study_name="gradsweep:wine-adaptive",
        storage=engine.url.render_as_string(hide_password=False),
    )
    assert len(stored.trials) == 2
    for trial in stored.trials:
        key = f"optuna/t{trial.number:04d}/s0"
        assert trial.value == pytest.approx(scored.loc[key, "objective"], rel=1e-6)
        assert trial.value != pytest.approx(scored.loc[key, "normalized_loss"])
