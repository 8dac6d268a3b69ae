"""What a study page shows, read through the storage queries and cut to what a person sees.

A study with tens of thousands of static trials keeps its best trials and an even sample of
the rest on the simplex; every other figure is already an aggregate.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import plotly.graph_objects as go
from sqlalchemy import Engine

from gradsweep.compare import Comparison, compare_trials
from gradsweep.dashboards import figures
from gradsweep.errors import GradsweepError
from gradsweep.objectives import study_trials
from gradsweep.storage import queries

MAX_SIMPLEX_POINTS = 3000
BEST_KEPT = 500


@dataclass(frozen=True)
class StudyPage:
    name: str
    status: str
    trials: int
    completed: int
    comparison: Comparison | None
    message: str | None
    figures: dict[str, go.Figure]
    trial_keys: list[str]
    default_keys: list[str]


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


def study_page(engine: Engine, study: str) -> StudyPage:
    info = queries.find_study(engine, study)
    try:
        trials = study_trials(engine, info, lean=True)
        comparison = compare_trials(info.name, info.objective_name, list(info.task_names), trials)
        message = None
    except GradsweepError as exc:  # e.g. a Δm% study whose baseline is still running
        comparison, message = None, str(exc)
        trials = queries.trials(engine, study=info.id, lean=True)
    completed = int((trials["status"] == "completed").sum()) if len(trials) else 0
    adaptive = trials.loc[~trials["arm"].isin([*queries.STATIC_ARMS, "retrain"]), "key"].tolist()
    traces = queries.weight_traces(engine, info.id, trial_keys=adaptive)
    names = list(info.task_names)
    shown = shown_static(trials)
    optimum = comparison.static_best.weights if comparison else None
    figs = {
        "simplex": figures.simplex_figure(shown, traces, names, optimum),
        "weights": figures.weight_curves_figure(traces, names),
    }
    if comparison is not None:
        figs.update(
            table=figures.comparison_table_figure(comparison),
            distance=figures.distance_figure(shown, comparison),
            best=figures.best_so_far_figure(comparison),
        )
    best_static = comparison.static_best.keys[:1] if comparison else []
    done = trials.loc[trials["status"] == "completed", "key"].tolist() if len(trials) else []
    return StudyPage(
        info.name,
        info.status,
        len(trials),
        completed,
        comparison,
        message,
        figs,
        done,
        [*best_static, *adaptive[:2]],
    )


def loss_curves(engine: Engine, study: str, keys: list[str], which: str) -> go.Figure:
    """Per-task train or test losses of the trials a person picked."""
    if not keys:
        return go.Figure().update_layout(title="pick trials to see their loss curves")
    return figures.loss_curves_figure(queries.curves(engine, study, trial_keys=keys), which)
