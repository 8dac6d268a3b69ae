"""Extending a study and training a weighting once, through the real command line on the
shared Ray session and a real SQLite file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from gradsweep.cli import app
from gradsweep.search.extend import ExtensionError, changed_fields, check_extension
from gradsweep.spec import load_spec
from gradsweep.storage import queries
from gradsweep.storage.engine import open_engine
from tests.search.specs import write_spec

SMALL_ARMS = {
    "static": {"weights": [[1, 1, 1]]},
    "grid": {"resolution": 2},
    "gradnorm": {"alphas": [0.12]},
    "retrain": {"alpha": 0.12},
}


def edited(path: Path, name: str, change: dict[str, object]) -> Path:
    """The spec at ``path`` with top-level fields replaced, written beside it."""
    spec = yaml.safe_load(path.read_text())
    spec.update(change)
    out = path.with_name(f"{name}.yaml")
    out.write_text(yaml.safe_dump(spec, sort_keys=False))
    return out


def test_rules_name_each_field_that_changes_trials(tmp_path: Path) -> None:
    old = load_spec(write_spec(tmp_path, "rules", arms=dict(SMALL_ARMS)))
    wider = load_spec(
        write_spec(
            tmp_path,
            "rules",
            seeds=[0, 1],
            max_concurrent=1,
            arms={**SMALL_ARMS, "gradnorm": {"alphas": [0.12, 1.5]}, "grid": {"resolution": 4},
                  "dwa": {}},
        )
    )  # fmt: skip
    assert changed_fields(old, wider) == []
    check_extension(old, wider, 3)  # finer grid (R=4 holds R=2's points), αs, seeds, an arm

    changed = load_spec(
        write_spec(
            tmp_path,
            "rules",
            budget={"steps": 50, "trace_every": 5},
            arms={**SMALL_ARMS, "gradnorm": {"alphas": [0.12], "lr": 0.01}},
        )
    )
    assert changed_fields(old, changed) == [
        "arms.gradnorm.lr 0.025 → 0.01",
        "budget.steps 40 → 50",
    ]
    coarser = load_spec(
        write_spec(tmp_path, "rules", arms={**SMALL_ARMS, "grid": {"resolution": 3}})
    )
    with pytest.raises(ExtensionError, match=r"drops planned trials grid/w=1.5,1.5,0/s0"):
        check_extension(old, coarser, 3)
    fewer = load_spec(write_spec(tmp_path, "rules", arms={"static": {"weights": [[1, 1, 1]]}}))
    assert changed_fields(old, fewer) == ["arms.grid removed", "arms.gradnorm removed",
                                          "arms.retrain removed"]  # fmt: skip


def test_the_optuna_arms_first_seed_stays_first(tmp_path: Path) -> None:
    arms = {**SMALL_ARMS, "optuna": {"n_trials": 2}}
    old = load_spec(write_spec(tmp_path, "first", arms=arms))
    assert (
        changed_fields(old, load_spec(write_spec(tmp_path, "first", seeds=[0, 1], arms=arms))) == []
    )
    moved = load_spec(write_spec(tmp_path, "first", seeds=[1, 0], arms=arms))
    assert changed_fields(old, moved) == ["seeds[0] 0 → 1 (the Optuna arm's seed)"]
    no_optuna = load_spec(write_spec(tmp_path, "first", arms=dict(SMALL_ARMS)))
    later = load_spec(write_spec(tmp_path, "first", seeds=[1, 0], arms=dict(SMALL_ARMS)))
    assert changed_fields(no_optuna, later) == []  # without Optuna, seed order adds only


@pytest.mark.usefixtures("ray_session")
def test_a_weighting_asked_for_twice_trains_once_and_belongs_to_both(
    tmp_path: Path, sqlite_url: str
) -> None:
    path = write_spec(
        tmp_path,
        "twice",
        arms={"static": {"weights": [[1, 1, 1]]}, "grid": {"resolution": 3},
              "gradnorm": {"alphas": [0.12]}},
    )  # fmt: skip
    cli = CliRunner()
    check = cli.invoke(app, ["spec", "check", str(path)])
    assert check.exit_code == 0, check.stderr
    assert "8 trials" in check.stdout  # 1 static + 7 grid points − the shared one + 1 GradNorm
    assert "static weighting 1,1,1 is also a grid point: trained once per seed" in check.stdout

    run = cli.invoke(app, ["launch", str(path), "--quiet", "--db", sqlite_url])
    assert run.exit_code == 0, run.stderr
    assert "8/8 completed" in run.stdout
    trials = queries.trials(open_engine(sqlite_url), study="twice")
    assert len(trials) == 8 and "grid/w=1,1,1/s0" not in set(trials["key"])
    shared = trials.set_index("key").loc["static/w=1,1,1/s0"]
    assert shared["also_arms"] == ["grid"]

    grid = cli.invoke(
        app, ["query", "trials", "--study", "twice", "--arm", "grid", "--format", "json",
              "--db", sqlite_url],
    )  # fmt: skip
    keys = {row["key"] for row in json.loads(grid.stdout)}
    assert len(keys) == 7 and "static/w=1,1,1/s0" in keys
    compare = json.loads(
        cli.invoke(app, ["compare", "twice", "--format", "json", "--db", sqlite_url]).stdout
    )
    assert compare["static_trials"] == 7  # the shared weighting counted once
    assert {"static", "grid"} <= set(compare["best_so_far"])


@pytest.mark.usefixtures("ray_session")
def test_a_study_extended_runs_only_its_new_trials(tmp_path: Path, sqlite_url: str) -> None:
    cli = CliRunner()
    first = write_spec(tmp_path, "grow", arms=dict(SMALL_ARMS))
    run = cli.invoke(app, ["launch", str(first), "--quiet", "--db", sqlite_url])
    assert run.exit_code == 0 and "6/6 completed" in run.stdout, run.stderr
    engine = open_engine(sqlite_url)
    before = queries.trials(engine, study="grow").set_index("key")["finished_at"]

    more = edited(
        first,
        "grow-more",
        {"seeds": [0, 1], "arms": {**SMALL_ARMS, "gradnorm": {"alphas": [0.12, 1.5]}}},
    )
    run = cli.invoke(app, ["launch", str(more), "--quiet", "--db", sqlite_url])
    assert run.exit_code == 0, run.stderr
    assert "grow (id 1): completed, 14/14 completed" in run.stdout
    after = queries.trials(engine, study="grow").set_index("key")["finished_at"]
    assert len(after) == 14
    unchanged = [k for k in before.index if k != "retrain/a=0.12/s0"]
    assert (after[unchanged] == before[unchanged]).all()  # reused, not trained again
    # a second seed moves GradNorm's mean weights: the retrain trial ran again at them
    assert after["retrain/a=0.12/s0"] > before["retrain/a=0.12/s0"]
    assert queries.find_study(engine, "grow").planned == 14

    status = json.loads(
        cli.invoke(app, ["status", "grow", "--format", "json", "--db", sqlite_url]).stdout
    )
    assert (status["planned"], status["completed"]) == (14, 14)

    changed = edited(more, "grow-changed", {"budget": {"steps": 50, "trace_every": 5}})
    refused = cli.invoke(app, ["launch", str(changed), "--quiet", "--db", sqlite_url])
    assert refused.exit_code == 2
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and "budget.steps 40 → 50" in lines[0] and "--name" in lines[0]
    fewer = edited(more, "grow-fewer", {"seeds": [1]})
    refused = cli.invoke(app, ["launch", str(fewer), "--quiet", "--db", sqlite_url])
    assert refused.exit_code == 2 and "drops planned trials static/w=1,1,1/s0" in refused.stderr
    assert len(queries.trials(engine, study="grow")) == 14  # nothing written by a refusal
