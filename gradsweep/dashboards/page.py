"""The study page: one model of what a study's page shows, for the Dash app and the report.

Read through the results layer once, cut to what a person sees: a study with tens of
thousands of static trials keeps its best trials and an even sample of the rest on the
simplex; every other figure is already an aggregate.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
import plotly.graph_objects as go
from sqlalchemy import Engine

from gradsweep.arms import TrialStatus, config_of
from gradsweep.dashboards import figures
from gradsweep.dashboards.verdicts import budget_figure
from gradsweep.errors import GradsweepError
from gradsweep.results import readers
from gradsweep.results.answer import compare_results, evaluations
from gradsweep.results.comparison import Comparison
from gradsweep.results.study import (
    FailedTrial,
    StudyResults,
    collector_paused,
    failed_trials,
    load_results,
)
from gradsweep.results.summary import study_counts
from gradsweep.results.verdicts import Verdicts

MAX_SIMPLEX_POINTS = 3000
BEST_KEPT = 500


@dataclass(frozen=True)
class StudyPage:
    name: str
    status: str
    objective_label: str
    trials: int
    completed: int
    comparison: Comparison | None
    message: str | None
    figures: dict[str, go.Figure]  # only those with something to draw
    trial_keys: list[str]
    default_keys: list[str]
    failures: list[FailedTrial]
    missing: list[str] = field(default_factory=list)  # a line for each figure left out

    @property
    def verdicts(self) -> Verdicts | None:
        """Each claim's verdict: the card on top of the page and the report."""
        return None if self.comparison is None else self.comparison.verdicts

    @property
    def summary(self) -> str:
        """The line under the title: status, trials done, objective, and what went wrong."""
        text = (
            f"{self.status} · {self.completed}/{self.trials} trials completed · "
            f"objective: {self.objective_label}"
        )
        return f"{text} · {self.message}" if self.message else text


def shown_static(trials: pd.DataFrame, limit: int = MAX_SIMPLEX_POINTS) -> pd.DataFrame:
    """All trials when few; else the best ``BEST_KEPT`` and an even sample of the rest."""
    static = figures.static_trials(trials)
    if len(static) <= limit:
        return trials
    ordered = static.sort_values("objective")
    best = min(BEST_KEPT, limit // 2)
    rest = ordered.iloc[best:]
    step = -(-len(rest) // (limit - best))  # ceiling: at most limit − best of the rest
    kept = pd.concat([ordered.iloc[:best], rest.iloc[::step]])
    others = trials[~trials.index.isin(static.index)]
    return pd.concat([kept, others])


#: above this many completed trials the page leaves the verdicts' robustness to `compare`:
#: each of its variants re-scores the whole study (seconds at 50,000 trials)
PAGE_ROBUSTNESS_TRIALS = 20_000
ROBUSTNESS_LEFT_OUT = (
    "The verdicts' robustness is not recomputed on this page for a study of more than "
    f"{PAGE_ROBUSTNESS_TRIALS:,} completed trials: `gradsweep compare` recomputes it"
)


def checks_robustness(results: StudyResults) -> bool:
    return len(results.scored()) <= PAGE_ROBUSTNESS_TRIALS


def _comparison(engine: Engine, results: StudyResults) -> tuple[Comparison | None, str | None]:
    """The comparison with its verdicts, checked over the training budget too (up to
    ``PAGE_ROBUSTNESS_TRIALS``)."""
    try:
        if not checks_robustness(results):
            return compare_results(results, robust=False), None
        return compare_results(results, evaluations(engine, results)), None
    except GradsweepError as exc:  # e.g. a Δm% study whose baseline is still running
        return None, str(exc)


FIGURE_NAMES = {
    "table": "the comparison table",
    "budget": "the verdict over the training budget",
    "pareto": "the Pareto view",
    "simplex": "the weight simplex",
    "weights": "the weights w_i(t)",
    "distance": "objective vs distance",
    "best": "best so far vs compute",
}
NEEDS_COMPARISON = ("table", "budget", "pareto", "distance", "best")
NOTHING_YET = {
    "budget": "no evaluation step to recompute the verdicts at",
    "pareto": "nothing to place on the static front yet",
    "simplex": "no completed static-weight trial and no adaptive trajectory yet",
    "weights": "no adaptive trial has recorded its weights yet",
    "distance": "no completed adaptive configuration yet",
    "best": "no completed trial yet",
}


def page_figures(
    engine: Engine, results: StudyResults, comparison: Comparison | None
) -> dict[str, go.Figure]:
    """Every figure of the page that has something to draw, by name."""
    traces = readers.weight_traces(engine, results.id, trial_keys=results.adaptive_keys())
    shown = shown_static(results.trials)
    names = results.task_names
    optimum = comparison.static_best.weights if comparison else None
    label = results.objective_label
    styles = figures.config_styles(config_of(key) for key in results.adaptive_keys())
    figs = {
        "simplex": figures.simplex_figure(shown, traces, names, optimum, label, styles),
        "weights": figures.weight_curves_figure(traces, names, styles),
    }
    if comparison is not None:
        figs.update(
            table=figures.comparison_table_figure(comparison, label),
            distance=figures.distance_figure(shown, comparison, label, styles),
            best=figures.best_so_far_figure(comparison, label),
        )
        if comparison.verdicts is not None:
            budget = budget_figure(comparison.verdicts)
            if budget is not None:
                figs["budget"] = budget
        if comparison.pareto is not None:
            _, values = results.static_weighting_values
            figs["pareto"] = figures.pareto_figure(comparison.pareto, values, names, styles)
    return {name: figure for name, figure in figs.items() if figures.has_data(figure)}


def missing_lines(drawn: dict[str, go.Figure]) -> list[str]:
    """One line for each figure left out, saying what it is missing; without a comparison,
    one line for every figure that needs it (the summary line says why there is none)."""
    left_out = [name for name in FIGURE_NAMES if name not in drawn]
    lines = []
    if "table" in left_out:  # no comparison
        waiting = ", ".join(FIGURE_NAMES[name] for name in left_out if name in NEEDS_COMPARISON)
        lines.append(f"Not drawn yet: {waiting}: nothing to compare yet")
        left_out = [name for name in left_out if name not in NEEDS_COMPARISON]
    return lines + [
        f"Not drawn yet: {FIGURE_NAMES[name]}: {NOTHING_YET[name]}" for name in left_out
    ]


def study_page(engine: Engine, study: str, lean: bool = True) -> StudyPage:
    with collector_paused():
        return _study_page(engine, study, lean)


def _study_page(engine: Engine, study: str, lean: bool) -> StudyPage:
    results = load_results(engine, study, lean=lean)
    comparison, message = _comparison(engine, results)
    message = message or results.scoring_error
    drawn = page_figures(engine, results, comparison)
    trials = results.trials
    counts = study_counts(results)  # as status and the study list count
    best_static = comparison.static_best.keys[:1] if comparison else []
    done = (
        trials.loc[trials["status"] == TrialStatus.COMPLETED, "key"].tolist() if len(trials) else []
    )
    return StudyPage(
        name=results.name,
        status=str(results.status),
        objective_label=results.objective_label,
        trials=counts.planned if counts.planned is not None else len(trials),
        completed=counts.completed,
        comparison=comparison,
        message=message,
        figures=drawn,
        trial_keys=done,
        default_keys=[*best_static, *results.adaptive_keys()[:2]],
        failures=failed_trials(engine, results.id) if results.counts()["failed"] else [],
        missing=missing_lines(drawn)
        + ([] if comparison is None or checks_robustness(results) else [ROBUSTNESS_LEFT_OUT]),
    )


def loss_curves(engine: Engine, study: str, keys: list[str], which: str) -> go.Figure | None:
    """Per-task train or test losses of the trials a person picked (None: nothing to draw,
    no trial picked or none with a curve)."""
    if not keys:
        return None
    figure = figures.loss_curves_figure(readers.curves(engine, study, trial_keys=keys), which)
    return figure if figures.has_data(figure) else None
