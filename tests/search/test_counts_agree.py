"""One count everywhere: ``spec check``, launch's live progress and outcome, ``status``,
the results layer's counts and the dashboard's study list say the same planned, done and
running, through an extension that runs retrain trials again; and ``spec check`` announces
the pack size launch uses. On the shared Ray session and a real SQLite file."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from gradsweep.cli import app
from gradsweep.results.study import load_results
from gradsweep.results.summary import study_counts, study_list
from gradsweep.search import launch as launch_module
from gradsweep.search.progress import LiveProgress
from gradsweep.storage import queries
from gradsweep.storage.engine import open_engine
from tests.search.specs import write_spec

ARMS = {
    "static": {"weights": [[1, 1, 1]]},
    "grid": {"resolution": 2},
    "optuna": {"n_trials": 2, "sampler": "random", "seed": 0, "confirm": 1},
    "gradnorm": {"alphas": [0.12]},
    "retrain": {"alpha": 0.12},
}


class WatchedProgress(LiveProgress):
    """The live display, kept for the test, checking done ≤ planned at every event."""

    seen: list[WatchedProgress] = []
    most_over = 0  # the most done ever exceeded planned by

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        WatchedProgress.seen.append(self)

    def _refresh(self) -> None:
        counts = self.counts
        over = counts.completed - counts.planned if counts.planned is not None else 0
        WatchedProgress.most_over = max(WatchedProgress.most_over, over)
        super()._refresh()


def spec_check(cli: CliRunner, path: Path, db: str) -> tuple[int, str, str]:
    """(planned, the stored study's line or '', the packing line) of ``spec check``."""
    check = cli.invoke(app, ["spec", "check", str(path), "--db", db])
    assert check.exit_code == 0, check.stderr
    lines = check.stdout.strip().splitlines()
    planned = re.search(r", (\d+) trials$", lines[0])
    assert planned is not None, lines[0]
    stored = next((line for line in lines if " trials completed; " in line), "")
    return int(planned.group(1)), stored, lines[-1]


def largest_pack(engine: Any, study: str, keys: set[str]) -> int:
    """The most members any pack of these trials had (1: none was packed)."""
    trials = queries.trials(engine, study=study)
    packs = trials[trials["key"].isin(keys)]["pack"].dropna()
    return int(packs.value_counts().max()) if len(packs) else 1


def launch_and_check(
    cli: CliRunner, path: Path, db: str, planned: int, packing: str
) -> LiveProgress:
    """Launch; the live progress ends at planned/planned, announcing ``packing``; the
    outcome, status (JSON and table), the results layer and the study list agree."""
    run = cli.invoke(app, ["launch", str(path), "--quiet", "--db", db])
    assert run.exit_code == 0, run.stderr
    assert f"count (id 1): completed, {planned}/{planned} completed, 0 failed" in run.stdout
    progress = WatchedProgress.seen[-1]
    counts = progress.counts
    assert (counts.completed, counts.planned, counts.running, counts.failed) == (
        planned,
        planned,
        0,
        0,
    )
    assert progress.note == packing
    assert WatchedProgress.most_over <= 0  # done never exceeded planned, at any event

    status = json.loads(cli.invoke(app, ["status", "count", "--format", "json", "--db", db]).stdout)
    assert (status["planned"], status["completed"], status["running"]) == (planned, planned, 0)
    table = cli.invoke(app, ["status", "--db", db]).stdout
    assert f"{planned}/{planned}" in table

    engine = open_engine(db)
    stored = study_counts(load_results(engine, "count", lean=True))
    assert (stored.planned, stored.completed, stored.running) == (planned, planned, 0)
    (listed,) = study_list(engine)  # what the dashboard's study list shows
    assert (listed.planned, listed.counts["completed"], listed.counts["running"]) == (
        planned,
        planned,
        0,
    )
    return progress


@pytest.mark.usefixtures("ray_session")
def test_every_reader_counts_a_study_and_its_extension_alike(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(launch_module, "LiveProgress", WatchedProgress)
    WatchedProgress.seen, WatchedProgress.most_over = [], 0
    cli = CliRunner()

    first = write_spec(tmp_path, "count", arms=ARMS)
    planned, stored, packing = spec_check(cli, first, sqlite_url)
    # 1 static + 3 grid points + 1 GradNorm up front, 2 Optuna trials, 1 retrain (one seed)
    assert planned == 8 and stored == ""  # no database yet: a new study
    launch_and_check(cli, first, sqlite_url, planned, packing)
    engine = open_engine(sqlite_url)
    before = queries.trials(engine, study="count").set_index("key")["finished_at"]

    more = write_spec(tmp_path, "count", seeds=[0, 1], arms=ARMS)
    planned, stored, packing = spec_check(cli, more, sqlite_url)
    # seed 1's 5 up front, Optuna's best on seed 1 (confirm), retrain on seed 1
    assert planned == 8 + 5 + 1 + 1
    assert stored.endswith(f": 8 of {planned} trials completed; launch there runs the other 7")
    size = re.search(r"up to (\d+) trials a pack", packing)
    assert size is not None, packing  # the 5 new up-front trials pack: 1 packable family
    launch_and_check(cli, more, sqlite_url, planned, packing)

    after = queries.trials(engine, study="count").set_index("key")["finished_at"]
    assert len(after) == planned
    # GradNorm's mean weights moved with seed 1: retrain on seed 0 ran again, counted once
    assert after["retrain/a=0.12/s0"] > before["retrain/a=0.12/s0"]
    new = {key for key in after.index if key.endswith("/s1")}
    assert largest_pack(engine, "count", new) <= int(size.group(1))  # the size spec check said

    # relaunching the same spec runs nothing, and every reader still says planned/planned
    again, stored, packing = spec_check(cli, more, sqlite_url)
    assert again == planned and stored.endswith("launch there runs the other 0")
    assert packing == "packing: nothing to pack"
    launch_and_check(cli, more, sqlite_url, planned, packing)
