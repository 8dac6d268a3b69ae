"""Packed studies on the shared local Ray session: members stay trials, nothing else changes."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from gradsweep.search.launch import LaunchOptions, launch
from gradsweep.spec import load_spec
from gradsweep.storage import queries
from gradsweep.storage.engine import open_engine
from tests.search.specs import TINY_TOY, write_spec

pytestmark = pytest.mark.usefixtures("ray_session")

QUIET = LaunchOptions(quiet=True)
# digits trains smoothly: float32 rounding of a packed step stays ~1e-7 of the objective
# after 40 steps (the tiny toy's training is chaotic enough to reach ~1e-3)
TINY_DIGITS = {"train_samples": 400, "test_samples": 100, "batch_size": 50}
PACKED_ARMS = {"static", "grid", "gradnorm"}


def test_a_packed_study_records_what_the_unpacked_one_does(tmp_path: Path, sqlite_url: str) -> None:
    """On SQLite: packed trials' rows on PostgreSQL are written by the every-arm launch test
    (pack: auto) and the killed-launch test."""
    path = write_spec(
        tmp_path,
        "packed",
        problem={"name": "digits", "params": TINY_DIGITS},
        arms={
            "static": {"weights": [[1, 2, 1]]},  # not a grid point: 1 + 7 static trials
            "grid": {"resolution": 3},
            "gradnorm": {"alphas": [0.5, 1.5]},
            "dwa": {},
        },
    )
    engine = open_engine(sqlite_url)
    packed = launch(load_spec(path), engine, QUIET)
    alone = launch(load_spec(path), engine, LaunchOptions(quiet=True, pack=1, name="alone"))
    assert packed.status == alone.status == "completed" and packed.planned == 11
    ours = queries.trials(engine, study="packed").set_index("key").sort_index()
    theirs = queries.trials(engine, study="alone").set_index("key").sort_index()
    assert list(ours.index) == list(theirs.index) and set(ours["status"]) == {"completed"}
    assert ours["normalized_loss"].to_numpy() == pytest.approx(
        theirs["normalized_loss"].to_numpy(), rel=1e-5
    )
    gradnorm = ours["arm"] == "gradnorm"
    for key in ours.index[gradnorm]:
        assert ours.at[key, "weights_mean"] == pytest.approx(theirs.at[key, "weights_mean"], 1e-5)
    in_pack = ours["arm"].isin(PACKED_ARMS)
    assert ours.loc[in_pack, "pack"].notna().all() and ours.loc[~in_pack, "pack"].isna().all()
    assert ours.loc[ours["arm"] != "gradnorm", "pack"].nunique() == 2  # 1 + 7 static → 4 + 4
    assert theirs["pack"].isna().all() and (ours["attempts"] == 1).all()
    assert (ours["train_seconds"] > 0).all()
    rows = queries.curves(engine, "packed").groupby("key").size()
    assert rows.equals(queries.curves(engine, "alone").groupby("key").size())
    assert not queries.curves(engine, "packed").duplicated(["key", "epoch", "task"]).any()
    traces = queries.weight_traces(engine, "packed")
    assert set(traces["key"]) == set(ours.index)


def test_a_failing_member_fails_alone_and_a_pack_that_cannot_start_runs_its_members_alone(
    tmp_path: Path, sqlite_url: str
) -> None:
    path = write_spec(
        tmp_path,
        "member-fails",
        problem={
            "name": "tests.search.problems:short_theory",
            "params": {**TINY_TOY, "driver_pid": os.getpid()},  # fails on the workers only
        },
        arms={
            "static": {"weights": [[1, 1, 1], [1e300, 1, 1]]},  # inf in float32: NaN at step 1
            "grid": {"resolution": 2},
            # one closed-form L_i(0) for three tasks: every GradNorm trial fails, packed or not
            "gradnorm": {"alphas": [0.1, 0.5], "initial_loss": "theoretical"},
        },
    )
    engine = open_engine(sqlite_url)
    outcome = launch(load_spec(path), engine, QUIET)
    trials = queries.trials(engine, study="member-fails").set_index("key")
    assert outcome.status == "failed" and (outcome.completed, outcome.failed) == (4, 3)
    failed = trials.loc["static/w=1e+300,1,1/s0"]
    assert (
        failed["status"] == "failed" and failed["pack"] == trials.at["grid/w=1.5,1.5,0/s0", "pack"]
    )
    assert str(failed["error"]).startswith("non-finite loss at step 1: task0=nan")
    gradnorm = trials[trials["arm"] == "gradnorm"]
    assert set(gradnorm["status"]) == {"failed"}
    assert all("gives 1 theoretical initial losses for 3 tasks" in e for e in gradnorm["error"])
    assert set(trials.loc[trials["arm"] == "grid", "status"]) == {"completed"}
    curves = queries.curves(engine, "member-fails")
    assert set(curves.loc[curves["key"] == "static/w=1e+300,1,1/s0", "epoch"]) == {0}


def test_an_unpackable_problem_runs_unpacked_with_a_one_line_notice(
    tmp_path: Path, sqlite_url: str, ray_address: str
) -> None:
    path = write_spec(
        tmp_path,
        "dropout",
        problem={"name": "tests.trainers.packing_problems:dropout_toy", "params": TINY_TOY},
        arms={"grid": {"resolution": 2}, "gradnorm": {"alphas": [0.1, 0.5]}},
    )
    command = [sys.executable, "-m", "gradsweep.cli"]
    check = subprocess.run(
        [*command, "spec", "check", str(path)], capture_output=True, text=True, timeout=120
    )
    assert check.returncode == 0 and "packing off: the model does not run under" in check.stdout
    run = subprocess.run(
        [*command, "launch", str(path), "--db", sqlite_url, "--ray-address", ray_address]
        + ["--quiet"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    notice = run.stderr.strip().splitlines()
    assert len(notice) == 1 and notice[0].startswith("packing off: the model does not run")
    trials = queries.trials(open_engine(sqlite_url), study="dropout")
    assert len(trials) == 5 and set(trials["status"]) == {"completed"}
    assert trials["pack"].isna().all()


def test_status_and_query_see_members_as_trials(tmp_path: Path, sqlite_url: str) -> None:
    path = write_spec(tmp_path, "members", arms={"grid": {"resolution": 3}})
    engine = open_engine(sqlite_url)
    assert launch(load_spec(path), engine, QUIET).status == "completed"
    from typer.testing import CliRunner

    from gradsweep.cli import app

    out = CliRunner().invoke(
        app, ["query", "trials", "--study", "members", "--format", "json", "--db", sqlite_url]
    )
    frame = pd.read_json(io.StringIO(out.stdout))
    assert len(frame) == 7 and frame["pack"].nunique() == 2  # 7 at auto (2 slots) → 4 + 3


def test_a_bf16_study_trains_its_packs_and_loners_in_bf16(tmp_path: Path, sqlite_url: str) -> None:
    """``precision: bf16`` reaches every trial, packed or alone, and is its own study."""
    arms = {"static": {"weights": [[1, 1, 1]]}, "grid": {"resolution": 2}, "dwa": {}}
    fp32_path = write_spec(tmp_path, "fp32", arms=arms)
    bf16_path = write_spec(tmp_path, "bf16", arms=arms, precision="bf16")
    engine = open_engine(sqlite_url)
    fp32 = launch(load_spec(fp32_path), engine, QUIET)
    bf16 = launch(load_spec(bf16_path), engine, QUIET)
    assert fp32.status == bf16.status == "completed"
    ours = queries.trials(engine, study="bf16").set_index("key").sort_index()
    theirs = queries.trials(engine, study="fp32").set_index("key").sort_index()
    assert list(ours.index) == list(theirs.index) and (ours["status"] == "completed").all()
    assert (ours["pack"].notna()).any() and (ours["pack"].isna()).any()
    differs = (ours["normalized_loss"] - theirs["normalized_loss"]).abs()
    assert (differs > 0).all() and (differs < 0.1 * theirs["normalized_loss"]).all()
    assert load_spec(bf16_path).spec_hash != load_spec(fp32_path).spec_hash
