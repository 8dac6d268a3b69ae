"""DataFrames to the formats the CLI prints: a table, CSV or JSON."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
from rich.console import Console
from rich.table import Table

FORMATS = ("table", "csv", "json")


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_cell(v) for v in value) + "]"
    if value is None or (not isinstance(value, dict) and pd.isna(value)):
        return ""
    return str(value)


def frame_to_text(frame: pd.DataFrame, fmt: str) -> str | Table:
    """CSV and JSON as text (JSON: a list of records); ``table`` as a rich Table."""
    if fmt == "csv":
        return frame.to_csv(index=False)
    if fmt == "json":
        records = json.loads(frame.to_json(orient="records", date_format="iso"))
        return json.dumps(records, indent=2)
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
        (console or Console()).print(output)
