"""``gradsweep status``: how far each study has got, read from the database alone."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine

from gradsweep.console import output_console, print_table
from gradsweep.results.study import load_results, study_list, summarise


def study_status(engine: Engine, study: str) -> dict[str, Any]:
    """Counts by trial status, the planned total and the best study objective."""
    return summarise(load_results(engine, study, lean=True)).to_dict()


def study_statuses(engine: Engine, study: str | None = None) -> list[dict[str, Any]]:
    if study is not None:
        return [study_status(engine, study)]
    return [summary.to_dict() for summary in study_list(engine)]


def print_status(statuses: list[dict[str, Any]], console: Console | None = None) -> None:
    console = console or output_console()
    if not statuses:
        console.print("no studies yet: start one with `gradsweep launch SPEC.yaml`")
        return
    table = Table()
    for column in (
        "study",
        "status",
        "completed",
        "failed",
        "running",
        "best objective",
        "created",
    ):
        table.add_column(column, justify="left" if column in ("study", "status") else "right")
    for row in statuses:
        best = row["best_objective"]
        table.add_row(
            row["study"],
            row["status"],
            f"{row['completed']}/{row['planned'] if row['planned'] is not None else '?'}",
            str(row["failed"]),
            str(row["running"]),
            "–" if best is None else f"{best:.4f}",
            str(row["created_at"])[:16],
        )
    print_table(table, console)
