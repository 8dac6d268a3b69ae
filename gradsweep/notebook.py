"""gradsweep from Python (a notebook, a script): the results the command line shows, with
the same names.

    import gradsweep
    results = gradsweep.open("sqlite:///demo.db")
    results.studies()                      # = gradsweep query studies
    study = results.study("toy-demo")
    study.trials()                         # = gradsweep query trials --study toy-demo
    study.curves(), study.weights()        # = query curves / weights (and export's files)
    study.comparison()                     # = compare (a typed Comparison)
    study.comparison_json()                # = compare --format json, as a dict
    study.verdicts()                       # = the verdict lines compare opens with

Every frame comes from the function the command reads (``query.py``, ``results/``), so a
column means one thing wherever it appears. Opening is read-only: nothing here writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from gradsweep.query import query_frame
from gradsweep.results.answer import compare_study
from gradsweep.results.comparison import Comparison
from gradsweep.results.study import StudyResults, load_results
from gradsweep.results.verdicts import Verdicts
from gradsweep.storage.engine import open_engine


@dataclass(frozen=True)
class Study:
    """One study of a results database."""

    engine: Engine
    name: str

    def trials(self, arm: str | None = None, status: str | None = None) -> pd.DataFrame:
        """``gradsweep query trials``: one row per trial, the documented columns."""
        return query_frame(self.engine, "trials", self.name, arm, status)

    def curves(self, arm: str | None = None, status: str | None = None) -> pd.DataFrame:
        """``gradsweep query curves``: per evaluation and task, losses and metrics."""
        return query_frame(self.engine, "curves", self.name, arm, status)

    def weights(self, arm: str | None = None, status: str | None = None) -> pd.DataFrame:
        """``gradsweep query weights``: each adaptive trial's recorded weights per step."""
        return query_frame(self.engine, "weights", self.name, arm, status)

    def comparison(self) -> Comparison:
        """What ``gradsweep compare`` computes (without storing it, as a read should)."""
        return compare_study(self.engine, self.name)

    def comparison_json(self) -> dict[str, Any]:
        """``gradsweep compare --format json``: the same keys and values."""
        return self.comparison().to_dict()

    def verdicts(self) -> Verdicts:
        """Each claim's verdict (``.lines()``: what ``compare --format verdicts`` prints)."""
        verdicts = self.comparison().verdicts
        assert verdicts is not None  # compare_study always judges
        return verdicts

    def results(self) -> StudyResults:
        """The typed study as every reader loads it (``results/study.py``)."""
        return load_results(self.engine, self.name)


@dataclass(frozen=True)
class Results:
    """A results database opened read-only."""

    engine: Engine

    def studies(self) -> pd.DataFrame:
        """``gradsweep query studies``: every study, its counts and static optimum."""
        return query_frame(self.engine, "studies")

    def study(self, name: str) -> Study:
        """One study by name (or id, as the command line takes it)."""
        found = load_results(self.engine, name, lean=True)
        return Study(self.engine, found.name)


def open_results(url: str) -> Results:
    """A results database (a URL or a SQLite file's path, as ``--db`` takes), opened
    read-only."""
    return Results(open_engine(url, read_only=True))
