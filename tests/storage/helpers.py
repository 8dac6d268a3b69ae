"""Records for storage tests, and a writer loop that runs in its own process."""

from __future__ import annotations

from datetime import datetime, timezone

from gradsweep.storage.engine import open_engine
from gradsweep.storage.records import EpochRow, StudyRecord, TrialOutcome, TrialRecord
from gradsweep.storage.writer import ResultsWriter

TASKS = ("a", "b", "c")


def study_record(name: str = "study", spec_hash: str = "h1") -> StudyRecord:
    return StudyRecord(name, f"spec of {name}", spec_hash, "toy", list(TASKS), "normalized_loss")


def trial_record(key: str, arm: str = "grid", seed: int = 0) -> TrialRecord:
    return TrialRecord(key, arm, "static", {"weights": [1, 1, 1]}, [1.0, 1.0, 1.0], None, seed)


def epoch_rows(epochs: int, offset: float = 0.0) -> list[EpochRow]:
    return [
        EpochRow(
            e,
            e * 10,
            t,
            None if e == 0 else 1.0 + offset,
            2.0 + offset,
            "mse",
            2.0 + offset,
            {"mse": 2.0 + offset},
            1.0,
        )
        for e in range(epochs)
        for t in TASKS
    ]


def outcome(objective: float = 0.5) -> TrialOutcome:
    return TrialOutcome(
        "completed",
        None,
        "node",
        "cpu",
        1.0,
        objective,
        [1.0, 1.0, 1.0],
        [1.0, 1.0, 1.0],
        None,
        datetime.now(timezone.utc),
    )


def write_trials(url: str, worker: int, trials: int, epochs: int) -> None:
    """One concurrent writer: its own engine, its own trial keys, one shared study."""
    engine = open_engine(url)
    writer = ResultsWriter(engine)
    study_id = writer.get_or_create_study(study_record("shared"))
    keys = [f"w{worker}/t{i}" for i in range(trials)]
    ids = writer.upsert_trials(study_id, [trial_record(k) for k in keys])
    for key in keys:
        writer.mark_running(ids[key], "node", "cpu", datetime.now(timezone.utc))
        writer.write_epochs(ids[key], epoch_rows(epochs - 1))
        writer.finish_trial(ids[key], outcome(), rows=epoch_rows(epochs)[-3:])
    engine.dispose()


def write_forever(url: str, trial_id: int) -> None:
    """Rewrites one trial's rows in batches until killed (the crash test)."""
    writer = ResultsWriter(open_engine(url))
    offset = 0.0
    while True:
        offset += 1.0
        writer.write_epochs(trial_id, epoch_rows(200, offset))
