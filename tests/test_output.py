"""CSV that a reader can parse: structured cells (weights, metrics) written as JSON."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from gradsweep.cli import app
from gradsweep.output import frame_to_text, json_cells, json_text, spreadsheet_safe, write_csv
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


def test_spreadsheet_formulas_are_neutralised_and_numbers_are_not() -> None:
    frame = pd.DataFrame(
        {
            # an object column, as the CLI's frames hold text (pandas 3 would infer its
            # string dtype, where a missing cell is NaN, not None: checked below)
            "text": pd.Series(["=HYPERLINK(\"http://x\",\"y\")", "+1@SUM(A1)", "-2+3", "@cmd",
                               "\tx", "\ry", "'quoted", "-1.5", "+3", "1e5", "plain", "", None,
                               "a=b"], dtype=object),
            "number": [-2.0, -1.0, 0.0, 1.0, -5.5, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, -0.0],
        }
    )  # fmt: skip
    cells = spreadsheet_safe(frame)
    assert cells["text"].tolist() == [
        "'=HYPERLINK(\"http://x\",\"y\")", "'+1@SUM(A1)", "'-2+3", "'@cmd", "'\tx", "'\ry",
        "''quoted", "-1.5", "+3", "1e5", "plain", "", None, "a=b",
    ]  # fmt: skip
    assert cells["number"].tolist() == frame["number"].tolist()  # numbers are numbers
    assert frame["text"][1] == "+1@SUM(A1)"  # the frame itself is left as it was
    back = [c[1:] if isinstance(c, str) and c.startswith("'") else c for c in cells["text"]]
    assert back == frame["text"].tolist()  # one leading ' dropped: the original


def test_a_carriage_return_in_a_cell_keeps_its_row_whole(tmp_path: Path) -> None:
    frame = pd.DataFrame({"key": ["a", "b"], "error": ["line\rbreak", "\rstart"], "x": [1, -2]})
    path = tmp_path / "cr.csv"
    write_csv(frame, path)
    with path.open(newline="") as file:
        rows = list(csv.DictReader(file))
    assert [r["error"] for r in rows] == ["line\rbreak", "'\rstart"]
    assert [r["x"] for r in rows] == ["1", "-2"]
    plain = frame_to_text(frame.drop(columns="error"), "csv")
    assert isinstance(plain, str) and "\r" not in plain  # no CR: line ends stay \n


def test_json_text_is_strict() -> None:
    value = {"a": float("inf"), "b": [np.float32("nan"), -np.inf, 1.5], "c": np.int64(3)}
    text = json_text(value)

    def refuse(constant: str) -> None:
        raise AssertionError(constant)

    assert json.loads(text, parse_constant=refuse) == {"a": None, "b": [None, None, 1.5], "c": 3}


def test_a_text_column_of_pandas_default_dtype_is_neutralised_and_keeps_its_gaps() -> None:
    """A frame built from plain lists (pandas 3: its string dtype, a missing cell NaN)."""
    frame = pd.DataFrame({"text": ["=1+1", None, "ok"]})
    cells = spreadsheet_safe(frame)["text"].tolist()
    assert cells[0] == "'=1+1" and pd.isna(cells[1]) and cells[2] == "ok"
