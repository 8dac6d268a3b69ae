"""``budget.trial_timeout``: a trial that runs too long fails with that reason and the
study goes on; checked by the worker between evaluations, and by the driver for a trial
stuck inside one step (docs/reliability.md)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gradsweep.cli import EXIT_TRIALS_FAILED, app
from gradsweep.search import recorder
from gradsweep.search.extend import changed_fields
from gradsweep.search.launch import LaunchOptions, launch
from gradsweep.search.trainable import TrialTimeout, _Deadline
from gradsweep.spec import SpecError, load_spec, parse_spec
from gradsweep.storage import queries
from gradsweep.storage.engine import open_engine
from tests.search.specs import TINY_TOY, write_spec

QUIET = LaunchOptions(quiet=True)
STEPS = 80  # about 2 s a trial here, two at once; an odd seed's, pausing, far longer
SLOW = "tests.search.problems:SlowOddSeeds"
BASE = """
study: timed
problem: toy
budget: {steps: 40}
arms: {grid: {resolution: 2}}
"""


def with_timeout(value: str) -> str:
    return BASE.replace("steps: 40", f"steps: 40, trial_timeout: {value}")


def test_trial_timeout_is_scheduling_not_training() -> None:
    """Out of the hash (a completed trial's result does not depend on it), out of the
    stored text when unset, free to change on a relaunch."""
    plain, timed = parse_spec(BASE), parse_spec(with_timeout("600"))
    assert timed.budget.trial_timeout == 600 and plain.budget.trial_timeout is None
    assert timed.spec_hash == plain.spec_hash
    assert "trial_timeout" not in plain.canonical_text()
    assert parse_spec(timed.canonical_text()) == timed  # stored, and read back by resume
    assert changed_fields(plain, timed) == [] and changed_fields(timed, plain) == []
    assert parse_spec(with_timeout("1.5")).budget.trial_timeout == 1.5


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0", "must be >= 1 (got 0)"),
        ("0.5", "must be >= 1 (got 0.5)"),
        ("604801", "must be <= 604800 (got 604801)"),
        ("'60'", "must be a number"),
        ("true", "must be a number"),
    ],
)
def test_trial_timeout_bounds_are_one_line(value: str, message: str) -> None:
    with pytest.raises(SpecError, match=re.escape(f"budget.trial_timeout: {message}")):
        parse_spec(with_timeout(value))


def test_the_deadline_spares_a_trial_at_its_last_evaluation() -> None:
    deadline = _Deadline(parse_spec(with_timeout("1")))
    deadline.check(39)  # within the limit
    deadline.ends = time.monotonic() - 1  # past it
    deadline.check(40)  # the last evaluation: the trial finished, it keeps its result
    with pytest.raises(TrialTimeout, match="exceeded budget.trial_timeout of 1 s"):
        deadline.check(39)
    _Deadline(parse_spec(BASE)).check(39)  # no limit: never


def slow_spec(folder: Path, name: str, pause: float, timeout: float, **overrides: object) -> Path:
    fields: dict[str, object] = {
        "problem": {"name": SLOW, "params": {**TINY_TOY, "pause": pause}},
        "budget": {"steps": STEPS, "trace_every": 4, "trial_timeout": timeout},
        "seeds": [0, 1],
        "arms": {"grid": {"resolution": 2}},
    }
    return write_spec(folder, name, **{**fields, **overrides})


@pytest.mark.slow
@pytest.mark.usefixtures("ray_session")
def test_a_slow_trial_fails_past_its_timeout_and_the_study_goes_on(
    tmp_path: Path, sqlite_url: str
) -> None:
    """Seed 1's losses pause 0.1 s: its 80 steps would take over 8 s, against a 5 s limit.
    The worker stops it at an evaluation past 5 s (packed: the pack's members together),
    keeping every evaluation it reported; seed 0's trials complete."""
    path = slow_spec(tmp_path, "slow", pause=0.1, timeout=5)
    engine = open_engine(sqlite_url)
    outcome = launch(load_spec(path), engine, QUIET)
    assert outcome.status == "failed" and (outcome.completed, outcome.failed) == (3, 3)
    trials = queries.trials(engine, study="slow")
    failed = trials[trials["status"] == "failed"]
    assert set(failed["seed"]) == {1}
    assert set(failed["error"]) == {"exceeded budget.trial_timeout of 5 s"}
    assert failed["traceback"].isna().all() and set(failed["attempts"]) == {1}
    took = (failed["finished_at"] - failed["started_at"]).dt.total_seconds()
    assert (took < 5 + recorder.DRIVER_GRACE_SECONDS).all()  # the worker's check, not the driver's
    curves = queries.curves(engine, "slow")
    kept = curves[curves["key"].isin(failed["key"])].groupby("key").size()
    assert len(kept) == 3 and (kept >= 3 * 2).all()  # its evaluations so far, each once
    assert not curves.duplicated(["key", "epoch", "task"]).any()


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.usefixtures("ray_session")
def test_a_trial_stuck_in_a_step_is_stopped_by_the_driver(tmp_path: Path, sqlite_url: str) -> None:
    """Seed 1's first loss pauses an hour: its worker never reports again. The driver
    records it failed 5 s + the grace after it started, ends its worker (no retry), and the
    launch finishes: exit 3, the reason on stderr."""
    path = slow_spec(
        tmp_path,
        "stuck",
        pause=3600,
        timeout=5,
        arms={"static": {"weights": [[1, 1, 1]]}},
        resources={"pack": 1},
    )
    started = time.monotonic()
    run = CliRunner().invoke(app, ["launch", str(path), "--quiet", "--db", sqlite_url])
    assert run.exit_code == EXIT_TRIALS_FAILED, run.stderr
    assert time.monotonic() - started < 120
    assert "exceeded budget.trial_timeout of 5 s" in run.stderr
    trials = queries.trials(open_engine(sqlite_url), study="stuck").set_index("seed")
    assert trials.loc[0, "status"] == "completed", trials.loc[0].to_dict()
    assert trials.loc[1, "status"] == "failed" and trials.loc[1, "attempts"] == 1
    assert trials.loc[1, "error"] == "exceeded budget.trial_timeout of 5 s"
