"""Every arm of a study as one multi-objective Optuna study, for optuna-dashboard.

The Optuna arm's own study holds only its suggestions, with the raw ``u0 … u{T-1}``. The
export writes every completed trial with per-task values (static, grid, random, Optuna,
retrain and every adaptive configuration) into an Optuna study in the same database:
params ``w0 … w{T-1}`` (a static trial's weights, an adaptive trial's time-averaged
``E_t[w]``), one value per task (lower is better: the Pareto view's values), and user
attributes ``arm``, ``balancer``, ``seed``, ``key``, ``objective`` (test),
``selection_objective`` (validation, what chose) and ``static_optimum`` (whether the trial
is one of the static optimum's, as ``compare`` chooses it). optuna-dashboard's
Pareto-front plot and its tables then work on it. A trial already exported (its key) is
not added again.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import optuna
import pandas as pd
from sqlalchemy import Engine

from gradsweep.arms import TrialStatus
from gradsweep.errors import GradsweepError
from gradsweep.results.selection import study_optimum
from gradsweep.results.study import StudyResults, load_results

# user attributes every exported trial carries
ATTRIBUTES = (
    "arm",
    "balancer",
    "seed",
    "key",
    "objective",
    "selection_objective",
    "static_optimum",
)


@dataclass(frozen=True)
class OptunaExport:
    """What an export did: the Optuna study's name, trials added and already there."""

    name: str
    added: int
    present: int


def _weights(row: pd.Series) -> list[float] | None:
    weights = row["static_weights"]
    if not isinstance(weights, list):
        weights = row["weights_mean"]
    return [float(w) for w in weights] if isinstance(weights, list) else None


def exported_trials(results: StudyResults) -> list[optuna.trial.FrozenTrial]:
    """One frozen Optuna trial per completed trial with a value for every task."""
    values = results.task_values
    tasks = len(results.task_names)
    distribution = optuna.distributions.FloatDistribution(0.0, float(tasks))
    choice = None if results.scoring_error else study_optimum(results)
    optimum_keys = set(choice.optimum.keys) if choice is not None else set()
    frozen = []
    for _, row in results.trials.iterrows():
        weights = _weights(row)
        if (
            row["status"] != TrialStatus.COMPLETED
            or row["key"] not in values.index
            or weights is None
        ):
            continue
        objective, chosen_by = row["objective"], row["selection_objective"]
        attributes = {
            "arm": str(row["arm"]),
            "balancer": str(row["balancer"]),
            "seed": int(row["seed"]),
            "key": str(row["key"]),
            "objective": None if pd.isna(objective) else float(objective),
            "selection_objective": None if pd.isna(chosen_by) else float(chosen_by),
            "static_optimum": str(row["key"]) in optimum_keys,
        }
        frozen.append(
            optuna.trial.create_trial(
                params={f"w{i}": min(max(w, 0.0), float(tasks)) for i, w in enumerate(weights)},
                distributions={f"w{i}": distribution for i in range(tasks)},
                values=[float(v) for v in values.loc[row["key"]]],
                user_attrs=attributes,
            )
        )
    return frozen


def _study(name: str, url: str, tasks: int) -> optuna.Study:
    storage = optuna.storages.RDBStorage(url)
    directions = ["minimize"] * tasks
    try:
        study = optuna.create_study(
            study_name=name, storage=storage, directions=directions, load_if_exists=True
        )
    except ValueError as exc:
        raise GradsweepError(f"--optuna {name}: {exc}") from None
    if len(study.directions) != tasks:
        raise GradsweepError(
            f"--optuna {name}: an Optuna study of that name exists with "
            f"{len(study.directions)} objective(s), not one per task ({tasks}); "
            "choose another name"
        )
    return study


def export_optuna(engine: Engine, study: str, name: str) -> OptunaExport:
    """Write (or complete) the Optuna study ``name`` from gradsweep study ``study``."""
    results = load_results(engine, study)
    if results.scoring_error is not None:
        raise GradsweepError(results.scoring_error)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = engine.url.render_as_string(hide_password=False)
    target = _study(name, url, len(results.task_names))
    present = {t.user_attrs.get("key") for t in target.get_trials(deepcopy=False)}
    new = [t for t in exported_trials(results) if t.user_attrs["key"] not in present]
    if new:
        target.add_trials(new)
    with warnings.catch_warnings():  # experimental in Optuna 3 and 4
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        target.set_metric_names(list(results.task_names))
    return OptunaExport(name, len(new), len(present - {None}))
