"""The study's objective: the paper's normalised loss, or Δm% for metrics that are not losses.

Every trial stores the normalised loss (mean over tasks of test ``L_i / L_i(0)``) in
``gs_trials.normalized_loss``; it needs nothing but the trial. Δm% (Maninis et al. 2019, as
used by Liu et al. and most multitask benchmarks since) needs a baseline, the study's
equal-weight static trials, so it is computed when a study is read:

    Δm% = 100 / T · Σ_i s_i · (M_i − B_i) / B_i,   s_i = +1 if lower M_i is better, −1 if higher

``M_i`` is the trial's primary metric of task ``i`` at its last evaluation and ``B_i`` its
mean over the completed equal-weight trials. Lower is better; negative beats equal weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from gradsweep.arms import ArmKind, ObjectiveKind, TrialStatus, is_equal_weighting
from gradsweep.errors import GradsweepError

if TYPE_CHECKING:  # a worker scores its trials without SQLAlchemy
    from gradsweep.storage.queries import StudyInfo

NORMALIZED_LOSS = ObjectiveKind.NORMALIZED_LOSS.value
DELTA_M = ObjectiveKind.DELTA_M.value
SEARCH_SCORE = "search_score"  # what a trial reports for the Optuna arm to minimise
LABELS = {kind.value: kind.label for kind in ObjectiveKind}


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


def baseline(trials: pd.DataFrame, table: pd.DataFrame, study: str) -> np.ndarray:
    """Mean final metrics of the completed equal-weight static trials."""
    equal = trials[
        (trials["arm"] == ArmKind.STATIC)
        & (trials["status"] == TrialStatus.COMPLETED)
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


@dataclass(frozen=True)
class Scored:
    """Trials with ``objective``, the study's objective, beside the stored
    ``normalized_loss``; the Δm% baseline; why the trials could not be scored (if so)."""

    trials: pd.DataFrame
    baseline: list[float] | None
    error: str | None


def score(
    info: StudyInfo,
    trials: pd.DataFrame,
    metrics: pd.DataFrame,
    loss_column: str = "normalized_loss",
    into: str = "objective",
) -> Scored:
    """The study's objective for every trial, into column ``into``: ``loss_column`` (a
    normalised loss) or Δm% of ``metrics`` (primary metrics on one split, one row per trial
    key, one column per task) against the equal-weight trials' mean on that split. A Δm%
    study without its baseline yet (the equal-weight trials still running) gets no
    objective, and the reason."""
    trials = trials.copy()
    trials[into] = trials[loss_column]
    if info.objective_name != DELTA_M or trials.empty:
        return Scored(trials, None, None)
    table = metrics.reindex(columns=list(info.task_names))
    try:
        base = baseline(trials, table, info.name)
        scores = delta_m(table.reindex(trials["key"]).to_numpy(dtype=float), base, directions(info))
    except GradsweepError as exc:
        trials[into] = np.nan
        return Scored(trials, None, str(exc))
    finished = trials[loss_column].notna().to_numpy()
    trials[into] = np.where(finished, scores, np.nan)
    return Scored(trials, base.tolist(), None)
