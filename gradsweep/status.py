"""``gradsweep status``: how far each study has got, read from the database alone."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine

from gradsweep.console import clip, is_clipped, output_console, print_table, visible
from gradsweep.results.study import failed_trials, load_results
from gradsweep.results.summary import optimum_text, study_list, summarise

TRACEBACK_LINES = 8  # of the first failed trial's traceback, in the table view


def study_status(engine: Engine, study: str) -> dict[str, Any]:
    """Counts by trial status, the planned total, the static optimum (as ``compare`` chooses
    it) and every failed trial (key, reason, traceback)."""
    summary = summarise(load_results(engine, study, lean=True))
    failures = failed_trials(engine, summary.id) if summary.counts["failed"] else []
    return {**summary.to_dict(), "failures": [f.to_dict() for f in failures]}


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
        "static optimum",
        "created",
    ):
        table.add_column(column, justify="left" if column in ("study", "status") else "right")
    for row in statuses:
        best = row["static_optimum"]
        table.add_row(
            row["study"],
            row["status"],
            f"{row['completed']}/{row['planned'] if row['planned'] is not None else '?'}",
            str(row["failed"]),
            str(row["running"]),
            optimum_text(best, row["selected_on"]),
            str(row["created_at"])[:16],
        )
    print_table(table, console)
    for row in statuses:
        print_failures(row, console)


def print_failures(row: dict[str, Any], console: Console) -> None:
    """Each failed trial's reason, and the tail of the first traceback (lines never
    wrapped, so a pipe gets them whole). What the trial wrote is shown safe: control
    characters escaped (a reason cannot clear the screen or break its line), a reason or
    a traceback line beyond ``LONG_TEXT`` characters cut, saying where it is whole."""
    failures = row.get("failures") or []
    if not failures:
        return

    def say(text: str) -> None:
        console.print(text, markup=False, highlight=False, soft_wrap=True)

    cut = False

    def shown(text: str | None) -> str:
        nonlocal cut
        line = visible(text or "")
        cut = cut or is_clipped(line)
        return clip(line)

    say(f"failed trials of {visible(row['study'])}:")
    for failure in failures:
        say(f"  {visible(failure['key'])}: {shown(failure['error'])}")
    first = next((f for f in failures if f["traceback"]), None)
    if first is not None:
        say(f"traceback of {visible(first['key'])} (last {TRACEBACK_LINES} lines):")
        lines = first["traceback"].rstrip().splitlines()[-TRACEBACK_LINES:]
        say("\n".join(shown(line) for line in lines))
    whole = "whole reasons and every traceback" if cut else "every traceback"
    say(f"{whole}: add --format json, or gradsweep query trials --status failed --format json")
