"""A study in one line (``status``, ``query studies``, the dashboard's study list, launch's
outcome): its counts and its static optimum, chosen by the same rule as ``compare``.

``study_counts`` is the stored study's planned, done, running and failed counts: every
reader of a stored study takes them here (``plan/counts.py`` defines them; launch's live
progress counts its own events the same way)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine

from gradsweep.arms import ObjectiveKind, StudyStatus
from gradsweep.plan import StudyCounts, count_trials
from gradsweep.results.selection import study_optimum
from gradsweep.results.study import StudyResults, load_results
from gradsweep.storage import queries


@dataclass(frozen=True)
class StudySummary:
    """A line of the study list: the same figures ``status`` shows for one study.
    ``static_optimum`` is the test objective (mean over seeds) of the static weighting
    ``compare`` calls the optimum; ``selected_on`` the split it was chosen on."""

    id: int
    name: str
    problem: str
    status: StudyStatus
    objective: ObjectiveKind
    planned: int | None
    counts: dict[str, int]
    static_optimum: float | None
    static_optimum_weights: list[float] | None
    selected_on: str
    created_at: datetime

    def to_dict(self) -> dict[str, object]:
        return {
            "study": self.name,
            "id": self.id,
            "status": str(self.status),
            "problem": self.problem,
            "planned": self.planned,
            **self.counts,
            "objective": str(self.objective),
            "static_optimum": self.static_optimum,
            "static_optimum_weights": self.static_optimum_weights,
            "selected_on": self.selected_on,
            "created_at": self.created_at,
        }


def optimum_text(value: float | None, selected_on: str) -> str:
    """The static optimum's test score as status, the study list and the live display
    print it: ``0.4120``, with ``(on test)`` for a study chosen on test."""
    if value is None:
        return "–"
    return f"{value:.4f}" + (" (on test)" if selected_on == "test" else "")


def optimum_line(summary: StudySummary) -> str | None:
    """The live display's line: the static optimum as ``status`` shows it, with its weights."""
    if summary.static_optimum is None or summary.static_optimum_weights is None:
        return None
    weights = ", ".join(f"{w:.3f}" for w in summary.static_optimum_weights)
    return (
        f"static optimum so far: {optimum_text(summary.static_optimum, summary.selected_on)} "
        f"{summary.objective.label} at w = {weights} (chosen on {summary.selected_on}, "
        "scored on test)"
    )


def study_counts(results: StudyResults) -> StudyCounts:
    """Planned (stored by launch from the plan) and the trials by status, one a key: what
    ``status``, the study list, the study page and launch's outcome show. Not the number
    of trial rows: the Optuna arm's trials and retrain's are planned before they have rows."""
    trials = results.trials
    statuses = trials["status"].tolist() if len(trials) else []
    return count_trials(results.planned, statuses)


def summarise(results: StudyResults) -> StudySummary:
    choice = None if results.scoring_error else study_optimum(results)
    counts = study_counts(results)
    return StudySummary(
        id=results.id,
        name=results.name,
        problem=results.problem,
        status=results.status,
        objective=results.objective,
        planned=counts.planned,
        counts=counts.by_status,
        static_optimum=None if choice is None else choice.optimum.objective,
        static_optimum_weights=None if choice is None else choice.optimum.weights,
        selected_on=str(results.selection.split),
        created_at=results.created_at,
    )


def study_list(engine: Engine) -> list[StudySummary]:
    """Every study, newest first, each scored by its own objective."""
    names = queries.studies(engine)["name"].tolist()
    return [summarise(load_results(engine, name, lean=True)) for name in names]
