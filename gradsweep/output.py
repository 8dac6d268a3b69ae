"""DataFrames to the formats the CLI prints: a table, CSV or JSON."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from gradsweep.console import print_table

FORMATS = ("table", "csv", "json")
# columns too long for a table cell: in the CSV and the JSON only
TABLE_OMITS = ("traceback",)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_cell(v) for v in value) + "]"
    if value is None or (not isinstance(value, dict) and pd.isna(value)):
        return ""
    return str(value)


def _plain(value: Any) -> Any:
    """A structure as plain JSON values: NumPy's types as Python's, NaN as null."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _json_cell(value: Any) -> Any:
    if isinstance(value, dict | list | tuple | np.ndarray):
        return json.dumps(_plain(value))
    return value


def json_cells(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with its structured cells (lists, dicts: weights, metrics) as JSON text,
    so that a CSV reader can parse them back."""
    out = frame.copy()
    for column in out.select_dtypes(include="object").columns:
        out[column] = out[column].map(_json_cell)
    return out


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """The frame as a CSV file, structured cells as JSON."""
    json_cells(frame).to_csv(path, index=False)


def frame_to_text(frame: pd.DataFrame, fmt: str) -> str | Table:
    """CSV and JSON as text (JSON: a list of records); ``table`` as a rich Table."""
    if fmt == "csv":
        return json_cells(frame).to_csv(index=False)
    if fmt == "json":
        records = json.loads(frame.to_json(orient="records", date_format="iso"))
        return json.dumps(records, indent=2)
    frame = frame.drop(columns=[c for c in TABLE_OMITS if c in frame.columns])
    table = Table(show_lines=False)
    for column in frame.columns:
        table.add_column(str(column), overflow="fold")
    for row in frame.itertuples(index=False):
        table.add_row(*(_cell(v) for v in row))
    return table


def print_frame(frame: pd.DataFrame, fmt: str, console: Console | None = None) -> None:
    output = frame_to_text(frame, fmt)
    if isinstance(output, str):
        print(output, end="" if output.endswith("\n") else "\n")
    else:
        print_table(output, console)
