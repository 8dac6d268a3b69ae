"""The live display counts as ``status`` does: a trial run again is done once."""

from __future__ import annotations

from gradsweep.arms import TrialStatus
from gradsweep.plan.trials import TrialSpec, static_trial
from gradsweep.search.progress import LiveProgress


def trial(key: str) -> TrialSpec:
    arm, label, seed = key.split("/")
    return static_trial(arm, label, (1.0, 1.0), int(seed.removeprefix("s")))


def test_a_retrain_trial_run_again_counts_once() -> None:
    """An extension: 3 of 4 trials were done, one of them a retrain trial whose GradNorm
    weights moved; it runs again, and the study ends 4/4, not 5/4."""
    stored = {
        "static/w=1,1/s0": "completed",
        "gradnorm/a=0.12/s0": "completed",
        "retrain/a=0.12/s0": "completed",
        "static/w=1,1/s1": "pending",
    }
    progress = LiveProgress("grow", 4, stored, quiet=True)
    assert (progress.counts.completed, progress.counts.planned) == (3, 4)

    progress.trial_started(trial("static/w=1,1/s1"))
    assert progress.counts.running == 1
    progress.trial_finished(trial("static/w=1,1/s1"), TrialStatus.COMPLETED)
    progress.trials_pending(["retrain/a=0.12/s0"], again=True)  # replanned: runs again
    assert progress.counts.completed == 3
    progress.trial_started(trial("retrain/a=0.12/s0"))
    progress.trial_finished(trial("retrain/a=0.12/s0"), TrialStatus.COMPLETED)

    counts = progress.counts
    assert (counts.completed, counts.planned, counts.running, counts.failed) == (4, 4, 0, 0)
    assert "grow: 4/4 done, 0 running, 0 failed" in str(progress.render().renderables[0])
    assert progress.finished_by_arm == {"static": 1, "retrain": 1}


def test_registered_trials_keep_their_status_and_failures_count_as_status_does() -> None:
    progress = LiveProgress("s", 3, {"static/w=1,1/s0": "failed"}, quiet=True)
    progress.trials_pending(["static/w=1,1/s0", "optuna/t0000/s1"])  # known: kept
    assert progress.statuses == {"static/w=1,1/s0": "failed", "optuna/t0000/s1": "pending"}
    assert progress.counts.failed == 1
    progress.trial_started(trial("static/w=1,1/s0"))  # run again: no longer failed
    assert (progress.counts.failed, progress.counts.running) == (0, 1)
    progress.replanned(4)
    assert progress.counts.planned == 4
