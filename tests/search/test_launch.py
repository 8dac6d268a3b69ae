"""Whole studies on the shared local Ray session, results in a real database.

The whole-study and kill/resume cases run on SQLite and PostgreSQL; the scheduling cases
(GPUs, Optuna, failures) are about Ray, so they use SQLite alone to keep the suite short.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from gradsweep.cli import app
from gradsweep.search.launch import LaunchOptions, launch, nothing_left, resume, study_record
from gradsweep.spec import load_spec, task_metrics
from gradsweep.storage import queries
from gradsweep.storage.engine import open_engine
from gradsweep.storage.writer import ResultsWriter
from tests.search.specs import TINY_TOY, write_spec

pytestmark = pytest.mark.usefixtures("ray_session")

QUIET = LaunchOptions(quiet=True)


def epoch_rows(engine: Engine, study: str) -> pd.DataFrame:
    return queries.curves(engine, study)


def overlap(frame: pd.DataFrame) -> int:
    """The largest number of trials whose [started_at, finished_at] intervals overlap."""
    events = [(t, 1) for t in frame["started_at"]] + [(t, -1) for t in frame["finished_at"]]
    running = peak = 0
    for _, change in sorted(events, key=lambda e: (e[0], e[1])):
        running += change
        peak = max(peak, running)
    return peak


def test_a_study_with_every_arm_completes(tmp_path: Path, db_url: str) -> None:
    spec = load_spec(write_spec(tmp_path, "all-arms"))
    engine = open_engine(db_url)
    outcome = launch(spec, engine, QUIET)
    assert outcome.status == "completed", outcome
    assert nothing_left(spec, 3, engine, outcome.study_id)  # resume: no Ray, retrain done
    trials = queries.trials(engine, study="all-arms")
    # static 1 + grid 3 (resolution 2, T=3, no vertices) + random 2 + gradnorm 1
    # + optuna 3 + retrain 1 (one seed)
    assert outcome.planned == len(trials) == 11
    assert trials["key"].is_unique
    assert set(trials["status"]) == {"completed"}
    assert trials["node"].str.fullmatch(r".+ \(.+, node [0-9a-f]{8}\)").all()
    assert set(trials["device"]) == {"cpu"}
    assert trials.groupby("arm").size().to_dict() == {
        "grid": 3,
        "gradnorm": 1,
        "optuna": 3,
        "random": 2,
        "retrain": 1,
        "static": 1,
    }
    curves = epoch_rows(engine, "all-arms")
    # 400 samples / batch 50 = 8 steps an epoch: evaluations at 0, 8, ..., 40 → 6 per trial
    assert len(curves) == 11 * 6 * 3
    assert not curves.duplicated(["key", "epoch", "task"]).any()
    gradnorm = trials[trials["arm"] == "gradnorm"].iloc[0]
    retrain = trials[trials["arm"] == "retrain"].iloc[0]
    assert retrain["weights_mean"] == pytest.approx(gradnorm["weights_mean"], rel=1e-6)
    assert all(sum(w) == pytest.approx(3.0) for w in trials["weights_mean"])
    traces = queries.weight_traces(engine, "all-arms")
    assert set(traces["key"]) == set(trials["key"])
    # every evaluation on validation too, and every reader chooses on it (both databases)
    assert curves["val_loss"].notna().all() and trials["val_normalized_loss"].notna().all()
    run = CliRunner().invoke(app, ["compare", "all-arms", "--format", "json", "--db", db_url])
    compared = json.loads(run.stdout)
    assert compared["selection"] == {"split": "validation", "checkpoint": "final", "note": None}
    with engine.connect() as connection:
        row = (
            connection.execute(text("SELECT * FROM gs_static_vs_adaptive WHERE study = 'all-arms'"))
            .mappings()
            .one()
        )
    assert row["static_optimum_objective"] == pytest.approx(compared["static_best"]["objective"])
    assert json.loads(row["static_optimum_weights"]) == pytest.approx(
        compared["static_best"]["weights"]
    )


def test_launching_the_same_spec_again_runs_nothing(tmp_path: Path, sqlite_url: str) -> None:
    path = write_spec(tmp_path, "again", arms={"grid": {"resolution": 2}})
    engine = open_engine(sqlite_url)
    first = launch(load_spec(path), engine, QUIET)
    before = queries.trials(engine, study="again")[["key", "finished_at"]]
    second = launch(load_spec(path), engine, QUIET)
    after = queries.trials(engine, study="again")[["key", "finished_at"]]
    assert first.status == second.status == "completed"
    pd.testing.assert_frame_equal(before.sort_values("key"), after.sort_values("key"))


def test_a_failing_problem_fails_its_trials_and_the_study_goes_on(
    tmp_path: Path, sqlite_url: str
) -> None:
    """Through the command line: launch finishes the study, says which trials failed and
    why on stderr and exits 3; status and query show each failure's traceback."""
    from typer.testing import CliRunner

    from gradsweep.cli import EXIT_TRIALS_FAILED, app

    path = write_spec(
        tmp_path,
        "failing",
        problem={"name": "tests.search.problems:odd_seeds_fail", "params": dict(TINY_TOY)},
        seeds=[0, 1],
        arms={"grid": {"resolution": 2}, "gradnorm": {"alphas": [0.5]}},
    )
    cli = CliRunner()
    run = cli.invoke(app, ["launch", str(path), "--quiet", "--db", sqlite_url])
    assert run.exit_code == EXIT_TRIALS_FAILED == 3, run.stderr
    assert "failing (id 1): failed, 4/8 completed, 4 failed" in run.stdout
    assert "4 trial(s) failed:" in run.stderr and "… and 1 more" in run.stderr
    assert (
        "cannot build a model for seed 1" in run.stderr
        and "tests/search/problems.py:" in run.stderr
    )
    assert "--status failed --format json" in run.stderr

    trials = queries.trials(open_engine(sqlite_url), study="failing")
    assert len(trials) == 8
    failed = trials[trials["status"] == "failed"]
    assert set(failed["seed"]) == {1} and len(failed) == 4
    assert all("cannot build a model for seed 1" in error for error in failed["error"])
    assert set(trials[trials["seed"] == 0]["status"]) == {"completed"}

    status = cli.invoke(app, ["status", "failing", "--db", sqlite_url])
    assert status.exit_code == 0, status.stderr
    assert "failed trials of failing:" in status.stdout
    reasons = [line for line in status.stdout.splitlines() if line.startswith("  gradnorm/")]
    assert len(reasons) == 1 and "cannot build a model for seed 1" in reasons[0]
    assert "raise RuntimeError" in status.stdout  # the traceback's tail, where it raised
    as_json = json.loads(
        cli.invoke(app, ["status", "failing", "--format", "json", "--db", sqlite_url]).stdout
    )
    assert len(as_json["failures"]) == 4
    assert all(
        "Traceback" in f["traceback"] and "build_model" in f["traceback"]
        for f in as_json["failures"]
    )
    query = cli.invoke(
        app,
        [
            "query",
            "trials",
            "--study",
            "failing",
            "--status",
            "failed",
            "--format",
            "json",
            "--db",
            sqlite_url,
        ],
    )
    rows = json.loads(query.stdout)
    assert len(rows) == 4 and all("RuntimeError" in row["traceback"] for row in rows)
    table = cli.invoke(app, ["query", "trials", "--study", "failing", "--db", sqlite_url])
    assert "Traceback" not in table.stdout  # too long for a table cell: JSON and CSV only

    again = cli.invoke(app, ["resume", "failing", "--quiet", "--db", sqlite_url])
    assert again.exit_code == EXIT_TRIALS_FAILED and "4 trial(s) failed:" in again.stderr


def test_logical_gpus_are_shared_by_fractional_trials(tmp_path: Path, sqlite_url: str) -> None:
    """Ray was started with 2 logical GPUs: 0.5 GPU per trial → 4 trials at once."""
    path = write_spec(
        tmp_path,
        "gpus",
        budget={"steps": 400, "eval_every": 100},
        seeds=[0],
        arms={"grid": {"resolution": 2, "include_vertices": True}},  # 6 points, one seed
        resources={"cpus_per_trial": 0.5, "gpus_per_trial": 0.5, "pack": 1},  # Ray trials = trials
        max_concurrent=8,
    )
    engine = open_engine(sqlite_url)
    assert launch(load_spec(path), engine, QUIET).status == "completed"
    trials = queries.trials(engine, study="gpus")
    assert len(trials) == 6
    # no CUDA here, so the device is the CPU, with the logical GPU Ray assigned
    assert all(d.startswith("cpu (ray gpu ") for d in trials["device"])
    assert {d.removeprefix("cpu (ray gpu ").rstrip(")") for d in trials["device"]} == {"0", "1"}
    assert overlap(trials) == 4


def test_optuna_trials_run_concurrently_and_live_in_the_results_database(
    tmp_path: Path, sqlite_url: str
) -> None:
    path = write_spec(
        tmp_path,
        "optuna",
        budget={"steps": 200},
        arms={"optuna": {"n_trials": 6, "sampler": "tpe", "seed": 1}},
    )
    engine = open_engine(sqlite_url)
    assert launch(load_spec(path), engine, QUIET).status == "completed"
    trials = queries.trials(engine, study="optuna")
    assert len(trials) == 6 and set(trials["status"]) == {"completed"}
    assert overlap(trials) == 2  # ray#46965: Optuna trials must not run one at a time
    assert sorted(trials["key"]) == [f"optuna/t{i:04d}/s0" for i in range(6)]
    import optuna

    stored = optuna.load_study(
        study_name="gradsweep:optuna", storage=engine.url.render_as_string(hide_password=False)
    )
    assert len([t for t in stored.trials if t.state.name == "COMPLETE"]) == 6
    assert launch(load_spec(path), engine, QUIET).status == "completed"  # nothing left to run
    assert (
        len(optuna.load_study(study_name="gradsweep:optuna", storage=stored._storage).trials) == 6
    )


def launch_process(spec: Path, db_url: str, address: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gradsweep.cli",
            "launch",
            str(spec),
            "--db",
            db_url,
            "--ray-address",
            address,
            "--quiet",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_completed(engine: Engine, study: str, count: int, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            trials = queries.trials(engine, study=study)
            if (trials["status"] == "completed").sum() >= count:
                return
        except Exception:
            pass  # the study may not exist yet
        time.sleep(0.3)
    raise AssertionError(f"{study}: fewer than {count} trials completed in {timeout} s")


KILLED_STEPS = 204  # not a multiple of the 8-step epoch: the end is its own evaluation


# SIGKILL on SQLite, Ctrl-C on PostgreSQL: the writer's crash safety per database is tested
# in tests/storage; here it is the launch's ending and the resume that matter. The trials
# run packed (pack: auto), so the kill lands in the middle of a pack.
@pytest.mark.parametrize(
    ("db_url", "how"),
    [("sqlite", "sigkill"), ("postgresql", "ctrl-c")],
    indirect=["db_url"],
)
def test_killed_launch_then_resume_runs_exactly_the_rest(
    tmp_path: Path, db_url: str, ray_address: str, how: str
) -> None:
    name = f"killed-{how}"
    path = write_spec(
        tmp_path,
        name,
        budget={"steps": KILLED_STEPS},
        seeds=[0, 1],
        arms={"grid": {"resolution": 3}, "gradnorm": {"alphas": [0.12, 1.0]}},
    )
    engine = open_engine(db_url)
    process = launch_process(path, db_url, ray_address)
    wait_for_completed(engine, name, 3)
    process.send_signal(signal.SIGKILL if how == "sigkill" else signal.SIGINT)
    process.wait(timeout=120)
    if how == "ctrl-c":
        assert process.returncode == 130, process.stderr.read()
        statuses = set(queries.trials(engine, study=name)["status"])
        assert "running" not in statuses
    before = queries.trials(engine, study=name)
    stopped = before[before["status"].isin(["running", "interrupted"])]
    assert stopped["pack"].notna().any()  # killed in the middle of a pack
    finished_before = before[before["status"] == "completed"].set_index("key")["finished_at"]
    outcome = resume(name, engine, QUIET)
    after = queries.trials(engine, study=name)
    assert outcome.status == "completed"
    assert len(after) == after["key"].nunique() == outcome.planned == 2 * (7 + 2)
    assert set(after["status"]) == {"completed"}
    kept = after.set_index("key")["finished_at"].loc[finished_before.index]
    assert (kept == finished_before).all()  # completed trials were not run again
    curves = queries.curves(engine, name)
    assert not curves.duplicated(["key", "epoch", "task"]).any()
    evaluations = KILLED_STEPS // 8 + 2  # each epoch of 8 steps, the untrained net and the end
    assert (curves.groupby("key").size() == 3 * evaluations).all()  # every evaluation once
    assert after["pack"].notna().all()
    assert (after.set_index("key").loc[kept.index, "attempts"] == 1).all()


def test_status_json_from_the_command_line(tmp_path: Path, sqlite_url: str) -> None:
    path = write_spec(tmp_path, "status-cli", arms={"grid": {"resolution": 2}})
    launch(load_spec(path), open_engine(sqlite_url), QUIET)
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "gradsweep.cli",
            "status",
            "status-cli",
            "--format",
            "json",
            "--db",
            sqlite_url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ},
    )
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    assert {
        k: data[k] for k in ("study", "status", "planned", "completed", "failed", "running")
    } == {
        "study": "status-cli",
        "status": "completed",
        "planned": 3,
        "completed": 3,
        "failed": 0,
        "running": 0,
    }
    from typer.testing import CliRunner

    from gradsweep.cli import app

    resumed = CliRunner().invoke(app, ["resume", "status-cli", "--quiet", "--db", sqlite_url])
    assert resumed.exit_code == 0, resumed.stderr
    assert resumed.stdout == (
        "nothing to resume: study 'status-cli' has all its 3 planned trials completed\n"
    )
    unknown = CliRunner().invoke(app, ["resume", "nope", "--db", sqlite_url])
    assert unknown.exit_code == 2 and "unknown study 'nope'" in unknown.stderr


@pytest.mark.timeout(120)
def test_an_unreachable_ray_address_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    """Refused before the database is opened (launch) or touched (resume), not after Ray's
    minutes of retries; the study stays as it was."""
    from typer.testing import CliRunner

    from gradsweep.cli import app

    path = write_spec(tmp_path, "unreachable", arms={"grid": {"resolution": 2}})
    database = tmp_path / "results.db"
    url = f"sqlite:///{database}"
    cli = CliRunner()
    run = cli.invoke(app, ["launch", str(path), "--ray-address", "127.0.0.1:1", "--db", url])
    assert run.exit_code == 2 and run.stderr.startswith("error: cannot reach Ray at 127.0.0.1:1")
    assert len(run.stderr.strip().splitlines()) == 1 and not database.exists()

    engine = open_engine(url)
    ResultsWriter(engine).get_or_create_study(
        study_record(load_spec(path), task_metrics(load_spec(path)))
    )
    again = cli.invoke(app, ["resume", "unreachable", "--ray-address", "127.0.0.1:1", "--db", url])
    assert again.exit_code == 2 and "cannot reach Ray" in again.stderr
    assert queries.find_study(engine, "unreachable").status == "created"
