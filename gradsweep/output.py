"""DataFrames to the formats the CLI prints: a table, CSV or JSON."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from gradsweep.console import LONG_TEXT, clip, is_clipped, print_table

FORMATS = ("table", "csv", "json")
# columns too long for a table cell: in the CSV and the JSON only
TABLE_OMITS = ("traceback",)
# What a spreadsheet reads as the start of a formula (OWASP's list for CSV injection): a
# text cell starting with one of these is written with a leading ' (docs/schema.md).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
QUOTE = "'"
# text that is a plain number: a spreadsheet reads it as that number, no formula in it
PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


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


def json_text(value: Any) -> str:
    """``value`` as strict JSON (indented): NaN and ±infinity as null, since ``Infinity``
    and ``NaN`` are not JSON and a strict reader (``jq``, JavaScript) refuses the whole
    document; what JSON has no type for (a date) as its text."""
    return json.dumps(_plain(value), indent=2, allow_nan=False, default=str)


def _json_cell(value: Any) -> Any:
    if isinstance(value, dict | list | tuple | np.ndarray):
        return json.dumps(_plain(value))
    return value


def json_cells(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with its structured cells (lists, dicts: weights, metrics) as JSON text,
    so that a CSV reader can parse them back."""
    out = frame.copy()
    # object columns only: a text column (pandas 3's string dtype) holds no list or dict
    for column in [c for c in out.columns if out[c].dtype == object]:
        out[column] = _mapped(out[column], _json_cell)
    return out


def _mapped(column: pd.Series, cell: Any) -> pd.Series:
    """``cell`` applied to every value, kept an object column: ``Series.map`` lets pandas 3
    infer its string dtype, which turns a None (JSON null, an empty CSV cell) into NaN."""
    return pd.Series([cell(value) for value in column], index=column.index, dtype=object)


def spreadsheet_cell(value: Any) -> Any:
    """A text cell a spreadsheet would run as a formula (``=HYPERLINK(…)``, ``+1@SUM(A1)``,
    ``-2+3``, ``@cmd``, a leading tab or CR) with a ``'`` in front, which makes it text;
    a cell that already starts with ``'`` gets one more, so dropping one leading ``'``
    from every cell that has one gives back the original. Numbers, and text that is a
    plain number (``-1.5``), are left as they are."""
    if not isinstance(value, str) or not value:
        return value
    if value.startswith(QUOTE):
        return QUOTE + value
    if value.startswith(FORMULA_STARTS) and not PLAIN_NUMBER.fullmatch(value):
        return QUOTE + value
    return value


def spreadsheet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with every text cell through :func:`spreadsheet_cell` (a copy)."""
    out = frame.copy()
    for column in out.select_dtypes(include=["object", "string"]).columns:
        out[column] = _mapped(out[column], spreadsheet_cell)
    return out


def csv_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame as the CSV holds it: structured cells as JSON, formulas neutralised."""
    return spreadsheet_safe(json_cells(frame))


def line_end(frame: pd.DataFrame) -> str:
    """``\n``, or ``\r\n`` where a text cell holds a carriage return: Python's CSV writer
    quotes a cell only for the characters of its line end, and a bare ``\r`` left
    unquoted splits the row for every reader."""
    for column in frame.select_dtypes(include=["object", "string"]).columns:
        if frame[column].map(lambda v: isinstance(v, str) and "\r" in v).any():
            return "\r\n"
    return "\n"


def csv_text(frame: pd.DataFrame) -> str:
    """The frame as CSV text (:func:`csv_frame`)."""
    cells = csv_frame(frame)
    return str(cells.to_csv(index=False, lineterminator=line_end(cells)))


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """The frame as a CSV file (:func:`csv_frame`)."""
    cells = csv_frame(frame)
    cells.to_csv(path, index=False, lineterminator=line_end(cells))


def csv_header(frame: pd.DataFrame) -> str:
    """The first line :func:`write_csv` writes for this frame (without its newline)."""
    return str(frame.iloc[:0].to_csv(index=False)).rstrip("\r\n")


def frame_to_text(frame: pd.DataFrame, fmt: str) -> str | Table:
    """CSV and JSON as text (JSON: a list of records); ``table`` as a rich Table, its cells
    cut at ``LONG_TEXT`` characters (a caption says so, and which formats print them
    whole)."""
    if fmt == "csv":
        return csv_text(frame)
    if fmt == "json":
        records = json.loads(frame.to_json(orient="records", date_format="iso"))
        return json.dumps(records, indent=2)
    frame = frame.drop(columns=[c for c in TABLE_OMITS if c in frame.columns])
    table = Table(show_lines=False)
    for column in frame.columns:
        table.add_column(str(column), overflow="fold")
    cut = False
    for row in frame.itertuples(index=False):
        cells = [_cell(v) for v in row]
        cut = cut or any(is_clipped(c) for c in cells)
        table.add_row(*(clip(c) for c in cells))
    if cut:
        table.caption = (
            f"cells longer than {LONG_TEXT} characters are cut: "
            "--format csv or --format json prints them whole"
        )
    return table


def print_frame(frame: pd.DataFrame, fmt: str, console: Console | None = None) -> None:
    output = frame_to_text(frame, fmt)
    if isinstance(output, str):
        print(output, end="" if output.endswith("\n") else "\n")
    else:
        print_table(output, console)
