"""`resume` of a study with nothing left to run answers from the database, without Ray.

The studies are written by hand (the writer, no Ray): a tiny grid whose trials are all
stored completed, or one with work left (a failed trial, Optuna suggestions to make).
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from gradsweep.arms import StudyStatus, TrialStatus
from gradsweep.plan.trials import plan_up_front
from gradsweep.search.launch import nothing_left, study_record
from gradsweep.search.reports import trial_record
from gradsweep.spec import load_spec, task_metrics
from gradsweep.storage import queries
from gradsweep.storage.engine import open_engine
from gradsweep.storage.writer import ResultsWriter
from tests.search.specs import write_spec
from tests.storage.helpers import outcome

GRID = {"grid": {"resolution": 2}}  # 3 trials at T = 3
# prints whether the command imported Ray, after it ran
RUN_AND_TELL = (
    "import sys; from gradsweep.cli import run; code = run(sys.argv[1:]); "
    "print('ray imported:', 'ray' in sys.modules); sys.exit(code)"
)


def stored_study(url: str, folder: Path, name: str, arms: dict, failed: int = 0) -> int:  # type: ignore[type-arg]
    """The spec's study with its up-front trials stored, all completed but the first
    ``failed``, left ``interrupted`` (as a Ctrl-C after its last trial leaves it)."""
    spec = load_spec(write_spec(folder, name, arms=arms))
    writer = ResultsWriter(open_engine(url))
    study_id = writer.get_or_create_study(study_record(spec, task_metrics(spec)))
    trials = plan_up_front(spec, 3)
    ids = writer.upsert_trials(study_id, [trial_record(t) for t in trials])
    for number, trial in enumerate(trials):
        end = outcome()
        if number < failed:
            end = replace(end, status=TrialStatus.FAILED.value, error="boom")
        writer.finish_trial(ids[trial.key], end)
    writer.set_study_status(study_id, StudyStatus.INTERRUPTED)
    return study_id


def test_resume_of_a_completed_study_says_so_without_starting_ray(
    tmp_path: Path, sqlite_url: str
) -> None:
    stored_study(sqlite_url, tmp_path, "done", GRID)
    argv = ["resume", "done", "--db", sqlite_url]
    ran = subprocess.run(
        [sys.executable, "-c", RUN_AND_TELL, *argv], capture_output=True, text=True, timeout=120
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.splitlines() == [
        "nothing to resume: study 'done' has all its 3 planned trials completed",
        "ray imported: False",
    ]
    assert ran.stderr == ""
    info = queries.find_study(open_engine(sqlite_url), "done")
    assert info.status == StudyStatus.COMPLETED  # as a resume that ran nothing leaves it


@pytest.mark.parametrize(
    ("arms", "failed"),
    [
        (GRID, 1),  # a failed trial: resume runs it again
        ({**GRID, "optuna": {"n_trials": 2, "sampler": "tpe", "seed": 0}}, 0),  # to suggest
    ],
    ids=["a failed trial", "optuna trials to make"],
)
def test_a_study_with_work_left_is_not_settled(
    tmp_path: Path,
    sqlite_url: str,
    arms: dict,
    failed: int,  # type: ignore[type-arg]
) -> None:
    study_id = stored_study(sqlite_url, tmp_path, "left", arms, failed)
    engine = open_engine(sqlite_url)
    spec = load_spec(tmp_path / "left.yaml")
    assert not nothing_left(spec, 3, engine, study_id)
