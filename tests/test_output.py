"""CSV that a reader can parse: structured cells (weights, metrics) written as JSON."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from gradsweep.cli import app
from gradsweep.output import json_cells
from tests.dashboards.study import build_three_task_study

STRUCTURED = {
    "trials": ["weights", "weights_mean", "weights_final"],
    "curves": ["metrics"],
    "weights": ["weights"],
}


def parsed(frame: pd.DataFrame, column: str) -> list[object]:
    """Every non-empty cell of a column, read back with json.loads."""
    return [json.loads(cell) for cell in frame[column].dropna()]


def check(kind: str, frame: pd.DataFrame) -> None:
    assert len(frame)
    for column in STRUCTURED[kind]:
        values = parsed(frame, column)
        assert values, column
        expected = dict if column == "metrics" else list
        assert all(isinstance(v, expected) for v in values), column
    if kind == "curves":
        assert all(set(m) == {"mse"} for m in parsed(frame, "metrics"))


def test_query_csv_cells_are_json(sqlite_url: str) -> None:
    build_three_task_study(sqlite_url)
    for kind in STRUCTURED:
        run = CliRunner().invoke(
            app, ["query", kind, "--study", "three", "--format", "csv", "--db", sqlite_url]
        )
        assert run.exit_code == 0, run.stderr
        check(kind, pd.read_csv(io.StringIO(run.stdout)))


def test_export_csv_cells_are_json(sqlite_url: str, tmp_path: Path) -> None:
    build_three_task_study(sqlite_url)
    out = tmp_path / "out"
    run = CliRunner().invoke(
        app, ["export", "three", "--out", str(out), "--format", "csv", "--db", sqlite_url]
    )
    assert run.exit_code == 0, run.stderr
    for kind in STRUCTURED:
        check(kind, pd.read_csv(out / f"three-{kind}.csv"))


def test_json_cells_are_plain_json() -> None:
    frame = pd.DataFrame(
        {
            "metrics": [{"accuracy": np.float32(0.5)}, None],
            "weights": [np.array([1.0, np.nan]), (2, 3)],
            "name": ["a", "b"],
            "x": [1.5, 2.0],
        }
    )
    cells = json_cells(frame)
    assert json.loads(cells["metrics"][0]) == {"accuracy": 0.5} and cells["metrics"][1] is None
    assert json.loads(cells["weights"][0]) == [1.0, None] and cells["weights"][1] == "[2, 3]"
    assert cells["name"].tolist() == ["a", "b"] and cells["x"].tolist() == [1.5, 2.0]
    assert frame["weights"][1] == (2, 3)  # the frame itself is left as it was
