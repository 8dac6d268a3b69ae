"""The study's objective: the paper's normalised loss, or Δm% for metrics that are not losses.

Every trial stores the normalised loss (mean over tasks of test ``L_i / L_i(0)``) in
``gs_trials.objective``; it needs nothing but the trial. Δm% (Maninis et al. 2019, as
used by Liu et al. and most multitask benchmarks since) needs a baseline, the study's
equal-weight static trials, so it is computed when a study is read:

    Δm% = 100 / T · Σ_i s_i · (M_i − B_i) / B_i,   s_i = +1 if lower M_i is better, −1 if higher

``M_i`` is the trial's primary metric of task ``i`` at its last evaluation and ``B_i`` its
mean over the completed equal-weight trials. Lower is better; negative beats equal weights.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from gradsweep.errors import GradsweepError
from gradsweep.storage import queries
from gradsweep.storage.queries import StudyInfo

NORMALIZED_LOSS = "normalized_loss"
DELTA_M = "delta_m"
SEARCH_SCORE = "search_score"  # what a trial reports for the Optuna arm to minimise
LABELS = {NORMALIZED_LOSS: "normalised loss", DELTA_M: "Δm% vs equal weights"}


def delta_m(
    metrics: Sequence[float] | np.ndarray,
    baseline: Sequence[float] | np.ndarray,
    directions: Sequence[str],
) -> np.ndarray:
    """Δm% of each row of ``metrics`` (one trial per row, or a single trial) against the
    baseline."""
    signs = np.array([1.0 if d == "min" else -1.0 for d in directions])
    values, base = np.asarray(metrics, dtype=float), np.asarray(baseline, dtype=float)
    return 100.0 * np.mean(signs * (values - base) / base, axis=-1)


def is_equal_weighting(weights: object) -> bool:
    if not isinstance(weights, list | tuple) or not weights:
        return False
    return max(weights) - min(weights) < 1e-9


def metric_table(engine: Engine, info: StudyInfo) -> pd.DataFrame:
    """Final primary metrics, one row per trial key, one column per task in task order."""
    rows = queries.final_metrics(engine, info.id)
    table = rows.pivot_table(index="key", columns="task", values="value", aggfunc="first")
    return table.reindex(columns=list(info.task_names))


def baseline(trials: pd.DataFrame, table: pd.DataFrame, study: str) -> np.ndarray:
    """Mean final metrics of the completed equal-weight static trials."""
    equal = trials[
        (trials["arm"] == "static")
        & (trials["status"] == "completed")
        & trials["static_weights"].map(is_equal_weighting)
    ]
    values = table.reindex(equal["key"]).dropna()
    if values.empty:
        raise GradsweepError(
            f"study {study!r}: no completed equal-weight static trial for the Δm% baseline"
        )
    base = values.mean().to_numpy(dtype=float)
    if np.any(base == 0):
        zero = [name for name, b in zip(table.columns, base, strict=True) if b == 0]
        raise GradsweepError(f"study {study!r}: the Δm% baseline metric is 0 for {', '.join(zero)}")
    return base


def directions(info: StudyInfo) -> list[str]:
    if not info.task_metrics:
        raise GradsweepError(
            f"study {info.name!r} predates per-task metric directions; Δm% needs them "
            "(relaunch it under a new name)"
        )
    return [str(task["direction"]) for task in info.task_metrics]


def scored(engine: Engine, info: StudyInfo, trials: pd.DataFrame) -> pd.DataFrame:
    """The trials with ``objective`` the study's objective (``normalized_loss`` is kept
    beside it). For Δm% studies, trials without final metrics get no objective."""
    trials = trials.copy()
    trials["normalized_loss"] = trials["objective"]
    if info.objective_name != DELTA_M or trials.empty:
        return trials
    table = metric_table(engine, info)
    base = baseline(trials, table, info.name)
    scores = delta_m(table.reindex(trials["key"]).to_numpy(dtype=float), base, directions(info))
    finished = trials["objective"].notna().to_numpy()
    trials["objective"] = np.where(finished, scores, np.nan)
    return trials


def study_trials(engine: Engine, info: StudyInfo, lean: bool = False) -> pd.DataFrame:
    """A study's trials scored by its objective (see ``scored``)."""
    return scored(engine, info, queries.trials(engine, study=info.id, lean=lean))


def study_baseline(engine: Engine, info: StudyInfo) -> list[float] | None:
    """The Δm% baseline of a Δm% study (for the Optuna arm's search score); None otherwise
    or while no equal-weight trial has completed."""
    if info.objective_name != DELTA_M:
        return None
    trials = queries.trials(engine, study=info.id, arm="static", status="completed")
    try:
        return baseline(trials, metric_table(engine, info), info.name).tolist()
    except GradsweepError:
        return None
