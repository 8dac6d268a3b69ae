"""The one count: planned from the plan (and the confirm runs a study already holds), done,
running and failed from the trials' statuses, one a key."""

from __future__ import annotations

from pathlib import Path

from gradsweep.arms import TrialStatus
from gradsweep.plan import count_trials, planned_count
from gradsweep.plan.trials import is_confirm, is_suggestion, key_seed
from gradsweep.spec import load_spec
from tests.search.specs import write_spec

ARMS = {
    "static": {"weights": [[1, 1, 1]]},
    "optuna": {"n_trials": 4, "sampler": "random", "seed": 0, "confirm": 1},
    "gradnorm": {"alphas": [0.12]},
    "retrain": {"alpha": 0.12},
}


def test_planned_counts_every_arm_and_phase(tmp_path: Path) -> None:
    spec = load_spec(write_spec(tmp_path, "count", seeds=[3, 1, 2], arms=ARMS))
    # up front 2 a seed; Optuna 4 on seed 3 + its best on the 2 other seeds; retrain 1 a seed
    assert planned_count(spec, 3) == 3 * 2 + 4 + 1 * 2 + 3


def test_keys_say_suggestion_or_confirm_run(tmp_path: Path) -> None:
    spec = load_spec(write_spec(tmp_path, "keys", seeds=[3, 1], arms=ARMS))
    assert key_seed("optuna/t0007/s13") == 13
    assert is_suggestion(spec, "optuna/t0007/s3") and not is_confirm(spec, "optuna/t0007/s3")
    assert is_confirm(spec, "optuna/t0007/s1") and not is_suggestion(spec, "optuna/t0007/s1")
    assert not is_confirm(spec, "static/w=1,1,1/s1")
    assert not is_suggestion(spec, "retrain/a=0.12/s3")


def test_a_superseded_confirm_run_stays_planned(tmp_path: Path) -> None:
    """An extension's Optuna trials found a better suggestion (t0005) than the one the first
    launch confirmed (t0001): both confirm runs are the study's, so planned holds both."""
    spec = load_spec(write_spec(tmp_path, "superseded", seeds=[0, 1], arms=ARMS))
    base = planned_count(spec, 3)
    assert planned_count(spec, 3, ["optuna/t0001/s1"]) == base  # its one confirm slot
    held = ["optuna/t0001/s0", "optuna/t0001/s1", "optuna/t0005/s0", "optuna/t0005/s1"]
    assert planned_count(spec, 3, held) == base + 1
    assert planned_count(spec, 3, [*held, "optuna/t0001/s1"]) == base + 1  # keys, once


def test_counts_are_statuses_one_a_key_and_done_never_exceeds_planned() -> None:
    statuses = ["completed", "completed", "running", "failed", "pending"]
    counts = count_trials(6, statuses)
    assert (counts.planned, counts.completed, counts.running, counts.failed) == (6, 2, 1, 1)
    assert counts.remaining == 4
    assert set(counts.by_status) == {str(s) for s in TrialStatus}
    assert count_trials(1, ["completed", "completed"]).planned == 2  # a stale stored count
    assert count_trials(None, ["completed"]).remaining is None
