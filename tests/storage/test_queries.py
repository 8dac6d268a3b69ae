from __future__ import annotations

from datetime import datetime, timezone

import pytest

from gradsweep.storage import queries
from gradsweep.storage.engine import open_engine
from gradsweep.storage.errors import StorageError
from gradsweep.storage.records import TrialOutcome
from gradsweep.storage.writer import ResultsWriter
from tests.storage.helpers import epoch_rows, study_record, trial_record


def build(db_url: str):  # type: ignore[no-untyped-def]
    engine = open_engine(db_url)
    writer = ResultsWriter(engine)
    study = writer.get_or_create_study(study_record("q"))
    specs = [trial_record(f"grid/{i}", "grid") for i in range(3)]
    specs += [trial_record("random/0", "random"), trial_record("gradnorm/0", "gradnorm")]
    ids = writer.upsert_trials(study, specs)
    for i, key in enumerate(ids):
        writer.mark_running(ids[key], "n", "cpu", datetime.now(timezone.utc))
        result = TrialOutcome(
            "completed", None, "n", "cpu", 1.0, 0.9 - 0.1 * i, [1, 1, 1], [1, 1, 1]
        )
        writer.finish_trial(ids[key], result, rows=epoch_rows(2), trace=[(0, [1, 1, 1])])
    return engine


def test_filters_and_best_static(db_url: str) -> None:
    engine = build(db_url)
    assert len(queries.trials(engine, study="q")) == 5
    assert list(queries.trials(engine, study="q", arm="grid")["key"]) == [
        "grid/0",
        "grid/1",
        "grid/2",
    ]
    assert len(queries.trials(engine, study="q", arm=["grid", "random"], status="completed")) == 4
    best = queries.best_static_trials(engine, "q", n=2)
    assert list(best["key"]) == ["random/0", "grid/2"]  # gradnorm is not a static arm
    studies = queries.studies(engine)
    assert studies.loc[0, "completed"] == 5
    assert "best_normalized_loss" not in studies.columns  # the optimum is the results layer's


def test_curves_and_traces_by_key(db_url: str) -> None:
    engine = build(db_url)
    assert len(queries.curves(engine, "q")) == 5 * 2 * 3
    assert len(queries.curves(engine, "q", trial_keys=["grid/1"])) == 6
    assert list(queries.weight_traces(engine, "q", trial_keys=["random/0"])["weights"]) == [
        [1, 1, 1]
    ]


def test_find_study_by_name_or_id(db_url: str) -> None:
    engine = build(db_url)
    info = queries.find_study(engine, "q")
    assert queries.find_study(engine, info.id).name == "q"
    assert queries.find_study(engine, str(info.id)).task_names == ["a", "b", "c"]
    with pytest.raises(StorageError, match="unknown study 'nope'"):
        queries.find_study(engine, "nope")
