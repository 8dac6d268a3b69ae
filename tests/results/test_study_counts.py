"""A running study's counts, read back: planned is the stored plan's count, not the rows
written so far (the Optuna arm's and retrain's trials get rows only when they run)."""

from __future__ import annotations

from gradsweep.results.study import load_results
from gradsweep.results.summary import study_counts, study_list
from gradsweep.status import study_status
from gradsweep.storage.engine import open_engine
from gradsweep.storage.records import StudyRecord, TrialRecord
from gradsweep.storage.writer import ResultsWriter
from tests.dashboards.study import T0, TASKS, add_static


def running_study(url: str) -> None:
    """14 planned; 3 rows so far: one completed, one running, one pending."""
    writer = ResultsWriter(open_engine(url))
    study = writer.get_or_create_study(
        StudyRecord("live", "{}", "live", "toy", TASKS, "normalized_loss", planned=14)
    )
    add_static(writer, study, "static/w=1,1,1/s0", [1.0, 1.0, 1.0], 0)
    ids = writer.upsert_trials(
        study,
        [
            TrialRecord("grid/w=1.5,1.5,0/s0", "grid", "static", {}, [1.5, 1.5, 0.0], None, 0),
            TrialRecord("grid/w=1.5,0,1.5/s0", "grid", "static", {}, [1.5, 0.0, 1.5], None, 0),
        ],
    )
    writer.mark_running(ids["grid/w=1.5,1.5,0/s0"], "n", "cpu", T0)
    writer.set_study_status(study, "running")


def test_status_and_the_study_list_count_a_running_study_alike(sqlite_url: str) -> None:
    running_study(sqlite_url)
    engine = open_engine(sqlite_url)
    counts = study_counts(load_results(engine, "live", lean=True))
    assert (counts.planned, counts.completed, counts.running, counts.remaining) == (14, 1, 1, 13)
    (listed,) = study_list(engine)
    assert (listed.planned, listed.counts["completed"], listed.counts["running"]) == (14, 1, 1)
    status = study_status(engine, "live")
    assert (status["planned"], status["completed"], status["running"]) == (14, 1, 1)


def test_the_study_page_counts_as_the_study_list(sqlite_url: str) -> None:
    from gradsweep.dashboards.page import study_page

    running_study(sqlite_url)
    engine = open_engine(sqlite_url)
    page = study_page(engine, "live")
    (listed,) = study_list(engine)
    assert (page.completed, page.trials) == (listed.counts["completed"], listed.planned)
