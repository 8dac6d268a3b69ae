"""``gradsweep status``: how far each study has got, read from the database alone."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine

from gradsweep.errors import GradsweepError
from gradsweep.objectives import study_trials
from gradsweep.search.plan import planned_count
from gradsweep.spec import parse_spec
from gradsweep.storage import queries

STATUSES = ("completed", "failed", "running", "interrupted", "pending")


def study_status(engine: Engine, study: str) -> dict[str, Any]:
    """Counts by trial status, with the planned total computed from the stored spec."""
    info = queries.find_study(engine, study)
    spec = parse_spec(info.spec_text, source=f"study {info.name}")
    try:
        trials = study_trials(engine, info)
    except GradsweepError:  # a Δm% study whose equal-weight trials have not finished
        trials = queries.trials(engine, study=info.id).assign(objective=float("nan"))
    counts = trials["status"].value_counts().to_dict() if len(trials) else {}
    objectives = trials["objective"].dropna() if len(trials) else []
    return {
        "study": info.name,
        "id": info.id,
        "status": info.status,
        "problem": info.problem,
        "planned": planned_count(spec, len(info.task_names)),
        **{name: int(counts.get(name, 0)) for name in STATUSES},
        "objective": info.objective_name,
        "best_objective": float(min(objectives)) if len(objectives) else None,
        "created_at": info.created_at,
    }


def study_statuses(engine: Engine, study: str | None = None) -> list[dict[str, Any]]:
    if study is not None:
        return [study_status(engine, study)]
    names = queries.studies(engine)["name"].tolist()
    return [study_status(engine, name) for name in names]


def print_status(statuses: list[dict[str, Any]], console: Console | None = None) -> None:
    console = console or Console()
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
            f"{row['completed']}/{row['planned']}",
            str(row["failed"]),
            str(row["running"]),
            "–" if best is None else f"{best:.4f}",
            str(row["created_at"])[:16],
        )
    console.print(table)
