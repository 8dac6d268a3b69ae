from __future__ import annotations

import multiprocessing
import time
from datetime import datetime, timezone

import pytest
from sqlalchemy import func, select

from gradsweep.storage import queries
from gradsweep.storage.engine import open_engine
from gradsweep.storage.errors import StorageError
from gradsweep.storage.models import EpochMetric
from gradsweep.storage.writer import ResultsWriter
from tests.storage.helpers import (
    TASKS,
    epoch_rows,
    outcome,
    study_record,
    trial_record,
    write_forever,
    write_trials,
)


def count_rows(engine, trial_id: int | None = None) -> int:  # type: ignore[no-untyped-def]
    query = select(func.count()).select_from(EpochMetric)
    if trial_id is not None:
        query = query.where(EpochMetric.trial_id == trial_id)
    with engine.connect() as conn:
        return int(conn.scalar(query))


def test_same_spec_same_study_different_spec_refused(db_url: str) -> None:
    writer = ResultsWriter(open_engine(db_url))
    first = writer.get_or_create_study(study_record("s", "h1"))
    assert writer.get_or_create_study(study_record("s", "h1")) == first
    with pytest.raises(StorageError, match="exists with a different spec"):
        writer.get_or_create_study(study_record("s", "h2"))
    second = writer.get_or_create_study(study_record("s", "h2"), new_if_different=True)
    assert second != first
    assert queries.find_study(writer.engine, second).name == "s-2"


def test_trials_upsert_keeps_status_and_never_duplicates(db_url: str) -> None:
    engine = open_engine(db_url)
    writer = ResultsWriter(engine)
    study = writer.get_or_create_study(study_record())
    ids = writer.upsert_trials(study, [trial_record("k1"), trial_record("k2")])
    writer.mark_running(ids["k1"], "n", "cpu", datetime.now(timezone.utc))
    writer.finish_trial(ids["k1"], outcome(0.3), rows=epoch_rows(2))
    again = writer.upsert_trials(study, [trial_record("k1"), trial_record("k3")])
    assert again["k1"] == ids["k1"]
    frame = queries.trials(engine, study="study")
    assert sorted(frame["key"]) == ["k1", "k2", "k3"]
    assert frame.set_index("key").loc["k1", "status"] == "completed"
    assert queries.completed_keys(engine, study) == {"k1"}


def test_rerunning_a_trial_replaces_its_rows(db_url: str) -> None:
    engine = open_engine(db_url)
    writer = ResultsWriter(engine)
    study = writer.get_or_create_study(study_record())
    trial = writer.upsert_trials(study, [trial_record("k")])["k"]
    writer.write_epochs(trial, epoch_rows(5))
    writer.write_epochs(trial, epoch_rows(5, offset=1.0))  # the same rows again: upserted
    assert count_rows(engine, trial) == 15
    writer.write_trace(trial, [(0, [1, 1, 1]), (10, [2, 0.5, 0.5])])
    writer.reset_trial(trial)  # a re-run after a crash
    assert count_rows(engine, trial) == 0
    assert queries.weight_traces(engine, "study").empty
    writer.mark_running(trial, "n", "cpu", datetime.now(timezone.utc))
    writer.finish_trial(trial, outcome(), rows=epoch_rows(3), trace=[(0, [1, 1, 1])])
    curves = queries.curves(engine, "study")
    assert len(curves) == 9 and set(curves["task"]) == set(TASKS)
    assert curves["test_loss"].eq(2.0).all()
    row = queries.trials(engine, study="study").iloc[0]
    assert row["status"] == "completed" and row["attempts"] == 1


def test_fail_and_interrupt(db_url: str) -> None:
    engine = open_engine(db_url)
    writer = ResultsWriter(engine)
    study = writer.get_or_create_study(study_record())
    ids = writer.upsert_trials(study, [trial_record("a"), trial_record("b")])
    now = datetime.now(timezone.utc)
    writer.mark_running(ids["a"], "n", "cpu", now)
    writer.mark_running(ids["b"], "n", "cpu", now)
    writer.fail_trial(ids["a"], "RuntimeError: boom", rows=epoch_rows(1))
    assert writer.mark_interrupted(study) == 1
    frame = queries.trials(engine, study="study").set_index("key")
    assert frame.loc["a", "status"] == "failed" and frame.loc["a", "error"] == "RuntimeError: boom"
    assert frame.loc["b", "status"] == "interrupted"


def test_eight_concurrent_writers(db_url: str) -> None:
    """8 processes × 100 trials × 50 epochs × 3 tasks at once: every row exactly once."""
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=write_trials, args=(db_url, w, 100, 50)) for w in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
    assert [w.exitcode for w in workers] == [0] * 8
    engine = open_engine(db_url)
    trials = queries.trials(engine, study="shared")
    assert len(trials) == 800 and set(trials["status"]) == {"completed"}
    assert count_rows(engine) == 800 * 50 * 3
    curves = queries.curves(engine, "shared")
    assert not curves.duplicated(["key", "epoch", "task"]).any()


def test_a_writer_killed_mid_batch_leaves_whole_batches(db_url: str) -> None:
    engine = open_engine(db_url)
    writer = ResultsWriter(engine)
    study = writer.get_or_create_study(study_record())
    trial = writer.upsert_trials(study, [trial_record("k")])["k"]
    process = multiprocessing.get_context("spawn").Process(
        target=write_forever, args=(db_url, trial)
    )
    process.start()
    deadline = time.monotonic() + 60
    while count_rows(engine, trial) == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    process.kill()
    process.join()
    curves = queries.curves(engine, "study")
    assert len(curves) == 600  # every batch all or nothing: never a partial write
    offsets = curves["test_loss"].unique()
    assert len(offsets) == 1  # the rows of one batch, not a mix of two
    writer.reset_trial(trial)
    writer.finish_trial(trial, outcome(), rows=epoch_rows(4))
    assert count_rows(engine, trial) == 12
