"""gradsweep.open gives what the command line shows, under the same names: one test reads
each frame both ways on a real SQLite study and compares them."""

from __future__ import annotations

import json

import pandas as pd
from typer.testing import CliRunner

import gradsweep
from gradsweep.cli import app
from tests.results.verdict_study import build_study, static_curve


def cli_json(*argv: str) -> object:
    run = CliRunner().invoke(app, [*argv, "--format", "json"])
    assert run.exit_code == 0, run.output
    return json.loads(run.stdout)


def same_frame(ours: pd.DataFrame, printed: object) -> None:
    """The CLI's JSON records and the frame: the same columns in the same order, and the
    same values once both go through JSON."""
    if printed == []:  # no rows: JSON records carry no column names
        assert ours.empty
        return
    theirs = pd.DataFrame(printed)
    assert list(ours.columns) == list(theirs.columns)
    mine = json.loads(ours.to_json(orient="records", date_format="iso"))
    assert len(mine) == len(theirs)
    assert [sorted(r) for r in mine] == [sorted(r) for r in theirs.to_dict("records")]


def test_the_python_names_are_the_command_lines(sqlite_url: str) -> None:
    build_study(sqlite_url, "nb", {s: static_curve(0.45 + s / 1000) for s in (0, 1, 2)})
    results = gradsweep.open(sqlite_url)
    study = results.study("nb")
    db = ("--db", sqlite_url)
    same_frame(results.studies(), cli_json("query", "studies", *db))
    for kind, frame in (
        ("trials", study.trials()),
        ("curves", study.curves()),
        ("weights", study.weights()),
    ):
        same_frame(frame, cli_json("query", kind, "--study", "nb", *db))
    compared = cli_json("compare", "nb", *db)
    assert json.loads(json.dumps(study.comparison_json())) == compared
    assert isinstance(compared, dict)
    assert [c["line"] for c in compared["verdict"]["claims"]] == study.verdicts().lines()
    assert study.results().name == "nb"
    grid = study.trials(arm="grid")
    assert set(grid["arm"]) <= {"grid", "static"} and len(grid) == 9  # the centre is the grid's too
