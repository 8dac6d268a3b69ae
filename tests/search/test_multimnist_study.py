"""A tiny MultiMNIST study end to end on the shared Ray, every arm its config uses."""

from __future__ import annotations

from pathlib import Path

import pytest

from gradsweep.results.answer import compare_study
from gradsweep.search.launch import LaunchOptions, launch
from gradsweep.spec import load_spec
from gradsweep.storage import queries
from gradsweep.storage.engine import open_engine
from tests.search.specs import write_spec

pytestmark = pytest.mark.usefixtures("ray_session")


def test_a_tiny_multimnist_study(tmp_path: Path, sqlite_url: str) -> None:
    path = write_spec(
        tmp_path,
        "mm",
        problem={
            "name": "multimnist",
            "params": {"train_samples": 256, "test_samples": 64, "batch_size": 32},
        },
        objective="delta_m",
        budget={"steps": 16, "eval_every": 8, "trace_every": 2},
        arms={
            "static": {"weights": [[1, 1]]},
            "grid": {"resolution": 2},
            "gradnorm": {"alphas": [1.5], "initial_loss": "theoretical"},
            "uncertainty": {},
            "dwa": {},
            "rlw": {},
            "retrain": {"alpha": 1.5},
        },
    )
    engine = open_engine(sqlite_url)
    outcome = launch(load_spec(path), engine, LaunchOptions(quiet=True))
    # R = 2 at T = 2 is the one point (1, 1): equal weights, trained once for both arms
    assert outcome.status == "completed" and outcome.planned == 6
    trials = queries.trials(engine, study="mm")
    assert trials.set_index("key").at["static/w=1,1/s0", "also_arms"] == ["grid"]
    assert trials["pack"].isna().all()  # a convolutional model on the CPU: auto runs it alone
    comparison = compare_study(engine, "mm")
    assert {a.config for a in comparison.adaptive} == {
        "gradnorm/a=1.5",
        "uncertainty/lr=0.025",
        "dwa/t=2",
        "rlw/normal",
    }
    assert comparison.pareto is not None and len(comparison.pareto.front) >= 1
